package agent

import (
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"
)

// scriptPodClaim returns the workspace claim the script pod already references, if any.
// Preference: a claim of one of the agent's Tentacle pods, then the claim mounted at the
// workspace path, then the claim behind a volume with one of Tentacle's workspace names.
func scriptPodClaim(pod *corev1.Pod, tentacleClaims map[string]bool, mountPath string) (claim, source string) {
	byVolume := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			byVolume[v.Name] = v.PersistentVolumeClaim.ClaimName
		}
	}
	for _, v := range pod.Spec.Volumes {
		if c, ok := byVolume[v.Name]; ok && tentacleClaims[c] {
			return c, fmt.Sprintf("script pod volume %s, the agent's workspace claim", v.Name)
		}
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, m := range c.VolumeMounts {
				if claim, ok := byVolume[m.Name]; ok && path.Clean(m.MountPath) == path.Clean(mountPath) {
					return claim, fmt.Sprintf("script pod volume %s mounted at %s", m.Name, mountPath)
				}
			}
		}
	}
	for _, name := range []string{"tentacle-home", "init-nfs-volume"} {
		if c, ok := byVolume[name]; ok {
			return c, fmt.Sprintf("script pod volume %s", name)
		}
	}
	return "", ""
}

// tentacleClaim returns the workspace claim of a Tentacle pod: the claim behind the volume
// mounted at the workspace path, else the one named by OCTOPUS__K8STENTACLE__PODVOLUMECLAIMNAME.
func tentacleClaim(p *corev1.Pod, mountPath string) (claim, source string) {
	byVolume := map[string]string{}
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			byVolume[v.Name] = v.PersistentVolumeClaim.ClaimName
		}
	}
	for _, c := range p.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if claim, ok := byVolume[m.Name]; ok && path.Clean(m.MountPath) == path.Clean(mountPath) {
				return claim, fmt.Sprintf("Tentacle pod %s/%s volume %s", p.Namespace, p.Name, m.Name)
			}
		}
	}
	for _, c := range p.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == ClaimNameEnv && e.Value != "" {
				return e.Value, fmt.Sprintf("Tentacle pod %s/%s env %s", p.Namespace, p.Name, ClaimNameEnv)
			}
		}
	}
	return "", ""
}

// mountsClaim tells whether a pod has a volume backed by claim.
func mountsClaim(p *corev1.Pod, claim string) bool {
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			return true
		}
	}
	return false
}

// ClaimOfScriptPod is the workspace claim a script pod names itself, and how it was found
// (for explaining a pod without a cluster).
func ClaimOfScriptPod(pod *corev1.Pod, mountPath string) (claim, source string) {
	return scriptPodClaim(pod, nil, mountPath)
}

// ClaimOfTentacle is the workspace claim of a Tentacle pod, and how it was found.
func ClaimOfTentacle(pod *corev1.Pod, mountPath string) (claim, source string) {
	return tentacleClaim(pod, mountPath)
}
