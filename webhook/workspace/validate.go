package workspace

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// Validate judges a script pod as it will be stored, after every mutating webhook: the
// workspace claim is mounted, it is not ReadWriteOncePod, and a ReadWriteOnce claim comes
// with the pin to the node holding its volume. The ReadWriteMany capability of the claim's
// class is judged separately (package storage).
func Validate(pod *corev1.Pod, f Facts) Result {
	if denied, ok := checkFacts(f); !ok {
		return denied
	}
	mode := ModeOf(f.Claim)
	res := Result{Mode: mode, Claim: f.ClaimName}
	if mode == ModeExclusive {
		return deny(reason.ReadWriteOncePodWorkspace, fmt.Sprintf(
			"workspace claim %s/%s is ReadWriteOncePod: no second pod can ever mount it, so this script pod can never start; "+
				"recreate the agent's claim with accessModes [ReadWriteOnce] (or [ReadWriteMany] on a class that can serve it)",
			f.Agent.Namespace, f.ClaimName))
	}
	volume := claimVolumeName(pod, f.ClaimName)
	if volume == "" || !anyMounts(pod, volume) {
		return deny(reason.WorkspaceNotMounted, fmt.Sprintf(
			"the pod does not mount the agent's workspace claim %s/%s in any container, so the script cannot reach its files; "+
				"mount the claim at the workspace path (the mutating webhook does this unless the path is taken)", f.Agent.Namespace, f.ClaimName))
	}
	if mode == ModePin {
		if denied, ok := pinRefusal(pod, f, priorRecord(pod)); !ok {
			return denied
		}
		if !IsPinned(pod, f.Node) {
			return deny(reason.WorkspaceNotPinned, fmt.Sprintf(
				"workspace claim %s/%s is ReadWriteOnce and attached to node %q (%s), but the pod is not pinned there and would fail with a Multi-Attach error elsewhere; "+
					"let the mutating webhook pin it (is it installed and does its objectSelector match?) or add a required node affinity on metadata.name=%s",
				f.Agent.Namespace, f.ClaimName, f.Node, f.NodeSource, f.Node))
		}
		if cordonedFor(pod, f.NodeInfo) {
			return deny(reason.WorkspaceNodeCordoned, fmt.Sprintf(
				"workspace claim %s/%s is ReadWriteOnce and held by node %q, which is cordoned, and the pod does not tolerate %s, so it would sit Pending; "+
					"let the mutating webhook add the toleration (is it installed?) or add it to the pod", f.Agent.Namespace, f.ClaimName, f.Node, corev1.TaintNodeUnschedulable))
		}
		res.Node = f.Node
	}
	res.Code = reason.WorkspaceValid
	res.Message = fmt.Sprintf("workspace claim %q mounted", f.ClaimName) + pinnedSuffix(res)
	return res
}
