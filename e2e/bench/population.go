package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
)

// A populated cluster, for the memory and scale measurements (here and in e2e/reliability):
// objects the webhook must NOT cache (ordinary application pods, claims with their volumes
// and attachments), sized like real ones (a Deployment's pod with a sidecar, probes, env and a
// projected token is about 4 KiB of JSON), so caching them by mistake would show; and agents
// seeded directly, as their chart and the controllers leave them.

// UnrelatedNamespaces is how many namespaces the unrelated objects are spread over.
const UnrelatedNamespaces = 20

// UnrelatedNamespace is the namespace of the i-th unrelated object (app-00 ... app-19).
func UnrelatedNamespace(i int) string { return fmt.Sprintf("app-%02d", i%UnrelatedNamespaces) }

// UnrelatedPod is the i-th application pod: a ReplicaSet's, with a sidecar, probes, env, a
// ConfigMap and a claim volume. Nothing selects it for the webhook.
func UnrelatedPod(i int) *corev1.Pod {
	app := fmt.Sprintf("service-%03d", i%200)
	env := []corev1.EnvVar{}
	for _, k := range []string{"LOG_LEVEL", "OTEL_EXPORTER_OTLP_ENDPOINT", "DB_HOST", "DB_NAME", "CACHE_URL", "FEATURE_FLAGS", "REGION", "HTTP_PORT"} {
		env = append(env, corev1.EnvVar{Name: k, Value: "value-of-" + k + "-for-" + app})
	}
	env = append(env, corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}})
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
		InitialDelaySeconds: 5, PeriodSeconds: 10, TimeoutSeconds: 1, FailureThreshold: 3, SuccessThreshold: 1}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-7d9f8b6c5-%05d", app, i), Namespace: UnrelatedNamespace(i),
			Labels:      map[string]string{"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "shop", "pod-template-hash": "7d9f8b6c5"},
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "kubectl.kubernetes.io/restartedAt": "2026-11-01T10:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-7d9f8b6c5",
				UID: "3f0b8e9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{
				{Name: "app", Image: "registry.example.com/shop/" + app + ":1.42.0", Env: env,
					Ports:         []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
					Resources:     corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}, Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}},
					LivenessProbe: probe, ReadinessProbe: probe,
					VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/" + app}, {Name: "data", MountPath: "/var/lib/" + app}},
				},
				{Name: "proxy", Image: "registry.example.com/mesh/proxy:1.20.3", Args: []string{"proxy", "sidecar", "--log-level=warning"},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("40Mi")}}},
			},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: app + "-config"}}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: unrelatedClaimName(i)}}},
			},
			Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "shop", Effect: corev1.TaintEffectNoSchedule}},
		},
	}
}

// Namespace is a bare Namespace.
func Namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func unrelatedClaimName(i int) string { return fmt.Sprintf("data-%05d", i) }
func unrelatedVolumeName(i int) string {
	return fmt.Sprintf("pvc-0e4d%04x-6b2a-4c1e-9f3d-%012x", i%0xffff, i)
}

// UnrelatedClaim is the i-th application claim (gp3, bound to UnrelatedVolume(i)).
func UnrelatedClaim(i int) client.Object {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: unrelatedClaimName(i), Namespace: UnrelatedNamespace(i),
			Labels:      map[string]string{"app.kubernetes.io/name": fmt.Sprintf("service-%03d", i%200)},
			Annotations: map[string]string{"pv.kubernetes.io/bind-completed": "yes", "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: ptr.To("gp3"), VolumeName: unrelatedVolumeName(i),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("20Gi")}},
		},
	}
}

// UnrelatedVolume is the i-th application volume (an EBS CSI volume).
func UnrelatedVolume(i int) client.Object {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: unrelatedVolumeName(i), Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": "ebs.csi.aws.com"},
			Finalizers: []string{"kubernetes.io/pv-protection", "external-attacher/ebs-csi-aws-com"}},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: "gp3",
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("20Gi")},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: UnrelatedNamespace(i), Name: unrelatedClaimName(i)},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "ebs.csi.aws.com", FSType: "ext4",
				VolumeHandle: fmt.Sprintf("vol-0%016x", i), VolumeAttributes: map[string]string{"storage.kubernetes.io/csiProvisionerIdentity": "1730000000000-8081-ebs.csi.aws.com"}}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"eu-west-1a"}}}}}}},
		},
	}
}

// UnrelatedAttachment is the i-th VolumeAttachment (of UnrelatedVolume(i), on node-1..3).
func UnrelatedAttachment(i int) client.Object {
	pv := unrelatedVolumeName(i)
	return &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("csi-%064x", i)},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: "ebs.csi.aws.com", NodeName: fmt.Sprintf("node-%d", i%3+1),
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv}},
	}
}

// FastClient is an admin client without client-side rate limiting, for filling a cluster.
func FastClient(cfg *rest.Config) (client.Client, error) {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 5000, 10000
	return client.New(c, client.Options{})
}

// CreateAll creates make(0..n-1) from a bounded pool of workers; it stops at the first error.
// An object that already exists counts as created.
func CreateAll(ctx context.Context, c client.Client, n, workers int, make func(int) client.Object) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := c.Create(ctx, make(i)); err != nil && !apierrors.IsAlreadyExists(err) {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// SeedAgent creates what an agent's chart and the controllers leave in a cluster, directly
// (no controller manager or scheduler needed): the namespace, the service accounts, the
// workspace (CreateWorkspace) and the Tentacle pod as its ReplicaSet makes it (the Deployment's pod template,
// pod-template-hash) bound to node. The pod is Pending until kwok runs it (or MarkRunning,
// without kwok).
func SeedAgent(ctx context.Context, c client.Client, a tentacle.Agent, node string) (*corev1.Pod, error) {
	if err := c.Create(ctx, Namespace(a.Namespace)); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	for _, sa := range a.ServiceAccounts() { // the ServiceAccount admission plugin wants them before the pod
		if err := c.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}
	if err := CreateWorkspace(ctx, c, a); err != nil {
		return nil, err
	}
	tmpl := a.Deployment().Spec.Template
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: a.DeploymentName() + "-6d5f7b9c4-x2kqp", Namespace: a.Namespace, Labels: tmpl.Labels},
		Spec:       tmpl.Spec,
	}
	pod.Labels["pod-template-hash"] = "6d5f7b9c4"
	pod.Spec.NodeName = node
	return pod, c.Create(ctx, pod)
}

// CreateWorkspace creates the agent's claim and the volume it binds to: the chart's NFS volume
// first (as Helm orders them), else the claim, then a volume pre-bound to it with the class
// the claim was stored with (the default class for chart v3's default). Existing ones are left.
func CreateWorkspace(ctx context.Context, c client.Client, a tentacle.Agent) error {
	create := func(o client.Object) error {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	}
	if a.Storage == tentacle.StorageNFS {
		if err := create(a.Volume(a.NFSClassName())); err != nil {
			return err
		}
		return create(a.Claim())
	}
	claim := a.Claim()
	if err := create(claim); err != nil {
		return err
	}
	return create(a.Volume(ptr.Deref(claim.Spec.StorageClassName, "")))
}

// MarkRunning sets pod's status to Running and Ready, as the kubelet would, on a cluster
// without kwok.
func MarkRunning(ctx context.Context, c client.Client, pod *corev1.Pod) error {
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}}
	return c.Status().Update(ctx, pod)
}

// EnsureNode creates a Ready Node named name unless it exists (kwok's, or a concurrent seed's):
// the webhook refuses to pin to a node that does not exist.
func EnsureNode(ctx context.Context, c client.Client, name string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}}}
	switch err := c.Create(ctx, n); {
	case apierrors.IsAlreadyExists(err):
		return nil
	case err != nil:
		return err
	}
	orig := n.DeepCopy()
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastTransitionTime: metav1.Now()}}
	return c.Status().Patch(ctx, n, client.MergeFrom(orig))
}

// RoomForPods raises the kwok nodes' capacity so that no load ever runs out of pods, CPU or
// memory (script pods request 500m CPU; the pinned ones all go to one node).
func RoomForPods(ctx context.Context, cp *controlplane.ControlPlane) error {
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10k"), corev1.ResourceMemory: resource.MustParse("100Ti"), corev1.ResourcePods: resource.MustParse("50k")}
	for _, n := range cp.Nodes {
		var node corev1.Node
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: n}, &node); err != nil {
			return err
		}
		patch := client.MergeFrom(node.DeepCopy())
		node.Status.Capacity, node.Status.Allocatable = res, res
		if err := cp.Client.Status().Patch(ctx, &node, patch); err != nil {
			return err
		}
	}
	return nil
}
