package storage

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// Default-class annotations, as read by k8s.io/kubernetes pkg/volume/util IsDefaultAnnotation.
const (
	AnnotationIsDefaultClass     = "storageclass.kubernetes.io/is-default-class"
	AnnotationBetaIsDefaultClass = "storageclass.beta.kubernetes.io/is-default-class"
)

// ResolveClassName resolves the StorageClass a claim gets, as Kubernetes would:
//   - the legacy annotation volume.beta.kubernetes.io/storage-class, when present, wins over the spec;
//   - else spec.storageClassName when set;
//   - an empty name (from either) means no class: static binding to class-less PVs, nothing to judge;
//   - a nil spec.storageClassName means the default class: among classes annotated
//     is-default-class "true", the newest by creationTimestamp, ties broken by name ascending
//     (k8s.io/kubernetes pkg/volume/util GetDefaultClass, used by the DefaultStorageClass admission
//     plugin and the PV controller's retroactive assignment).
//
// found reports whether name is a class that exists in classes; when the claim names a class
// that does not exist, name is returned with found false. explanation says which rule applied.
func ResolveClassName(claim *corev1.PersistentVolumeClaim, classes []storagev1.StorageClass) (name string, found bool, explanation string) {
	if claim == nil {
		return "", false, "no claim was given"
	}
	if v, ok := claim.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return named(v, classes, fmt.Sprintf("annotation %s", corev1.BetaStorageClassAnnotation))
	}
	if claim.Spec.StorageClassName != nil {
		return named(*claim.Spec.StorageClassName, classes, "spec.storageClassName")
	}
	return defaulted(classes)
}

// OwnClassName is the class a claim names itself (the beta annotation first, as Kubernetes
// reads it), "" when it names none. Unlike ResolveClassName it never falls back to the
// default class: what a Bound claim was bound with.
func OwnClassName(claim *corev1.PersistentVolumeClaim) string {
	if v, ok := claim.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return v
	}
	if claim.Spec.StorageClassName != nil {
		return *claim.Spec.StorageClassName
	}
	return ""
}

func named(name string, classes []storagev1.StorageClass, from string) (string, bool, string) {
	if name == "" {
		return "", false, fmt.Sprintf("%s is empty: the claim asks for no class and binds only to PersistentVolumes "+
			"without one (static binding), so there is no class to judge", from)
	}
	for i := range classes {
		if classes[i].Name == name {
			return name, true, fmt.Sprintf("%s names StorageClass %s", from, name)
		}
	}
	return name, false, fmt.Sprintf("%s names StorageClass %s, which does not exist; the claim stays Pending until it is created", from, name)
}

func defaulted(classes []storagev1.StorageClass) (string, bool, string) {
	defaults := defaultClasses(classes)
	switch len(defaults) {
	case 0:
		return "", false, "the claim names no class and the cluster has no default StorageClass; it binds only to " +
			"PersistentVolumes without a class, or gets the default class once one is marked"
	case 1:
		return defaults[0].Name, true, fmt.Sprintf("the claim names no class, so it gets the default StorageClass %s", defaults[0].Name)
	}
	return defaults[0].Name, true, fmt.Sprintf("the claim names no class; %d StorageClasses are marked default and Kubernetes "+
		"picks the newest (then the first by name): %s", len(defaults), defaults[0].Name)
}

// defaultClasses returns the default classes in the order Kubernetes prefers them.
func defaultClasses(classes []storagev1.StorageClass) []*storagev1.StorageClass {
	var out []*storagev1.StorageClass
	for i := range classes {
		if isDefaultClass(&classes[i]) {
			out = append(out, &classes[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := out[i].CreationTimestamp.UnixNano(), out[j].CreationTimestamp.UnixNano()
		if ti == tj {
			return out[i].Name < out[j].Name
		}
		return ti > tj
	})
	return out
}

// isDefaultClass reports whether a class is marked as the cluster default (GA or beta annotation).
func isDefaultClass(c *storagev1.StorageClass) bool {
	return c.Annotations[AnnotationIsDefaultClass] == "true" || c.Annotations[AnnotationBetaIsDefaultClass] == "true"
}
