package workspace

import (
	"path"

	corev1 "k8s.io/api/core/v1"
)

// needsMount tells whether a container should get the workspace mount: it does not already
// mount the workspace volume anywhere, and its workspace path is free (raw-script containers
// mount an emptyDir there, which must stay).
func needsMount(c *corev1.Container, volume, mountPath string) bool {
	want := path.Clean(mountPath)
	for _, m := range c.VolumeMounts {
		if m.Name == volume || path.Clean(m.MountPath) == want {
			return false
		}
	}
	return true
}

func workspaceMount(volume, mountPath string) corev1.VolumeMount {
	return corev1.VolumeMount{Name: volume, MountPath: mountPath}
}
