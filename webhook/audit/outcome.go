package audit

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// Webhook names used in metrics and logs.
const (
	MutatePod   = "mutate-pod"
	ValidatePod = "validate-pod"
	ValidatePVC = "validate-pvc"
	// MutateTentacle places new Tentacle pods (agent upgrades on ReadWriteOnce storage).
	MutateTentacle = "mutate-tentacle-pod"
)

// Outcome is one admission decision and the facts behind it.
type Outcome struct {
	Webhook  string
	Decision reason.Decision
	Code     reason.Code
	Message  string
	Warnings []string

	Agent            string // namespace/release
	Claim            string
	StorageClass     string
	Provisioner      string
	CapabilitySource string
	Node             string

	// EventTarget is the existing object a denial Event is recorded on (the Tentacle pod,
	// the agent's claim, or the namespace). nil records no Event.
	EventTarget *corev1.ObjectReference
	// NodeSource says why Node holds the workspace; Tentacle is the agent's Tentacle pod.
	// Together they let the recorder tell when an agent's pins move to another node.
	NodeSource string
	Tentacle   *corev1.ObjectReference
}

// Annotation keys; the kube-apiserver prefixes each with the webhook configuration's name.
const (
	KeyDecision         = "decision"
	KeyReason           = "reason"
	KeyAgent            = "agent"
	KeyClaim            = "claim"
	KeyStorageClass     = "storage-class"
	KeyProvisioner      = "provisioner"
	KeyCapabilitySource = "capability-source"
	KeyNode             = "node"
)

// Annotations are the audit annotations of the decision; empty facts are left out.
func (o Outcome) Annotations() map[string]string {
	m := map[string]string{KeyDecision: string(o.Decision), KeyReason: string(o.Code)}
	for k, v := range map[string]string{
		KeyAgent: o.Agent, KeyClaim: o.Claim, KeyStorageClass: o.StorageClass, KeyProvisioner: o.Provisioner,
		KeyCapabilitySource: o.CapabilitySource, KeyNode: o.Node,
	} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}
