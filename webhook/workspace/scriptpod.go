package workspace

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ScriptPod is the part of a pod that the decisions about a script pod read (this package
// and agent.Finder). Decoding an admitted pod into it rather than into a whole corev1.Pod
// skips the containers' images, commands, env, resources, probes and security contexts and
// the pod's managedFields without building them: a quarter less decoding time and less than
// half the allocations on a Tentacle script pod (make bench). The golden and fuzz tests hold
// every decision on ScriptPod(pod).Pod() equal to the decision on pod itself.
type ScriptPod struct {
	Metadata struct {
		Name         string            `json:"name,omitempty"`
		GenerateName string            `json:"generateName,omitempty"`
		Namespace    string            `json:"namespace,omitempty"`
		Labels       map[string]string `json:"labels,omitempty"`
		Annotations  map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec struct {
		NodeName       string              `json:"nodeName,omitempty"`
		NodeSelector   map[string]string   `json:"nodeSelector,omitempty"`
		Tolerations    []corev1.Toleration `json:"tolerations,omitempty"`
		Volumes        []corev1.Volume     `json:"volumes,omitempty"`
		InitContainers []ContainerMounts   `json:"initContainers,omitempty"`
		Containers     []ContainerMounts   `json:"containers,omitempty"`
		Affinity       *corev1.Affinity    `json:"affinity,omitempty"`
	} `json:"spec"`
}

// ContainerMounts is the part of a container the decisions read.
type ContainerMounts struct {
	Name         string               `json:"name"`
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
}

// Pod returns a pod holding exactly the fields of s; container indices are preserved, so
// patch paths computed on it apply to the full pod.
func (s *ScriptPod) Pod() *corev1.Pod {
	m := &s.Metadata
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, GenerateName: m.GenerateName, Namespace: m.Namespace,
			Labels: m.Labels, Annotations: m.Annotations},
		Spec: corev1.PodSpec{NodeName: s.Spec.NodeName, NodeSelector: s.Spec.NodeSelector, Tolerations: s.Spec.Tolerations,
			Volumes: s.Spec.Volumes, Affinity: s.Spec.Affinity,
			InitContainers: containers(s.Spec.InitContainers), Containers: containers(s.Spec.Containers)},
	}
	return pod
}

func containers(in []ContainerMounts) []corev1.Container {
	if in == nil {
		return nil
	}
	out := make([]corev1.Container, len(in))
	for i, c := range in {
		out[i] = corev1.Container{Name: c.Name, VolumeMounts: c.VolumeMounts}
	}
	return out
}
