package agent

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// VolumeAttachmentVolumeIndex indexes VolumeAttachments by the PersistentVolume they attach.
const VolumeAttachmentVolumeIndex = "spec.source.persistentVolumeName"

// VolumeClassIndex indexes PersistentVolumes by their StorageClass (legacy annotation first,
// as Kubernetes reads it), so capability evidence never scans every volume.
const VolumeClassIndex = "storageClass"

// CacheByObject scopes the informer cache to what the webhook reads: Tentacle pods only (by
// label, never every pod in the cluster), and claims, volumes and VolumeAttachments trimmed to
// the few fields used, so memory does not grow with the size of the objects.
func CacheByObject() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&corev1.Pod{}: {
			Label:     labels.SelectorFromSet(labels.Set{ComponentLabel: TentacleValue}),
			Transform: trimTentaclePod,
		},
		&corev1.PersistentVolumeClaim{}: {Transform: trimClaim},
		&corev1.PersistentVolume{}:      {Transform: trimVolume},
		&storagev1.VolumeAttachment{}:   {Transform: trimAttachment},
	}
}

// IndexFields registers the cache indexes Finder queries.
func IndexFields(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &storagev1.VolumeAttachment{}, VolumeAttachmentVolumeIndex, func(o client.Object) []string {
		va, ok := o.(*storagev1.VolumeAttachment)
		if !ok || va.Spec.Source.PersistentVolumeName == nil {
			return nil
		}
		return []string{*va.Spec.Source.PersistentVolumeName}
	}); err != nil {
		return err
	}
	return indexer.IndexField(ctx, &corev1.PersistentVolume{}, VolumeClassIndex, func(o client.Object) []string {
		pv, ok := o.(*corev1.PersistentVolume)
		if !ok {
			return nil
		}
		if c, ok := pv.Annotations[corev1.BetaStorageClassAnnotation]; ok {
			return []string{c}
		}
		return []string{pv.Spec.StorageClassName}
	})
}

func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Labels: m.Labels, CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
	}
}

// trimTentaclePod keeps name, labels, node, phase, claim volumes and the claim env var.
var trimTentaclePod toolscache.TransformFunc = func(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{ObjectMeta: trimMeta(p.ObjectMeta)}
	out.Spec.NodeName = p.Spec.NodeName
	out.Status.Phase = p.Status.Phase
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out.Spec.Volumes = append(out.Spec.Volumes, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.PersistentVolumeClaim.ClaimName}}})
		}
	}
	for _, c := range p.Spec.Containers {
		tc := corev1.Container{Name: c.Name, VolumeMounts: c.VolumeMounts}
		for _, e := range c.Env {
			if e.Name == ClaimNameEnv {
				tc.Env = append(tc.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
			}
		}
		out.Spec.Containers = append(out.Spec.Containers, tc)
	}
	return out, nil
}

var trimClaim toolscache.TransformFunc = func(obj any) (any, error) {
	c, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return obj, nil
	}
	out := &corev1.PersistentVolumeClaim{ObjectMeta: trimMeta(c.ObjectMeta)}
	out.Annotations = pick(c.Annotations, corev1.BetaStorageClassAnnotation)
	out.Spec.AccessModes = c.Spec.AccessModes
	out.Spec.StorageClassName = c.Spec.StorageClassName
	out.Spec.VolumeName = c.Spec.VolumeName
	out.Spec.VolumeMode = c.Spec.VolumeMode
	out.Status.Phase = c.Status.Phase
	out.Status.AccessModes = c.Status.AccessModes
	return out, nil
}

var trimVolume toolscache.TransformFunc = func(obj any) (any, error) {
	v, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return obj, nil
	}
	out := &corev1.PersistentVolume{ObjectMeta: trimMeta(v.ObjectMeta)}
	out.Labels = nil
	out.Annotations = pick(v.Annotations, corev1.BetaStorageClassAnnotation)
	out.Spec.AccessModes = v.Spec.AccessModes
	out.Spec.StorageClassName = v.Spec.StorageClassName
	out.Spec.VolumeMode = v.Spec.VolumeMode
	if v.Spec.CSI != nil {
		out.Spec.CSI = &corev1.CSIPersistentVolumeSource{Driver: v.Spec.CSI.Driver}
	}
	if v.Spec.ClaimRef != nil {
		out.Spec.ClaimRef = &corev1.ObjectReference{Namespace: v.Spec.ClaimRef.Namespace, Name: v.Spec.ClaimRef.Name}
	}
	out.Status.Phase = v.Status.Phase
	return out, nil
}

var trimAttachment toolscache.TransformFunc = func(obj any) (any, error) {
	va, ok := obj.(*storagev1.VolumeAttachment)
	if !ok {
		return obj, nil
	}
	out := &storagev1.VolumeAttachment{ObjectMeta: trimMeta(va.ObjectMeta)}
	out.Labels = nil
	out.Spec.NodeName = va.Spec.NodeName
	out.Spec.Attacher = va.Spec.Attacher
	out.Spec.Source.PersistentVolumeName = va.Spec.Source.PersistentVolumeName
	out.Status.Attached = va.Status.Attached
	return out, nil
}

func pick(m map[string]string, keys ...string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
