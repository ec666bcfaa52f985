package workspace

import corev1 "k8s.io/api/core/v1"

// Mode is how script pods may share the workspace claim.
type Mode string

const (
	// ModePin: the volume attaches to one node; every script pod must run there.
	ModePin Mode = "ReadWriteOnce"
	// ModeShare: the volume is ReadWriteMany; script pods may run anywhere.
	ModeShare Mode = "ReadWriteMany"
	// ModeExclusive: ReadWriteOncePod; no second pod can ever use the volume.
	ModeExclusive Mode = "ReadWriteOncePod"
)

// ModeOf classifies a claim by its requested access modes. A claim listing ReadWriteMany is
// provisioned as RWX whatever else it lists; ReadWriteOncePod cannot be combined with others.
// Anything else (ReadWriteOnce, ReadOnlyMany, nothing) attaches to one node for writing.
func ModeOf(claim *corev1.PersistentVolumeClaim) Mode {
	modes := claim.Spec.AccessModes
	if claim.Status.Phase == corev1.ClaimBound && len(claim.Status.AccessModes) > 0 {
		// The bound volume's modes are what the pod really gets.
		modes = claim.Status.AccessModes
	}
	has := func(m corev1.PersistentVolumeAccessMode) bool {
		for _, x := range modes {
			if x == m {
				return true
			}
		}
		return false
	}
	switch {
	case has(corev1.ReadWriteOncePod):
		return ModeExclusive
	case has(corev1.ReadWriteMany):
		return ModeShare
	default:
		return ModePin
	}
}
