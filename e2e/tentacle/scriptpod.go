package tentacle

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Style is which Tentacle build created the script pod.
type Style string

const (
	// StyleV2: chart v1/v2 Tentacle: workspace volume and os/arch node affinity, no co-location.
	StyleV2 Style = "v2"
	// StyleV3: Tentacle 9.1.3702+ on RWO: adds a required pod affinity to the Tentacle pod.
	StyleV3 Style = "v3"
	// StyleTemplate: a ScriptPodTemplate replaced the defaults and names no workspace at all.
	StyleTemplate Style = "template"
)

// ScriptPod is a script pod as Tentacle creates it for ticket.
func (a Agent) ScriptPod(ticket string, style Style) *corev1.Pod {
	name := "octopus-script-" + ticket
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: a.Namespace,
			Labels: map[string]string{
				"octopus.com/scriptTicketId":    ticket,
				"octopus.com/serverTaskId":      "ServerTasks-48213",
				"agent.octopus.com/permissions": "enabled",
				"app.kubernetes.io/managed-by":  "Helm",
				"agent.octopus.com/project":     "5b6a1e6c4f0b5d7f3f2b8a9c0d1e2f3a4b5c6d7e",
			},
			Annotations: map[string]string{
				"meta.helm.sh/release-name":      a.Release,
				"meta.helm.sh/release-namespace": a.Namespace,
				"agent.octopus.com/project":      "payments-api",
			},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "octopus-agent-scripts",
			RestartPolicy:      corev1.RestartPolicyNever,
			Volumes: []corev1.Volume{{Name: "tentacle-home", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: a.ClaimName()}}}},
			Containers: []corev1.Container{{
				Name:    name,
				Image:   "octopusdeploy/kubernetes-agent-tools-base:latest",
				Command: []string{"sh", "-c", fmt.Sprintf("/octopus/Work/%s/execute-bootstrapRunner.sh /octopus/Work/%s /octopus/Work/%s/bootstrapRunner Bootstrap.sh", ticket, ticket, ticket)},
				Env: []corev1.EnvVar{
					{Name: "OCTOPUS_RUNNING_IN_CONTAINER", Value: "Y"},
					{Name: "OCTOPUS__K8STENTACLE__NAMESPACE", Value: a.Namespace},
					{Name: "OCTOPUS__K8STENTACLE__PODVOLUMECLAIMNAME", Value: a.ClaimName()},
				},
				Resources:    corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("100Mi")}},
				VolumeMounts: []corev1.VolumeMount{{Name: "tentacle-home", MountPath: "/octopus"}},
			}},
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: "kubernetes.io/os", Operator: corev1.NodeSelectorOpIn, Values: []string{"linux"}},
					{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"arm64", "amd64"}},
				}}}}}},
		},
	}
	switch style {
	case StyleV3:
		pod.Spec.Affinity.PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			TopologyKey: "kubernetes.io/hostname",
			LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app.kubernetes.io/instance", Operator: metav1.LabelSelectorOpIn, Values: []string{a.Release}},
				{Key: "agent.octopus.com/component", Operator: metav1.LabelSelectorOpIn, Values: []string{"tentacle"}},
			}},
		}}}
	case StyleTemplate:
		pod.Spec.Volumes = nil
		pod.Spec.Containers[0].VolumeMounts = nil
		pod.Spec.Affinity = nil
		pod.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "octopus", Effect: corev1.TaintEffectNoSchedule}}
	}
	return pod
}
