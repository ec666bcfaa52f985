// Package tentacle builds the objects an Octopus Kubernetes agent really creates (Helm chart
// charts/kubernetes-agent and Tentacle's script pod creator), for the e2e tests and the demo:
// the Tentacle Deployment with its workspace claim, and script pods in each Tentacle style.
package tentacle

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Agent is one installed agent (one Helm release).
type Agent struct {
	Namespace string
	Release   string
	// AccessModes of the workspace claim (chart v3 default: ReadWriteOnce).
	AccessModes []corev1.PersistentVolumeAccessMode
	// StorageClass of the claim; "" binds statically to the PersistentVolume built by Volume.
	StorageClass string
	// NodeSelector places the Tentacle pod (tests put it on a known node).
	NodeSelector map[string]string
}

// ClaimName is the chart's claim name with NFS off.
func (a Agent) ClaimName() string { return fmt.Sprintf("octopus-agent-%s-pvc", a.Release) }

// VolumeName is the PersistentVolume the tests pre-create for the claim.
func (a Agent) VolumeName() string { return fmt.Sprintf("pv-%s-%s", a.Namespace, a.Release) }

func (a Agent) labels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "octopus-agent",
		"app.kubernetes.io/instance":   a.Release,
		"app.kubernetes.io/version":    "9.1.3702",
		"app.kubernetes.io/managed-by": "Helm",
		"helm.sh/chart":                "kubernetes-agent-3.0.0",
	}
}

// Claim is the agent's workspace claim as the chart creates it.
func (a Agent) Claim() *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: a.ClaimName(), Namespace: a.Namespace, Labels: a.labels(),
			Annotations: map[string]string{"meta.helm.sh/release-name": a.Release, "meta.helm.sh/release-namespace": a.Namespace}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      a.AccessModes,
			StorageClassName: ptr.To(a.StorageClass),
			VolumeName:       a.VolumeName(),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
		},
	}
}

// Volume is a pre-provisioned CSI volume the claim binds to (kwok clusters run no provisioner).
func (a Agent) Volume() *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: a.VolumeName()},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes:                   a.AccessModes,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			StorageClassName:              a.StorageClass,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: a.Namespace, Name: a.ClaimName()},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: "ebs.csi.aws.com", VolumeHandle: "vol-" + a.Namespace + "-" + a.Release}},
		},
	}
}

// ServiceAccounts are the chart's Tentacle and script-pod service accounts.
func (a Agent) ServiceAccounts() []*corev1.ServiceAccount {
	return []*corev1.ServiceAccount{
		{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-tentacle", Namespace: a.Namespace, Labels: a.labels()}},
		{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-scripts", Namespace: a.Namespace, Labels: a.labels()}},
	}
}

// TentacleLabels are the Tentacle pod's labels.
func (a Agent) TentacleLabels() map[string]string {
	l := a.labels()
	l["agent.octopus.com/component"] = "tentacle"
	return l
}

// Deployment is the Tentacle Deployment (replicas 1, default RollingUpdate).
func (a Agent) Deployment() *appsv1.Deployment {
	selector := map[string]string{"app.kubernetes.io/name": "octopus-agent", "app.kubernetes.io/instance": a.Release, "agent.octopus.com/component": "tentacle"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-tentacle" + suffix(a), Namespace: a.Namespace, Labels: a.labels()},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: a.TentacleLabels()},
				Spec:       a.tentaclePodSpec(),
			},
		},
	}
}

// suffix keeps two agents in one namespace apart (the chart names both octopus-agent-tentacle,
// so a second release in one namespace needs fullnameOverride; the labels still differ).
func suffix(a Agent) string {
	if a.Release == "prod" || a.Release == "" {
		return ""
	}
	return "-" + a.Release
}

func (a Agent) tentaclePodSpec() corev1.PodSpec {
	modes := `["` + string(a.AccessModes[0]) + `"]`
	return corev1.PodSpec{
		ServiceAccountName:           "octopus-agent-tentacle",
		AutomountServiceAccountToken: ptr.To(false),
		NodeSelector:                 a.NodeSelector,
		Volumes: []corev1.Volume{{Name: "tentacle-home", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: a.ClaimName()}}}},
		Containers: []corev1.Container{{
			Name:  "octopus-agent-tentacle",
			Image: "octopusdeploy/kubernetes-agent-tentacle:9.1.3702",
			Env: []corev1.EnvVar{
				{Name: "OCTOPUS__K8STENTACLE__NAMESPACE", Value: a.Namespace},
				{Name: "OCTOPUS__K8STENTACLE__HELMRELEASENAME", Value: a.Release},
				{Name: "OCTOPUS__K8STENTACLE__PODVOLUMECLAIMNAME", Value: a.ClaimName()},
				{Name: "OCTOPUS__K8STENTACLE__ACCESSMODESJSON", Value: modes},
				{Name: "OCTOPUS__K8STENTACLE__PODSERVICEACCOUNTNAME", Value: "octopus-agent-scripts"},
			},
			Resources:    corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("150Mi")}},
			VolumeMounts: []corev1.VolumeMount{{Name: "tentacle-home", MountPath: "/octopus"}},
		}},
	}
}
