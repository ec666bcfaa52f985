package workspace

import corev1 "k8s.io/api/core/v1"

// claimVolumeName returns the name of the pod volume that references claim, or "".
// Raw-script pods reference the workspace claim as init-nfs-volume, so the name varies.
func claimVolumeName(pod *corev1.Pod, claim string) string {
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			return v.Name
		}
	}
	return ""
}

func hasVolume(pod *corev1.Pod, name string) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Name == name {
			return true
		}
	}
	return false
}

// volumeToInject picks the fixed name for a new workspace volume. Fixed names make
// reinvocation find the volume again instead of adding it twice.
func volumeToInject(cfg Config, pod *corev1.Pod, claim string) (corev1.Volume, bool) {
	name := cfg.VolumeName
	if hasVolume(pod, name) {
		name = cfg.FallbackVolumeName
		if hasVolume(pod, name) {
			return corev1.Volume{}, false
		}
	}
	return corev1.Volume{
		Name: name,
		VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
		},
	}, true
}
