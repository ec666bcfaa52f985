// Package tentacle builds the objects an Octopus Kubernetes agent really creates, for the e2e
// tests and the demo: the Tentacle Deployment, its workspace claim (and the NFS volume or a
// pre-bound volume standing in for a provisioner), the pre-install hook pod, and script pods
// in each Tentacle style. Every generation of the chart (charts/kubernetes-agent v1 = 1.24.0
// with Tentacle 8.3.2786, v2 = 2.51.2 and v3 = 3.13.2 with Tentacle 9.2.4285), as read from
// the chart's templates and Tentacle's script pod creators; see README "Supported agent shapes".
package tentacle

import (
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Storage is how the agent's workspace claim gets its volume.
type Storage int

const (
	// StorageStatic: persistence.volumeName set, with persistence.storageClassName as
	// StorageClass ("" when "-"): the claim binds to a pre-created volume. The zero value.
	StorageStatic Storage = iota
	// StorageClass: persistence.storageClassName set; no volumeName. A provisioner would create
	// the volume; the tests pre-bind one to the claim (claimRef) instead.
	StorageClass
	// StorageDefaultClass: chart v3's default, no storageClassName: the cluster's default class.
	StorageDefaultClass
	// StorageNFS: the chart's in-cluster NFS server (v1/v2 default, v3 opt-in): a static NFS
	// PersistentVolume and an unlabelled claim naming it, with a class that does not exist.
	StorageNFS
)

// Agent is one installed agent (one Helm release).
type Agent struct {
	Namespace string
	Release   string
	// Generation of the chart: 1, 2 or 3 (0 means 3).
	Generation int
	// NameOverride is the chart's nameOverride ("" = octopus-agent).
	NameOverride string
	// Worker installs a Kubernetes Worker (agent.worker.enabled; v2 and v3).
	Worker bool
	Storage
	// AccessModes of the workspace claim (chart v3 default: ReadWriteOnce; NFS: ReadWriteMany).
	AccessModes []corev1.PersistentVolumeAccessMode
	// StorageClass names the class for StorageClass (and, for StorageStatic, the volume's).
	StorageClass string
	// NodeSelector places the Tentacle pod (tests put it on a known node).
	NodeSelector map[string]string
}

type chartVersion struct{ chart, tentacle string }

var versions = map[int]chartVersion{1: {"1.24.0", "8.3.2786"}, 2: {"2.51.2", "9.2.4285"}, 3: {"3.13.2", "9.2.4285"}}

func (a Agent) gen() int {
	if a.Generation == 0 {
		return 3
	}
	return a.Generation
}

func (a Agent) version() chartVersion { return versions[a.gen()] }

// Name is the chart's name: nameOverride, else octopus-agent.
func (a Agent) Name() string {
	if a.NameOverride != "" {
		return a.NameOverride
	}
	return "octopus-agent"
}

func (a Agent) nfsName() string { return fmt.Sprintf("%s-nfs-%s", a.Name(), a.Release) }

// ClaimName is the chart's claim name: NFS <name>-nfs-<release>-pvc-<size>, else
// <name>-<release>-pvc (lower-cased from v3 on).
func (a Agent) ClaimName() string {
	if a.Storage == StorageNFS {
		return strings.ToLower(a.nfsName() + "-pvc-10Gi")
	}
	name := fmt.Sprintf("%s-%s-pvc", a.Name(), a.Release)
	if a.gen() >= 3 {
		name = strings.ToLower(name)
	}
	return name
}

// VolumeName is the PersistentVolume behind the claim: the chart's NFS volume, or the one
// the tests pre-create in place of a provisioner.
func (a Agent) VolumeName() string {
	if a.Storage == StorageNFS {
		return strings.ToLower(a.nfsName() + "-pv-10Gi")
	}
	return fmt.Sprintf("pv-%s-%s", a.Namespace, a.Release)
}

// NFSClassName is the class the NFS claim and volume name; no such StorageClass exists.
func (a Agent) NFSClassName() string { return a.nfsName() + "-csi" }

func (a Agent) modes() []corev1.PersistentVolumeAccessMode {
	if len(a.AccessModes) > 0 {
		return a.AccessModes
	}
	if a.Storage == StorageNFS || a.gen() < 3 {
		return []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	}
	return []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
}

// labels are the chart's "kubernetes-agent.labels", the same in every generation.
func (a Agent) labels() map[string]string {
	return map[string]string{
		"helm.sh/chart":                "kubernetes-agent-" + a.version().chart,
		"app.kubernetes.io/name":       a.Name(),
		"app.kubernetes.io/instance":   a.Release,
		"app.kubernetes.io/version":    a.version().tentacle,
		"app.kubernetes.io/managed-by": "Helm",
	}
}

func (a Agent) helmAnnotations() map[string]string {
	return map[string]string{"meta.helm.sh/release-name": a.Release, "meta.helm.sh/release-namespace": a.Namespace}
}

// Claim is the agent's workspace claim as the chart renders it.
func (a Agent) Claim() *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: a.ClaimName(), Namespace: a.Namespace, Labels: a.labels(), Annotations: a.helmAnnotations()},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: a.modes(),
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
		},
	}
	switch a.Storage {
	case StorageStatic:
		c.Spec.StorageClassName, c.Spec.VolumeName = ptr.To(a.StorageClass), a.VolumeName()
	case StorageClass:
		c.Spec.StorageClassName = ptr.To(a.StorageClass)
	case StorageNFS:
		// nfs-pvc.yaml: a name and nothing else in its metadata.
		c.Labels, c.Annotations = nil, nil
		c.Spec.StorageClassName, c.Spec.VolumeName = ptr.To(a.NFSClassName()), a.VolumeName()
	}
	return c
}

// Volume is the claim's volume: the chart's NFS volume, or a pre-created CSI volume bound to
// the claim by claimRef (kwok clusters run no provisioner). class is the claim's class as
// stored (the default class, for StorageDefaultClass).
func (a Agent) Volume(class string) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: a.VolumeName()},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes:                   a.modes(),
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			StorageClassName:              class,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: a.Namespace, Name: a.ClaimName()},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: "ebs.csi.aws.com", VolumeHandle: "vol-" + a.Namespace + "-" + a.Release}},
		},
	}
	if a.Storage == StorageNFS {
		// nfs-pv.yaml: no labels, no claimRef (the claim names the volume).
		pv.Annotations = map[string]string{"pv.kubernetes.io/provisioned-by": "nfs.csi.k8s.io"}
		pv.Spec.ClaimRef, pv.Spec.StorageClassName = nil, a.NFSClassName()
		pv.Spec.CSI = &corev1.CSIPersistentVolumeSource{Driver: "nfs.csi.k8s.io",
			VolumeHandle:     fmt.Sprintf("%s-nfs.%s.svc.cluster.local/octopus##", a.Name(), a.Namespace),
			VolumeAttributes: map[string]string{"server": fmt.Sprintf("%s-nfs.%s.svc.cluster.local", a.Name(), a.Namespace), "share": "/"}}
	}
	return pv
}

// ScriptServiceAccount is the script pods' service account (scriptPods.serviceAccount.name
// default: <name>-scripts).
func (a Agent) ScriptServiceAccount() string { return a.Name() + "-scripts" }

// ServiceAccounts are the chart's Tentacle and script-pod service accounts, and from v2 on
// the pre-install hook pod's.
func (a Agent) ServiceAccounts() []*corev1.ServiceAccount {
	sas := []*corev1.ServiceAccount{
		{ObjectMeta: metav1.ObjectMeta{Name: a.Name() + "-tentacle", Namespace: a.Namespace, Labels: a.labels()}},
		{ObjectMeta: metav1.ObjectMeta{Name: a.ScriptServiceAccount(), Namespace: a.Namespace, Labels: a.labels()}},
	}
	if a.gen() >= 2 {
		sas = append(sas, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: a.Name() + "-tentacle-pre", Namespace: a.Namespace, Labels: a.labels()}})
	}
	return sas
}

// TentacleLabels are the Tentacle pod's labels: the chart's labels, plus the component label
// from chart v3 on.
func (a Agent) TentacleLabels() map[string]string {
	l := a.labels()
	if a.gen() >= 3 {
		l["agent.octopus.com/component"] = "tentacle"
	}
	return l
}

// DeploymentName is <name>-tentacle; a second release in one namespace without nameOverride
// needs fullnameOverride, which the tests model with a suffix.
func (a Agent) DeploymentName() string {
	if a.NameOverride != "" || a.Release == "prod" || a.Release == "" {
		return a.Name() + "-tentacle"
	}
	return a.Name() + "-tentacle-" + a.Release
}

// Deployment is the Tentacle Deployment: replicas 1, no strategy (the default RollingUpdate),
// selector name + instance.
func (a Agent) Deployment() *appsv1.Deployment {
	selector := map[string]string{"app.kubernetes.io/name": a.Name(), "app.kubernetes.io/instance": a.Release}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.DeploymentName(), Namespace: a.Namespace, Labels: a.TentacleLabels(), Annotations: a.helmAnnotations()},
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

func (a Agent) tentacleEnv() []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: "OCTOPUS__K8STENTACLE__NAMESPACE", Value: a.Namespace},
		{Name: "OCTOPUS__K8STENTACLE__HELMRELEASENAME", Value: a.Release},
		{Name: "OCTOPUS__K8STENTACLE__HELMCHARTVERSION", Value: a.version().chart},
		{Name: "OCTOPUS__K8STENTACLE__PODVOLUMECLAIMNAME", Value: a.ClaimName()},
		{Name: "OCTOPUS__K8STENTACLE__PODSERVICEACCOUNTNAME", Value: a.ScriptServiceAccount()},
		{Name: "OCTOPUS__K8STENTACLE__PERSISTENTVOLUMESIZE", Value: "10Gi"},
		{Name: "TentacleHome", Value: "/octopus"},
	}
	if a.gen() >= 2 {
		env = append(env, corev1.EnvVar{Name: "WorkerEnabled", Value: fmt.Sprint(a.Worker)})
	}
	if a.gen() >= 3 {
		modes, _ := json.Marshal(a.modes())
		env = append(env, corev1.EnvVar{Name: "OCTOPUS__K8STENTACLE__ACCESSMODESJSON", Value: string(modes)})
	}
	return env
}

func (a Agent) tentaclePodSpec() corev1.PodSpec {
	home := []corev1.VolumeMount{{Name: "tentacle-home", MountPath: "/octopus"}}
	spec := corev1.PodSpec{
		ServiceAccountName: a.Name() + "-tentacle",
		NodeSelector:       a.NodeSelector,
		Volumes: []corev1.Volume{{Name: "tentacle-home", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: a.ClaimName()}}}},
		Containers: []corev1.Container{{
			Name:         a.Name() + "-tentacle",
			Image:        "octopusdeploy/kubernetes-agent-tentacle:" + a.version().tentacle,
			Env:          a.tentacleEnv(),
			Resources:    corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("150Mi")}},
			VolumeMounts: home,
		}},
	}
	if a.Storage == StorageNFS {
		spec.Containers = append(spec.Containers, corev1.Container{
			Name: "nfs-watchdog", Image: "octopusdeploy/kubernetes-agent-nfs-watchdog:0.2.0",
			Env: []corev1.EnvVar{{Name: "watchdog_directory", Value: "/octopus"}}, VolumeMounts: home,
		})
	}
	return spec
}

// HookPod is the pre-install hook pod <name>-tentacle-pre (v2 and v3): the chart's labels,
// no component label, an emptyDir at /octopus and no claim. It is not a Tentacle pod.
func (a Agent) HookPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: a.Name() + "-tentacle-pre", Namespace: a.Namespace, Labels: a.labels(),
			Annotations: map[string]string{"helm.sh/hook": "pre-install", "helm.sh/hook-weight": "-9", "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: a.Name() + "-tentacle-pre",
			RestartPolicy:      corev1.RestartPolicyNever,
			Volumes:            []corev1.Volume{{Name: "temp-dir", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Containers: []corev1.Container{{
				Name: a.Name() + "-tentacle", Image: "octopusdeploy/kubernetes-agent-tentacle:" + a.version().tentacle,
				Command: []string{"/scripts/register.sh"},
				Env: []corev1.EnvVar{{Name: "TENTACLECONFIGMAPNAME", Value: "tentacle-config-pre"}, {Name: "TENTACLEENCRYPTIONSECRETNAME", Value: "tentacle-secret-pre"},
					{Name: "WorkerEnabled", Value: fmt.Sprint(a.Worker)}, {Name: "WorkerPools", Value: ""}},
				VolumeMounts: []corev1.VolumeMount{{Name: "temp-dir", MountPath: "/octopus"}},
			}},
		},
	}
}
