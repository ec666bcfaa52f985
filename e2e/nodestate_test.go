package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// patchNode merge-patches a kwok node and undoes it when the test ends.
func patchNode(t *testing.T, ctx context.Context, name, patch, undo string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	must(t, cp.Client.Patch(ctx, n, client.RawPatch("application/merge-patch+json", []byte(patch))))
	t.Cleanup(func() {
		_ = cp.Client.Patch(context.Background(), n, client.RawPatch("application/merge-patch+json", []byte(undo)))
	})
	time.Sleep(500 * time.Millisecond) // the webhook's Node informer
}

// tolerates tells whether the pod tolerates the cordon taint.
func toleratesCordon(p *corev1.Pod) bool {
	for _, tol := range p.Spec.Tolerations {
		if tol.Key == corev1.TaintNodeUnschedulable && tol.Operator == corev1.TolerationOpExists && tol.Effect == corev1.TaintEffectNoSchedule {
			return true
		}
	}
	return false
}

// A cordoned node that holds the RWO volume: the script pod runs there (the webhook adds the
// cordon toleration and says so in a warning), instead of sitting Pending.
func TestCordonedTentacleNodeStillRunsScriptPods(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-cordoned", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-3")}
	installAgent(t, ctx, a, true)
	patchNode(t, ctx, "node-3", `{"spec":{"unschedulable":true}}`, `{"spec":{"unschedulable":null}}`)

	c, warns := clientWithWarnings(t)
	pod := a.ScriptPod("cordon01", tentacle.StyleV2)
	eventually(t, ctx, "script pod admitted on the cordoned node", func() (bool, string) {
		p := pod.DeepCopy()
		if err := c.Create(ctx, p); err != nil {
			return false, err.Error()
		}
		*pod = *p
		return true, ""
	})
	if !workspace.IsPinned(pod, "node-3") || !toleratesCordon(pod) {
		t.Fatalf("want pinned to node-3 with the cordon toleration: affinity %+v tolerations %+v", pod.Spec.Affinity, pod.Spec.Tolerations)
	}
	if !strings.Contains(warns.all(), "node-3 is cordoned") {
		t.Fatalf("no cordon warning shown to the creator: %q", warns.all())
	}
	if node := waitScheduled(t, ctx, pod); node != "node-3" {
		t.Fatalf("scheduled to %s, want node-3", node)
	}
	if r := record(t, pod); !strings.Contains(strings.Join(r.Injected, ","), "toleration") {
		t.Fatalf("record does not say the toleration was added: %+v", r)
	}
}

// A node that holds the RWO volume but has a NoSchedule taint the script pod does not
// tolerate: refused at once, naming the node and the taint.
func TestTaintedTentacleNodeIsRefusedAtOnce(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-tainted", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-2")}
	installAgent(t, ctx, a, true)
	patchNode(t, ctx, "node-2", `{"spec":{"taints":[{"key":"dedicated","value":"gpu","effect":"NoSchedule"}]}}`, `{"spec":{"taints":null}}`)

	err := createScriptPod(t, ctx, a.ScriptPod("taint01", tentacle.StyleV2))
	if err == nil || !strings.Contains(err.Error(), `node "node-2"`) || !strings.Contains(err.Error(), "dedicated=gpu:NoSchedule") ||
		!strings.Contains(err.Error(), "toleration") {
		t.Fatalf("want a refusal naming node-2 and its taint, got %v", err)
	}
	// A pod that tolerates it is admitted.
	ok := a.ScriptPod("taint02", tentacle.StyleV2)
	ok.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	must(t, createScriptPod(t, ctx, ok))
	if node := waitScheduled(t, ctx, ok); node != "node-2" {
		t.Fatalf("scheduled to %s, want node-2", node)
	}
}

// unmanagedNode creates a Node kwok does not manage, with the given Ready status, and a
// Tentacle pod of a on it marked Running by hand (no kubelet runs there).
func tentacleOnUnmanagedNode(t *testing.T, ctx context.Context, a tentacle.Agent, node string, ready corev1.ConditionStatus) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{
		corev1.LabelHostname: node, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}}}
	must(t, cp.Client.Create(ctx, n))
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), n) })
	orig := n.DeepCopy()
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: "KubeletStoppedPosting",
		LastTransitionTime: metav1.Now(), LastHeartbeatTime: metav1.Now()}}
	// The node lifecycle controller writes this status too: patch, do not update.
	must(t, cp.Client.Status().Patch(ctx, n, client.MergeFrom(orig)))

	installAgent(t, ctx, a, false)
	must(t, cp.Client.Patch(ctx, a.Deployment(), client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"replicas":0}}`))))
	tp := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: a.DeploymentName() + "-manual", Namespace: a.Namespace, Labels: a.TentacleLabels()},
		Spec: a.Deployment().Spec.Template.Spec}
	tp.Spec.NodeSelector, tp.Spec.NodeName = nil, node
	must(t, cp.Client.Create(ctx, tp))
	tp.Status.Phase = corev1.PodRunning
	must(t, cp.Client.Status().Update(ctx, tp))
	time.Sleep(500 * time.Millisecond)
}

// A NotReady node holding the RWO volume: refused at once with the node's state, never
// admitted to sit Pending.
func TestNotReadyTentacleNodeIsRefusedAtOnce(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-notready", Release: "prod", AccessModes: rwo}
	tentacleOnUnmanagedNode(t, ctx, a, "node-notready", corev1.ConditionUnknown)
	err := cp.Client.Create(ctx, a.ScriptPod("notready01", tentacle.StyleV3))
	if err == nil || !strings.Contains(err.Error(), `node "node-notready"`) || !strings.Contains(err.Error(), "NotReady") {
		t.Fatalf("want a refusal naming node-notready as NotReady, got %v", err)
	}
}

// A node that no longer exists while the Tentacle pod still names it: refused at once.
func TestGoneTentacleNodeIsRefusedAtOnce(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-node-gone", Release: "prod", AccessModes: rwo}
	tentacleOnUnmanagedNode(t, ctx, a, "node-gone", corev1.ConditionTrue)
	must(t, cp.Client.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-gone"}}))
	eventually(t, ctx, "refusal naming the gone node", func() (bool, string) {
		err := cp.Client.Create(ctx, a.ScriptPod("gone01", tentacle.StyleV2))
		if err == nil {
			t.Fatal("script pod admitted although the node holding its volume is gone")
		}
		return strings.Contains(err.Error(), `node "node-gone"`) && strings.Contains(err.Error(), "no longer exists"), err.Error()
	})
}

// The script pod's own node selection (nodeSelector, hostname expressions, matchFields) that
// contradicts the volume's node is refused at once; selection that includes it is pinned.
func TestOwnNodeSelectionThatContradictsTheVolumeIsRefused(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-own-selection", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-1")}
	installAgent(t, ctx, a, true)

	term := func(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: reqs}
	}
	hostIn := func(n ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: n}
	}
	withTerms := func(p *corev1.Pod, terms ...corev1.NodeSelectorTerm) {
		p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = terms
	}
	refused := map[string]func(*corev1.Pod){
		"nodeSelector":  func(p *corev1.Pod) { p.Spec.NodeSelector = onNode("node-2") },
		"hostname term": func(p *corev1.Pod) { withTerms(p, term(hostIn("node-2", "node-3"))) },
		"matchFields": func(p *corev1.Pod) {
			withTerms(p, corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"node-1"}}}})
		},
		"every term elsewhere": func(p *corev1.Pod) { withTerms(p, term(hostIn("node-2")), term(hostIn("node-3"))) },
	}
	for what, mutate := range refused {
		p := a.ScriptPod("own-refused-"+strings.ToLower(strings.ReplaceAll(what, " ", "-")), tentacle.StyleV2)
		mutate(p)
		err := cp.Client.Create(ctx, p)
		if err == nil || !strings.Contains(err.Error(), "can never run there") || !strings.Contains(err.Error(), `"node-1"`) {
			t.Fatalf("%s: want a refusal saying the pod can never run on node-1, got %v", what, err)
		}
	}
	// One term elsewhere, one that matches node-1: admitted, pinned, and the term elsewhere is
	// neutralised (it gets the pin too, so it matches no node) instead of offering node-2.
	p := a.ScriptPod("own-mixed", tentacle.StyleV2)
	withTerms(p, term(hostIn("node-2")), term(hostIn("node-1", "node-2")))
	must(t, createScriptPod(t, ctx, p))
	if !workspace.IsPinned(p, "node-1") {
		t.Fatalf("not pinned to node-1: %+v", p.Spec.Affinity)
	}
	if node := waitScheduled(t, ctx, p); node != "node-1" {
		t.Fatalf("scheduled to %s, want node-1", node)
	}
}
