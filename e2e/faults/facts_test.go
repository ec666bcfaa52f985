package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/reliability"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
)

// factCase is one missing or conflicting fact, set up in a namespace of its own, with the
// outcome it must have.
type factCase struct {
	name string
	// arrange sets the facts up for agent a (its ServiceAccounts exist, nothing else).
	arrange func(t *testing.T, ctx context.Context, a tentacle.Agent)
	want    string // outcome.String()
	// evidence, when set, shows with the cluster why the outcome is the right one.
	evidence func(t *testing.T, ctx context.Context, a tentacle.Agent) string
	// source, when set, must appear in the pin's recorded reason (which fact named the node).
	source string
	why    string // the reason, for the report
}

// holdFinalizer keeps an object in Terminating after its deletion, as a kubelet stopping a
// pod's containers or the attach/detach controller detaching a volume does.
const holdFinalizer = "faults.workspace-webhook.io/hold"

// TestMissingAndConflictingFacts: each missing or conflicting fact about a ReadWriteOnce
// workspace has one defined outcome, on a real API server with the webhook's own caches.
func TestMissingAndConflictingFacts(t *testing.T) {
	logsOnFailure(t)
	ctx := ctxFor(t, 5*time.Minute)
	t.Cleanup(func() { restoreStage(t) })
	cases := []factCase{
		{name: "the claim does not exist (the Tentacle pod names a claim nobody created, or it was deleted)",
			arrange: func(t *testing.T, ctx context.Context, a tentacle.Agent) {
				_, err := placeTentacle(ctx, a, "octopus-agent-tentacle-a", "node-1")
				must(t, err)
			},
			want: "refused: WorkspaceClaimNotFound", why: "nothing can mount a claim that does not exist; the refusal names it and says to repair the agent"},
		{name: "the claim is being deleted (Terminating, still used by the Tentacle pod)",
			arrange: func(t *testing.T, ctx context.Context, a tentacle.Agent) {
				must(t, a.CreateWorkspace(ctx, cp.Client))
				_, err := placeTentacle(ctx, a, "octopus-agent-tentacle-a", "node-1")
				must(t, err)
				c := a.Claim()
				must(t, cp.Client.Patch(ctx, c, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":["`+holdFinalizer+`"]}}`))))
				must(t, cp.Client.Delete(ctx, c))
				t.Cleanup(func() { releaseHold(context.Background(), a.Claim()) })
			},
			want: "refused: WorkspaceClaimTerminating", why: "the scheduler never places a new pod that uses a claim being deleted: admitted, the script pod would stay Pending",
			evidence: unschedulableUser},
		{name: "the volume is not bound yet (claim Pending, Tentacle pod not scheduled)",
			arrange: func(t *testing.T, ctx context.Context, a tentacle.Agent) {
				c := a.Claim()
				c.Spec.VolumeName, c.Spec.StorageClassName = "", ptr.To("faults-wait-for-first-consumer")
				must(t, cp.Client.Create(ctx, c))
				p := pendingTentacle(a, "octopus-agent-tentacle-a", "")
				must(t, cp.Client.Create(ctx, p))
			},
			want: "refused: WorkspaceNodeUnknown", why: "no node holds the volume yet; the refusal says the claim is not bound and to retry once the Tentacle pod runs"},
		{name: "the volume is not attached yet (Tentacle pod scheduled to a node, not running)",
			arrange: func(t *testing.T, ctx context.Context, a tentacle.Agent) {
				must(t, a.CreateWorkspace(ctx, cp.Client))
				must(t, cp.Client.Create(ctx, pendingTentacle(a, "octopus-agent-tentacle-a", unmanagedNode)))
			},
			want: "refused: WorkspaceNodeUnknown", why: "a scheduled pod has not mounted its volume yet (it may still wait on a detach elsewhere); only a running one proves where the volume is"},
		{name: "two Tentacle pods running on different nodes (older on node-1, newer on node-2)",
			arrange: func(t *testing.T, ctx context.Context, a tentacle.Agent) {
				must(t, a.CreateWorkspace(ctx, cp.Client))
				_, err := placeTentacle(ctx, a, "octopus-agent-tentacle-old", "node-1")
				must(t, err)
				time.Sleep(1100 * time.Millisecond) // creation timestamps have whole seconds
				_, err = placeTentacle(ctx, a, "octopus-agent-tentacle-new", "node-2")
				must(t, err)
			},
			want: "pinned to node-1", source: "octopus-agent-tentacle-old",
			why: "mid-rollout the new pod runs (or waits) elsewhere while the old one still holds the ReadWriteOnce volume: the oldest running pod is the one that got it"},
		{name: "two Tentacle pods, the older one terminating on node-1, the newer running on node-2",
			arrange: func(t *testing.T, ctx context.Context, a tentacle.Agent) {
				must(t, a.CreateWorkspace(ctx, cp.Client))
				old, err := placeTentacle(ctx, a, "octopus-agent-tentacle-old", "node-1")
				must(t, err)
				time.Sleep(1100 * time.Millisecond)
				_, err = placeTentacle(ctx, a, "octopus-agent-tentacle-new", "node-2")
				must(t, err)
				must(t, cp.Client.Patch(ctx, old, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":["`+holdFinalizer+`"]}}`))))
				must(t, cp.Client.Delete(ctx, old))
				t.Cleanup(func() { releaseHold(context.Background(), old) })
			},
			want: "pinned to node-2", source: "octopus-agent-tentacle-new",
			why: "a terminating pod is giving the volume up; the running one that remains is where it goes"},
		{name: "a VolumeAttachment names node-2 while the Tentacle pod runs on node-1",
			arrange: func(t *testing.T, ctx context.Context, a tentacle.Agent) {
				must(t, a.CreateWorkspace(ctx, cp.Client))
				_, err := placeTentacle(ctx, a, "octopus-agent-tentacle-a", "node-1")
				must(t, err)
				attach(t, ctx, a, "node-2", false)
			},
			want: "pinned to node-1", source: "is running there",
			why: "a running pod proves its volume is mounted on its node now; an attachment can lag or be left behind (a lost node's stays attached until force-detached), and is not even read while a Tentacle runs"},
		{name: "no Tentacle pod running, a VolumeAttachment attaches the volume to node-3",
			arrange: func(t *testing.T, ctx context.Context, a tentacle.Agent) {
				must(t, a.CreateWorkspace(ctx, cp.Client))
				must(t, cp.Client.Create(ctx, pendingTentacle(a, "octopus-agent-tentacle-a", "")))
				attach(t, ctx, a, "node-3", false)
			},
			want: "pinned to node-3", source: "VolumeAttachment",
			why: "with no Tentacle running (scaled to 0, restarting), the attachment is the only evidence of where the volume is"},
		{name: "no Tentacle pod running, the only VolumeAttachment is being deleted (detaching from node-3)",
			arrange: func(t *testing.T, ctx context.Context, a tentacle.Agent) {
				must(t, a.CreateWorkspace(ctx, cp.Client))
				must(t, cp.Client.Create(ctx, pendingTentacle(a, "octopus-agent-tentacle-a", "")))
				attach(t, ctx, a, "node-3", true)
			},
			want: "refused: WorkspaceNodeUnknown", why: "a detaching volume is on its way elsewhere: pinning there would strand the pod"},
	}
	wffc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "faults-wait-for-first-consumer"}, Provisioner: "ebs.csi.aws.com",
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)}
	if err := cp.Client.Create(ctx, wffc); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: unmanagedNode, Labels: map[string]string{corev1.LabelHostname: unmanagedNode}}}
	if err := cp.Client.Create(ctx, node); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), node) })

	var figures []bench.Figure
	var raw strings.Builder
	for i, c := range cases {
		a := rwoAgent(fmt.Sprintf("faults-facts-%d", i+1), "node-1")
		installBareAgentOnly(t, ctx, a)
		c.arrange(t, ctx, a)
		// The webhook's caches see the facts within milliseconds; allow them a few seconds.
		var got outcome
		deadline := time.Now().Add(10 * time.Second)
		for n := 0; ; n++ {
			got = createScriptPod(ctx, a, fmt.Sprintf("facts%04d", n))
			if (got.String() == c.want && strings.Contains(got.Source, c.source)) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		ok := got.String() == c.want && strings.Contains(got.Source, c.source)
		figures = append(figures, bench.Figure{Measurement: "missing or conflicting facts", Figure: c.name, Measured: got.String(), Target: c.want, Met: bench.Met(ok)})
		fmt.Fprintf(&raw, "%s: %s (%s%s)\n  why: %s\n", c.name, got, portless(got.Err), got.Source, c.why)
		if c.evidence != nil {
			fmt.Fprintf(&raw, "  seen: %s\n", c.evidence(t, ctx, a))
		}
		if !ok {
			t.Errorf("%s: got %s (%s %s), want %s from %q", c.name, got, got.Err, got.Source, c.want, c.source)
		}
	}
	reliability.Save(t, bench.Result{Order: 35, Name: "faults-facts", Title: "35. Faults: missing or conflicting facts about a ReadWriteOnce workspace",
		Config: "Promise: each missing or conflicting fact has one defined outcome, never a script pod admitted to sit Pending or to hit a Multi-Attach error. " +
			"How: for each case, a chart v3 ReadWriteOnce agent in a namespace of its own, its objects created directly on the API server (Tentacle pods placed and marked Running, " +
			"claims and VolumeAttachments held Terminating by a finalizer where the case says so), then a script pod created through the API server (dry-run); outcome read from the API server's answer.",
		Figures: figures, Raw: raw.String()})
}

// installBareAgentOnly creates the agent's namespace and ServiceAccounts, nothing else.
func installBareAgentOnly(t *testing.T, ctx context.Context, a tentacle.Agent) {
	t.Helper()
	_, err := cp.CreateNamespace(ctx, a.Namespace)
	must(t, err)
	for _, sa := range a.ServiceAccounts() {
		must(t, cp.Client.Create(ctx, sa))
	}
}

// unmanagedNode is a Node no kwok kubelet runs: a pod bound to it stays Pending, as a pod
// waiting for its volume to attach does.
const unmanagedNode = "faults-unmanaged"

// pendingTentacle is a Tentacle pod of a that is not running: bound to node when given (its
// volume not mounted yet; the node must be unmanagedNode), else not schedulable at all.
func pendingTentacle(a tentacle.Agent, name, node string) *corev1.Pod {
	a.NodeSelector = onNode("node-that-does-not-exist")
	if node != "" {
		a.NodeSelector = nil
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.Namespace, Labels: a.TentacleLabels()}, Spec: a.Deployment().Spec.Template.Spec}
	pod.Spec.NodeName = node
	return pod
}

// attach creates the VolumeAttachment of a's volume on node, attached; detaching holds it
// Terminating (deleted, finalizer kept).
func attach(t *testing.T, ctx context.Context, a tentacle.Agent, node string, detaching bool) {
	t.Helper()
	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: "csi-" + a.Namespace},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: "ebs.csi.aws.com", NodeName: node,
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To(a.VolumeName())}}}
	if detaching {
		va.Finalizers = []string{holdFinalizer}
	}
	must(t, cp.Client.Create(ctx, va))
	t.Cleanup(func() { releaseHold(context.Background(), va); _ = cp.Client.Delete(context.Background(), va) })
	va.Status.Attached = true
	must(t, cp.Client.Status().Update(ctx, va))
	if detaching {
		must(t, cp.Client.Delete(ctx, va))
	}
}

// releaseHold removes the test's finalizer so that a held object can go.
func releaseHold(ctx context.Context, o client.Object) {
	_ = cp.Client.Patch(ctx, o, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`)))
}

// unschedulableUser creates a plain pod (no script-pod label: no webhook involved) that uses
// a's claim, and returns what the scheduler says about it: a claim being deleted takes no new
// pod.
func unschedulableUser(t *testing.T, ctx context.Context, a tentacle.Agent) string {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "plain-claim-user", Namespace: a.Namespace}, Spec: corev1.PodSpec{
		ServiceAccountName: a.ScriptServiceAccount(),
		Volumes:            []corev1.Volume{{Name: "w", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: a.ClaimName()}}}},
		Containers:         []corev1.Container{{Name: "c", Image: "example.invalid/never-pulled:1", VolumeMounts: []corev1.VolumeMount{{Name: "w", MountPath: "/w"}}}},
	}}
	must(t, cp.Client.Create(ctx, pod))
	msg := ""
	eventually(t, ctx, 30*time.Second, "the scheduler's verdict on a pod using the claim", func() (bool, string) {
		must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod))
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				msg = c.Message
			}
		}
		return msg != "" || pod.Spec.NodeName != "", "not judged yet"
	})
	if pod.Spec.NodeName != "" || !strings.Contains(msg, "being deleted") {
		t.Errorf("a pod using a claim being deleted: node %q, scheduler: %q; the refusal's premise does not hold", pod.Spec.NodeName, msg)
	}
	return "a plain pod using the claim: PodScheduled=False, " + msg
}
