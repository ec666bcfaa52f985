package explain

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// Offline states the facts a cluster would give, for explaining without one.
type Offline struct {
	// Claim is the agent's workspace claim; "" takes the claim the pod names itself.
	Claim string
	// AccessMode of the claim (ReadWriteOnce, ReadWriteMany, ReadWriteOncePod).
	AccessMode corev1.PersistentVolumeAccessMode
	// NoClaim: the claim does not exist.
	NoClaim bool
	// NoTentacle: no Tentacle pod of the agent exists.
	NoTentacle bool
	// Node holds the volume ("" = none yet); NodeState is ready, cordoned, notready or gone.
	Node, NodeState string
	// NodeLabels are the node's labels beyond hostname, os=linux and arch=amd64.
	NodeLabels map[string]string
	// NodeTaints are the node's taints.
	NodeTaints []corev1.Taint
	// MountPath is the workspace path.
	MountPath string
}

// NodeStates are the values NodeState accepts.
var NodeStates = []string{"ready", "cordoned", "notready", "gone"}

// Validate refuses contradictory or unknown facts.
func (o *Offline) Validate() error {
	switch o.AccessMode {
	case corev1.ReadWriteOnce, corev1.ReadWriteMany, corev1.ReadWriteOncePod, corev1.ReadOnlyMany:
	default:
		return fmt.Errorf("--access-mode %q: want ReadWriteOnce, ReadWriteMany, ReadWriteOncePod or ReadOnlyMany", o.AccessMode)
	}
	for _, s := range NodeStates {
		if o.NodeState == s {
			return nil
		}
	}
	return fmt.Errorf("--node-state %q: want one of %s", o.NodeState, strings.Join(NodeStates, ", "))
}

// Facts are the facts for a script pod.
func (o *Offline) Facts(_ context.Context, pod *corev1.Pod) (workspace.Facts, error) {
	f := workspace.Facts{Agent: workspace.AgentRef{Namespace: namespaceOf(pod), Release: pod.Annotations[agent.ReleaseAnnotation]}}
	if !o.NoTentacle {
		f.TentaclePods, f.TentaclePod = 1, "tentacle (stated)"
	}
	f.ClaimName, f.ClaimSource = o.Claim, "stated with --claim"
	if f.ClaimName == "" {
		f.ClaimName, f.ClaimSource = agent.ClaimOfScriptPod(pod, o.MountPath)
	}
	o.fill(&f)
	return f, nil
}

// TentacleFacts are the facts for a Tentacle pod being created; the volume is held by
// another Tentacle pod on Node.
func (o *Offline) TentacleFacts(_ context.Context, pod *corev1.Pod) (workspace.Facts, error) {
	f := workspace.Facts{Agent: workspace.AgentRef{Namespace: namespaceOf(pod), Release: pod.Labels[agent.InstanceLabel]}}
	f.ClaimName, f.ClaimSource = o.Claim, "stated with --claim"
	if f.ClaimName == "" {
		f.ClaimName, f.ClaimSource = agent.ClaimOfTentacle(pod, o.MountPath)
	}
	o.fill(&f)
	return f, nil
}

func (o *Offline) fill(f *workspace.Facts) {
	if f.ClaimName == "" || o.NoClaim {
		return
	}
	modes := []corev1.PersistentVolumeAccessMode{o.AccessMode}
	f.Claim = &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: f.ClaimName, Namespace: f.Agent.Namespace},
		Spec:       corev1.PersistentVolumeClaimSpec{AccessModes: modes, VolumeName: "pv-stated"},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: modes},
	}
	if o.Node == "" {
		f.NodeSource = "no node holds it (none stated with --node)"
		return
	}
	f.Node, f.NodeSource = o.Node, "stated with --node"
	if o.NodeState == "gone" {
		f.NodeMissing = true
		return
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: o.Node, Labels: map[string]string{
		corev1.LabelHostname: o.Node, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}}}
	for k, v := range o.NodeLabels {
		n.Labels[k] = v
	}
	n.Spec.Taints = o.NodeTaints
	ready := corev1.ConditionTrue
	switch o.NodeState {
	case "cordoned":
		n.Spec.Unschedulable = true
	case "notready":
		ready = corev1.ConditionUnknown
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: "stated with --node-state"}}
	f.NodeInfo = n
}

func namespaceOf(pod *corev1.Pod) string {
	if pod.Namespace == "" {
		return "default"
	}
	return pod.Namespace
}

// Classes is a client.Reader over stated StorageClasses and a node count, standing for the
// webhook's cache when a claim is explained offline; it has no PersistentVolumes.
type Classes struct {
	Items []storagev1.StorageClass
	Nodes int
}

func (c *Classes) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if sc, ok := obj.(*storagev1.StorageClass); ok {
		for _, i := range c.Items {
			if i.Name == key.Name {
				*sc = i
				return nil
			}
		}
	}
	return apierrors.NewNotFound(schema.GroupResource{Resource: fmt.Sprintf("%T", obj)}, key.Name)
}

func (c *Classes) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	switch l := list.(type) {
	case *storagev1.StorageClassList:
		l.Items = c.Items
	case *corev1.NodeList:
		l.Items = make([]corev1.Node, c.Nodes)
	case *corev1.PersistentVolumeList:
		l.Items = nil
	default:
		return fmt.Errorf("offline: nothing stated for %T", list)
	}
	return nil
}
