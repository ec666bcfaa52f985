package workspace

import (
	"fmt"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// PlaceTentacle decides where a new Tentacle pod of an agent may run. The chart's Deployment
// has one replica and the default RollingUpdate (maxSurge 1, maxUnavailable 0): on every
// upgrade the new pod is created while the old one still holds the ReadWriteOnce workspace,
// and if the scheduler places it elsewhere it hangs on a Multi-Attach error and the upgrade
// stalls. So the new pod is pinned to the node that holds the volume, exactly as script pods
// are, but only where that node can take it: a cordoned, NotReady, tainted or gone node is
// being emptied, its pod's eviction frees the volume, and a pin would strand the new pod.
//
// It never refuses (the webhook entry is failurePolicy Ignore for the same reason: nothing
// may block an agent install or upgrade); every outcome has its reason code.
func PlaceTentacle(pod *corev1.Pod, f Facts) Result {
	claim := f.Agent.Namespace + "/" + f.ClaimName
	switch {
	case f.ClaimName == "":
		return placed(reason.TentacleClaimUnknown, "the Tentacle pod mounts no workspace claim at the workspace path; nothing to keep together")
	case f.Claim == nil:
		return placed(reason.TentacleClaimUnknown, fmt.Sprintf("workspace claim %s does not exist yet; nothing holds it", claim))
	}
	mode := ModeOf(f.Claim)
	res := Result{Mode: mode, Claim: f.ClaimName}
	switch {
	case mode != ModePin:
		return with(res, reason.TentacleWorkspaceShared, fmt.Sprintf("workspace claim %s is %s: the new Tentacle pod may run on any node", claim, mode))
	case f.Node == "":
		return with(res, reason.TentacleFreshInstall, fmt.Sprintf("no node holds workspace claim %s yet (%s): nothing to follow", claim, f.NodeSource))
	}
	if why := nodeUnusable(pod, f); why != "" {
		return with(res, reason.TentacleNodeUnusable, fmt.Sprintf(
			"workspace claim %s is held by node %q, but %s; not pinned: the old pod's eviction frees the volume for the new pod's node", claim, f.Node, why))
	}
	if why := pinConflict(pod, f.Node, f.NodeInfo); why != "" {
		res = with(res, reason.TentaclePinConflict, fmt.Sprintf(
			"workspace claim %s is held by node %q, but the Tentacle pod's own node selection excludes it (%s); not pinned, so the new pod may wait on a Multi-Attach error until the old one stops",
			claim, f.Node, why))
		res.Warnings = []string{res.Message}
		return res
	}
	ops := pinOps(pod, f.Node)
	res.Node = f.Node
	if len(ops) == 0 {
		return with(res, reason.AlreadyComplete, fmt.Sprintf("the Tentacle pod is already pinned to node %q", f.Node))
	}
	rec := priorRecord(pod)
	rec.Claim, rec.Mode, rec.Node, rec.NodeSource = f.ClaimName, mode, f.Node, f.NodeSource
	rec.addInjected("nodeAffinity")
	res.Record = rec
	res.Patch = append([]jsonpatch.Operation{}, ops...)
	res.Patch = append(res.Patch, recordOp(pod, rec))
	return with(res, reason.TentaclePinned, fmt.Sprintf("pinned to node %q, which holds workspace claim %s (%s)", f.Node, claim, f.NodeSource))
}

// nodeUnusable says why the node holding the volume cannot take a new pod now, or "".
func nodeUnusable(pod *corev1.Pod, f Facts) string {
	if f.NodeMissing {
		return "that node no longer exists"
	}
	n := f.NodeInfo
	if n == nil {
		return ""
	}
	if n.Spec.Unschedulable {
		return "that node is cordoned (being drained or replaced)"
	}
	if ready, why := nodeReady(n); !ready {
		return "that node is NotReady (" + why + ")"
	}
	if taint, bad := untoleratedTaint(pod, n); bad {
		return "that node has taint " + taintString(taint) + ", which the Tentacle pod does not tolerate"
	}
	return ""
}

func placed(code reason.Code, msg string) Result { return Result{Code: code, Message: msg} }

func with(r Result, code reason.Code, msg string) Result {
	r.Code, r.Message = code, msg
	return r
}
