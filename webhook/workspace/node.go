package workspace

import (
	"fmt"

	"github.com/go-logr/logr"
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// The state of the node that holds a ReadWriteOnce volume decides whether a script pod pinned
// there can start. The outcomes, chosen so that no pod is admitted to sit Pending:
//   - cordoned (spec.unschedulable): the pod runs where the volume is. The webhook adds the
//     toleration of node.kubernetes.io/unschedulable, as DaemonSets have it: the volume cannot
//     be used anywhere else, and node-pool upgrades keep nodes cordoned for a long time.
//   - NotReady, gone, or tainted NoSchedule/NoExecute against the pod's tolerations: refused
//     at once, naming the node, its state and what to do.

// UnschedulableToleration lets a pod be scheduled onto a cordoned node.
var UnschedulableToleration = corev1.Toleration{
	Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule,
}

// nodeRefusal returns the denial for a node that holds the volume but can never run the pod,
// or ok. It judges only what the facts tell: without a node object (not looked up) nothing.
func nodeRefusal(pod *corev1.Pod, f Facts) (Result, bool) {
	claim := f.Agent.Namespace + "/" + f.ClaimName
	if f.NodeMissing {
		return deny(reason.WorkspaceNodeGone, fmt.Sprintf(
			"workspace claim %s is ReadWriteOnce and held by node %q (%s), but that node no longer exists, so the pod could never start; "+
				"retry once the Tentacle pod runs on another node (kubectl get pods -n %s)", claim, f.Node, f.NodeSource, f.Agent.Namespace)), false
	}
	n := f.NodeInfo
	if n == nil {
		return Result{}, true
	}
	if ready, why := nodeReady(n); !ready {
		return deny(reason.WorkspaceNodeNotReady, fmt.Sprintf(
			"workspace claim %s is ReadWriteOnce and held by node %q (%s), but that node is NotReady (%s), so the pod would sit Pending there; "+
				"retry once the node is Ready again or the Tentacle pod has moved to a Ready node (kubectl describe node %s)",
			claim, n.Name, f.NodeSource, why, n.Name)), false
	}
	if taint, bad := untoleratedTaint(pod, n); bad {
		return deny(reason.WorkspaceNodeTainted, fmt.Sprintf(
			"workspace claim %s is ReadWriteOnce and held by node %q (%s), but that node has taint %s which the pod does not tolerate, so it could never be scheduled there; "+
				"give the agent's script pods a toleration for it (agent chart: scriptPods.tolerations, or the script pod template), or remove the taint from the node",
			claim, n.Name, f.NodeSource, taintString(taint))), false
	}
	return Result{}, true
}

// nodeReady reads the node's Ready condition; a node that reports none is not Ready.
func nodeReady(n *corev1.Node) (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			return true, ""
		}
		why := "Ready=" + string(c.Status)
		if c.Reason != "" {
			why += ", " + c.Reason
		}
		if !c.LastTransitionTime.IsZero() {
			why += " since " + c.LastTransitionTime.UTC().Format("2006-01-02T15:04:05Z")
		}
		return false, why
	}
	return false, "it reports no Ready condition"
}

// untoleratedTaint finds a NoSchedule or NoExecute taint the pod does not tolerate, leaving
// out the cordon taint (handled by tolerating it) and the NotReady taints: the Ready condition
// decides (nodeReady), and on a Ready node they are the node lifecycle controller's lag.
func untoleratedTaint(pod *corev1.Pod, n *corev1.Node) (corev1.Taint, bool) {
	return corev1helpers.FindMatchingUntoleratedTaint(logr.Discard(), n.Spec.Taints, pod.Spec.Tolerations, func(t *corev1.Taint) bool {
		switch t.Key {
		case corev1.TaintNodeUnschedulable, corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable:
			return false
		}
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}, true)
}

func taintString(t corev1.Taint) string {
	if t.Value == "" {
		return t.Key + ":" + string(t.Effect)
	}
	return t.Key + "=" + t.Value + ":" + string(t.Effect)
}

// cordonedFor reports whether the node is cordoned and the pod does not yet tolerate it.
func cordonedFor(pod *corev1.Pod, n *corev1.Node) bool {
	if n == nil || !n.Spec.Unschedulable {
		return false
	}
	taint := corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}
	return !corev1helpers.TolerationsTolerateTaint(logr.Discard(), pod.Spec.Tolerations, &taint, true)
}

// tolerateCordonOps adds the cordon toleration, add-only.
func tolerateCordonOps(pod *corev1.Pod) []jsonpatch.Operation {
	return []jsonpatch.Operation{appendTo("/spec/tolerations", len(pod.Spec.Tolerations), UnschedulableToleration)}
}

// cordonWarning tells the user why the pod tolerates a cordoned node.
func cordonWarning(n *corev1.Node, claim string) string {
	return fmt.Sprintf("node %s is cordoned but holds the ReadWriteOnce workspace claim %s; the script pod tolerates %s to run there, "+
		"the only node where the volume can be used. Drain the node to move the agent (kubectl drain %s)",
		n.Name, claim, corev1.TaintNodeUnschedulable, n.Name)
}
