// Package reason is the closed list of machine-readable reason codes the webhook attaches to
// every admission decision. Codes are stable API: auditors query audit logs, Events and metrics
// by them, so never rename one; add new ones instead.
package reason

// Code is a stable, CamelCase reason for one admission decision.
type Code string

// Decision is what the webhook did with a request.
type Decision string

const (
	Allowed Decision = "allowed" // admitted unchanged
	Mutated Decision = "mutated" // admitted with a patch
	Denied  Decision = "denied"  // refused
)

// Mutating webhook outcomes.
const (
	// WorkspacePinned: workspace ensured and the pod pinned to the node holding an RWO volume.
	WorkspacePinned Code = "WorkspacePinned"
	// WorkspaceShared: workspace ensured; ReadWriteMany, so no pin.
	WorkspaceShared Code = "WorkspaceShared"
	// AlreadyComplete: the pod already had everything; nothing to change (reinvocation).
	AlreadyComplete Code = "AlreadyComplete"
)

// Denials. Every denial path in the webhook uses exactly one of these.
const (
	// AgentNotFound: no Tentacle pod of the agent exists in the script pod's namespace.
	AgentNotFound Code = "AgentNotFound"
	// WorkspaceClaimUnknown: the agent's workspace claim cannot be determined.
	WorkspaceClaimUnknown Code = "WorkspaceClaimUnknown"
	// WorkspaceClaimNotFound: the workspace claim named by the pod or agent does not exist.
	WorkspaceClaimNotFound Code = "WorkspaceClaimNotFound"
	// ReadWriteOncePodWorkspace: the claim is ReadWriteOncePod and can never be shared.
	ReadWriteOncePodWorkspace Code = "ReadWriteOncePodWorkspace"
	// WorkspaceNodeUnknown: RWO, but no node holds the volume yet (Tentacle not scheduled).
	WorkspaceNodeUnknown Code = "WorkspaceNodeUnknown"
	// ConflictingNodePin: the pod is already bound or pinned to a node other than the volume's.
	ConflictingNodePin Code = "ConflictingNodePin"
	// WorkspaceNotMounted: no container mounts (or could be given) the workspace claim.
	WorkspaceNotMounted Code = "WorkspaceNotMounted"
	// WorkspaceNotPinned: RWO claim, but the final pod is not pinned to the volume's node.
	WorkspaceNotPinned Code = "WorkspaceNotPinned"
	// ReadWriteManyUnsupported: RWX requested from a class that cannot serve it.
	ReadWriteManyUnsupported Code = "ReadWriteManyUnsupported"
	// ReadWriteManyUnknown: RWX requested from a class of unknown capability, and the admin
	// configured unknown to be denied.
	ReadWriteManyUnknown Code = "ReadWriteManyUnknown"
	// InvalidRequest: the AdmissionReview or its object could not be decoded.
	InvalidRequest Code = "InvalidRequest"
	// InternalError: the webhook could not gather its facts (API server or cache failure).
	InternalError Code = "InternalError"
)

// Validating outcomes that admit.
const (
	// WorkspaceValid: the script pod's workspace will work as admitted.
	WorkspaceValid Code = "WorkspaceValid"
	// ReadWriteManySupported: RWX requested from a class that can serve it.
	ReadWriteManySupported Code = "ReadWriteManySupported"
	// ReadWriteManyUnverified: RWX on a class of unknown capability; admitted with a warning.
	ReadWriteManyUnverified Code = "ReadWriteManyUnverified"
	// NotReadWriteMany: the claim does not ask for RWX; nothing to check.
	NotReadWriteMany Code = "NotReadWriteMany"
	// NoStorageClass: the claim resolves to no StorageClass (""), so it binds to a pre-created
	// volume; there is no provisioner to judge.
	NoStorageClass Code = "NoStorageClass"
	// OutOfScope: the object is outside the configured scope (namespace or claim selection).
	OutOfScope Code = "OutOfScope"
)

// All lists every code, in the order of docs/audit.md. A test keeps it, the constants above
// and the documentation in step.
func All() []Code {
	return []Code{
		WorkspacePinned, WorkspaceShared, AlreadyComplete,
		AgentNotFound, WorkspaceClaimUnknown, WorkspaceClaimNotFound, ReadWriteOncePodWorkspace,
		WorkspaceNodeUnknown, ConflictingNodePin, WorkspaceNotMounted, WorkspaceNotPinned,
		ReadWriteManyUnsupported, ReadWriteManyUnknown, InvalidRequest, InternalError,
		WorkspaceValid, ReadWriteManySupported, ReadWriteManyUnverified, NotReadWriteMany, NoStorageClass, OutOfScope,
	}
}
