package storage

import (
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// StorageClass annotations by which an admin declares a class's access modes.
const (
	// AnnotationAccessModes is our declaration: a JSON list of access modes, e.g.
	// '["ReadWriteOnce","ReadWriteMany"]'. It covers both volume modes unless
	// AnnotationAccessModesBlock is also set.
	AnnotationAccessModes = "workspace-webhook.io/supported-access-modes"
	// AnnotationAccessModesBlock is the same list for volumeMode Block only.
	AnnotationAccessModesBlock = "workspace-webhook.io/supported-access-modes-block"
	// AnnotationKubeSphereAccessModes is KubeSphere's declaration, same format, honoured after ours.
	AnnotationKubeSphereAccessModes = "storageclass.kubesphere.io/supported-access-modes"
)

// annotationsFor lists the annotations consulted for mode, most specific first.
func annotationsFor(mode corev1.PersistentVolumeMode) []string {
	if mode == corev1.PersistentVolumeBlock {
		return []string{AnnotationAccessModesBlock, AnnotationAccessModes, AnnotationKubeSphereAccessModes}
	}
	return []string{AnnotationAccessModes, AnnotationKubeSphereAccessModes}
}

// fromAnnotations answers from the first well-formed declaration on the class. Malformed ones
// are reported in notes and skipped, never silently ignored.
func fromAnnotations(class *storagev1.StorageClass, mode corev1.PersistentVolumeMode, base Answer) (Answer, bool, []string) {
	var notes []string
	for _, key := range annotationsFor(mode) {
		value, set := class.Annotations[key]
		if !set {
			continue
		}
		modes, err := parseAccessModes(value)
		if err != nil {
			notes = append(notes, fmt.Sprintf("StorageClass %s annotation %s is malformed and was ignored: %v",
				class.Name, key, err))
			continue
		}
		return annotationAnswer(class.Name, key, modes, mode, base), true, notes
	}
	return Answer{}, false, notes
}

func annotationAnswer(class, key string, modes []corev1.PersistentVolumeAccessMode,
	mode corev1.PersistentVolumeMode, base Answer) Answer {
	base.Source = SourceAnnotation
	base.Reference = fmt.Sprintf("StorageClass %s annotation %s", class, key)
	base.Verdict = Unsupported
	verb := "does not list"
	if hasMode(modes, corev1.ReadWriteMany) {
		base.Verdict, verb = Supported, "lists"
	}
	base.Reason = fmt.Sprintf("the cluster admin declared this class's access modes as %s; that declaration %s ReadWriteMany",
		formatModes(modes), verb)
	if mode == corev1.PersistentVolumeBlock && key != AnnotationAccessModesBlock {
		base.Notes = append(base.Notes, fmt.Sprintf("annotation %s does not distinguish volume modes; set %s to declare Block separately",
			key, AnnotationAccessModesBlock))
	}
	return base
}

// parseAccessModes parses a JSON list of Kubernetes access-mode names. Empty lists, unknown
// names and anything but a list of strings are errors.
func parseAccessModes(value string) ([]corev1.PersistentVolumeAccessMode, error) {
	var raw []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(value)), &raw); err != nil {
		return nil, fmt.Errorf("want a JSON list such as [\"ReadWriteOnce\",\"ReadWriteMany\"], got %q", value)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("the list %q declares no access mode", value)
	}
	modes := make([]corev1.PersistentVolumeAccessMode, 0, len(raw))
	for _, r := range raw {
		m := corev1.PersistentVolumeAccessMode(r)
		if !knownAccessMode(m) {
			return nil, fmt.Errorf("%q is not an access mode (want ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod)", r)
		}
		modes = append(modes, m)
	}
	return modes, nil
}

func knownAccessMode(m corev1.PersistentVolumeAccessMode) bool {
	switch m {
	case corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod:
		return true
	}
	return false
}

func hasMode(modes []corev1.PersistentVolumeAccessMode, want corev1.PersistentVolumeAccessMode) bool {
	for _, m := range modes {
		if m == want {
			return true
		}
	}
	return false
}

func formatModes(modes []corev1.PersistentVolumeAccessMode) string {
	s := make([]string, len(modes))
	for i, m := range modes {
		s[i] = string(m)
	}
	return "[" + strings.Join(s, ",") + "]"
}
