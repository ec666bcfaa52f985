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
	// WouldDeny: admitted unchanged, with a warning, although enforce mode would refuse it:
	// the namespace (label workspace-webhook.io/enforcement=warn) or the webhook
	// (--enforcement=warn) is in warn mode. The reason code is the refusal's.
	WouldDeny Decision = "would-deny"
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

// Tentacle pod placement outcomes (mutate-tentacle-pod; it never refuses).
const (
	// TentaclePinned: a new Tentacle pod pinned to the node holding its agent's RWO workspace.
	TentaclePinned Code = "TentaclePinned"
	// TentacleFreshInstall: no node holds the workspace yet (install, or every pod gone).
	TentacleFreshInstall Code = "TentacleFreshInstall"
	// TentacleWorkspaceShared: the workspace is ReadWriteMany (or NFS); the pod may run anywhere.
	TentacleWorkspaceShared Code = "TentacleWorkspaceShared"
	// TentacleNodeUnusable: the node holding the workspace is cordoned, NotReady, tainted
	// against the pod or gone; not pinned, so the pod can go where the volume will be freed to.
	TentacleNodeUnusable Code = "TentacleNodeUnusable"
	// TentaclePinConflict: the Tentacle pod's own node selection excludes the volume's node;
	// not pinned, with a warning.
	TentaclePinConflict Code = "TentaclePinConflict"
	// TentacleClaimUnknown: the Tentacle pod's workspace claim is not known or does not exist yet.
	TentacleClaimUnknown Code = "TentacleClaimUnknown"
)

// Denials. Every denial path in the webhook uses exactly one of these.
const (
	// AgentNotFound: no Tentacle pod of the agent exists in the script pod's namespace.
	AgentNotFound Code = "AgentNotFound"
	// WorkspaceClaimUnknown: the agent's workspace claim cannot be determined.
	WorkspaceClaimUnknown Code = "WorkspaceClaimUnknown"
	// WorkspaceClaimNotFound: the workspace claim named by the pod or agent does not exist.
	WorkspaceClaimNotFound Code = "WorkspaceClaimNotFound"
	// WorkspaceClaimTerminating: the workspace claim is being deleted; Kubernetes schedules no
	// new pod that uses it.
	WorkspaceClaimTerminating Code = "WorkspaceClaimTerminating"
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
	// WorkspaceNodeGone: the node that held the RWO volume no longer exists.
	WorkspaceNodeGone Code = "WorkspaceNodeGone"
	// WorkspaceNodeNotReady: the node holding the RWO volume is NotReady.
	WorkspaceNodeNotReady Code = "WorkspaceNodeNotReady"
	// WorkspaceNodeTainted: the node holding the RWO volume has a NoSchedule/NoExecute taint
	// the script pod does not tolerate.
	WorkspaceNodeTainted Code = "WorkspaceNodeTainted"
	// WorkspaceNodeCordoned: the node holding the RWO volume is cordoned and the final pod
	// does not tolerate it (the mutating webhook adds that toleration).
	WorkspaceNodeCordoned Code = "WorkspaceNodeCordoned"
	// WorkspaceMoved: the volume moved to another node after an earlier invocation pinned the
	// pod (a Tentacle rollout during admission).
	WorkspaceMoved Code = "WorkspaceMoved"
	// ReadWriteManyUnsupported: RWX requested from a class that cannot serve it.
	ReadWriteManyUnsupported Code = "ReadWriteManyUnsupported"
	// ReadWriteManyUnknown: RWX requested from a class of unknown capability, and the admin
	// configured unknown to be denied.
	ReadWriteManyUnknown Code = "ReadWriteManyUnknown"
	// ClaimCannotBind: the claim can only bind to an existing volume (it names one, or its
	// class has no provisioner) and none can take it; refused with --deny-unbindable-claims,
	// else admitted with this code and a warning.
	ClaimCannotBind Code = "ClaimCannotBind"
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
	// ReadWriteManyBound: the claim is Bound to a volume that has ReadWriteMany; its class is
	// not judged again (Kubernetes never re-classes a bound claim).
	ReadWriteManyBound Code = "ReadWriteManyBound"
	// StaticallyBound: the claim names its PersistentVolume (spec.volumeName); that volume,
	// not a provisioner, decides (the agent chart's NFS mode).
	StaticallyBound Code = "StaticallyBound"
	// CapabilityCheckFailed: the claim check could not read what it needed (API error or
	// its time bound); admitted with a warning, as the claim webhooks' failurePolicy Ignore.
	CapabilityCheckFailed Code = "CapabilityCheckFailed"
	// OutOfScope: the object is outside the configured scope (namespace or claim selection).
	OutOfScope Code = "OutOfScope"
)

// All lists every code, in the order of docs/audit.md. A test keeps it, the constants above
// and the documentation in step.
func All() []Code {
	return []Code{
		WorkspacePinned, WorkspaceShared, AlreadyComplete,
		TentaclePinned, TentacleFreshInstall, TentacleWorkspaceShared, TentacleNodeUnusable, TentaclePinConflict, TentacleClaimUnknown,
		AgentNotFound, WorkspaceClaimUnknown, WorkspaceClaimNotFound, WorkspaceClaimTerminating, ReadWriteOncePodWorkspace,
		WorkspaceNodeUnknown, ConflictingNodePin, WorkspaceNotMounted, WorkspaceNotPinned,
		WorkspaceNodeGone, WorkspaceNodeNotReady, WorkspaceNodeTainted, WorkspaceNodeCordoned, WorkspaceMoved,
		ReadWriteManyUnsupported, ReadWriteManyUnknown, ClaimCannotBind, InvalidRequest, InternalError,
		WorkspaceValid, ReadWriteManySupported, ReadWriteManyUnverified, NotReadWriteMany, NoStorageClass,
		ReadWriteManyBound, StaticallyBound, CapabilityCheckFailed, OutOfScope,
	}
}
