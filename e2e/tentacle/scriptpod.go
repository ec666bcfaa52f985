package tentacle

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Style is which Tentacle build (or settings) created the script pod.
type Style string

const (
	// StyleV2: Tentacle without co-location (chart v1/v2, or v3 on anything but exactly
	// [ReadWriteOnce]): workspace volume and the os/arch node affinity.
	StyleV2 Style = "v2"
	// StyleV3: Tentacle 9.1.3702+ with ACCESSMODESJSON exactly ["ReadWriteOnce"]: adds a
	// required pod affinity to the Tentacle pod.
	StyleV3 Style = "v3"
	// StyleRawScript: a raw-script pod: tentacle-home is an emptyDir, the claim is volume
	// init-nfs-volume, and an init container copies the work directory across.
	StyleRawScript Style = "raw"
	// StyleTemplate: a ScriptPodTemplate replaced the defaults and names no workspace at all.
	StyleTemplate Style = "template"
)

// NormalStyle is the style the agent's own Tentacle uses for an ordinary script.
func (a Agent) NormalStyle() Style {
	if m := a.modes(); a.gen() >= 3 && len(m) == 1 && m[0] == corev1.ReadWriteOnce {
		return StyleV3
	}
	return StyleV2
}

func (a Agent) scriptImage() string {
	if a.Worker {
		return "octopusdeploy/worker-tools:ubuntu.24.04"
	}
	return "octopusdeploy/kubernetes-agent-tools-base:latest"
}

// ScriptPod is a script pod as Tentacle creates it for ticket (KubernetesScriptPodCreator and
// KubernetesRawScriptPodCreator): the claim only as a volume, never in the env.
func (a Agent) ScriptPod(ticket string, style Style) *corev1.Pod {
	name := "octopus-script-" + ticket
	home := corev1.VolumeMount{Name: "tentacle-home", MountPath: "/octopus"}
	upgrade := []corev1.VolumeMount{{Name: "agent-upgrade", MountPath: "/root/agent_upgrade/"}, {Name: "agent-upgrade", MountPath: "/tmp/agent_upgrade/"}}
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
			ServiceAccountName: a.ScriptServiceAccount(),
			RestartPolicy:      corev1.RestartPolicyNever,
			Volumes: []corev1.Volume{
				{Name: "tentacle-home", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: a.ClaimName()}}},
				{Name: "agent-upgrade", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "agent-upgrade-secret", Optional: ptr.To(true)}}},
			},
			Containers: []corev1.Container{{
				Name:    name,
				Image:   a.scriptImage(),
				Command: []string{"sh", "-c", fmt.Sprintf("/octopus/Work/%s/execute-bootstrapRunner.sh /octopus/Work/%s /octopus/Work/%s/bootstrapRunner Bootstrap.sh", ticket, ticket, ticket)},
				Env: []corev1.EnvVar{
					{Name: "OCTOPUS_RUNNING_IN_CONTAINER", Value: "Y"},
					{Name: "OCTOPUS__K8STENTACLE__NAMESPACE", Value: a.Namespace},
					{Name: "OCTOPUS__K8STENTACLE__HELMRELEASENAME", Value: a.Release},
					{Name: "OCTOPUS__K8STENTACLE__HELMCHARTVERSION", Value: a.version().chart},
					{Name: "TentacleHome", Value: "/octopus"},
				},
				Resources:    corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("100Mi")}},
				VolumeMounts: append([]corev1.VolumeMount{home}, upgrade...),
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
	case StyleRawScript:
		pod.Spec.Volumes = []corev1.Volume{
			{Name: "tentacle-home", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "init-nfs-volume", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: a.ClaimName()}}},
			pod.Spec.Volumes[1],
		}
		work := "/octopus/Work/" + ticket
		pod.Spec.InitContainers = []corev1.Container{{
			Name: name + "-init", Image: a.scriptImage(),
			Command:      []string{"sh", "-c", fmt.Sprintf(`mkdir -p "%s" && cp -r "/nfs-mount/Work/%s"/* "%s"`, work, ticket, work)},
			VolumeMounts: []corev1.VolumeMount{{Name: "init-nfs-volume", MountPath: "/nfs-mount"}, home},
		}}
	case StyleTemplate:
		pod.Spec.Volumes = nil
		pod.Spec.Containers[0].VolumeMounts = nil
		pod.Spec.Affinity = nil
		pod.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "octopus", Effect: corev1.TaintEffectNoSchedule}}
	}
	return pod
}
