package workspace

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// needsMount tells whether a container should get the workspace mount: it does not already
// mount the workspace volume anywhere, and its workspace path is free (raw-script containers
// mount an emptyDir there, which must stay).
func needsMount(c *corev1.Container, volume, mountPath string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume || atWorkspacePath(m.MountPath, mountPath) {
			return false
		}
	}
	return true
}

// atWorkspacePath tells whether a mount path is the workspace path, trailing slashes allowed:
// exactly the spelling the final-state policy recognises in CEL, which has no path cleaning.
func atWorkspacePath(p, workspace string) bool {
	return p == workspace || strings.HasPrefix(p, workspace+"/") && strings.Trim(p[len(workspace):], "/") == ""
}

// workspacePathSpelledOtherwise finds a container that does not mount the workspace volume
// but mounts something at the workspace path written another way (/octopus/., //octopus):
// the kubelet would stack two mounts on one directory if the webhook added its own, and the
// final-state policy could not recognise the path as taken. It returns the container and path.
func workspacePathSpelledOtherwise(pod *corev1.Pod, volume, mountPath string) (string, string, bool) {
	want := path.Clean(mountPath)
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if !needsMount(&cs[i], volume, mountPath) {
				continue
			}
			for _, m := range cs[i].VolumeMounts {
				if path.Clean(m.MountPath) == want {
					return cs[i].Name, m.MountPath, true
				}
			}
		}
	}
	return "", "", false
}

func workspaceMount(volume, mountPath string) corev1.VolumeMount {
	return corev1.VolumeMount{Name: volume, MountPath: mountPath}
}
