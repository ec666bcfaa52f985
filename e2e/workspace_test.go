package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

var (
	rwo  = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	rwx  = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	rwop = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}
)

func onNode(n string) map[string]string { return map[string]string{"kubernetes.io/hostname": n} }

func record(t *testing.T, pod *corev1.Pod) workspace.Record {
	t.Helper()
	var r workspace.Record
	v, ok := pod.Annotations[workspace.RecordAnnotation]
	if !ok {
		t.Fatalf("pod %s has no %s annotation", pod.Name, workspace.RecordAnnotation)
	}
	must(t, json.Unmarshal([]byte(v), &r))
	return r
}

func mountsWorkspace(pod *corev1.Pod, claim string) bool {
	vol := ""
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			vol = v.Name
		}
	}
	for _, c := range pod.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.Name == vol && vol != "" && m.MountPath == "/octopus" {
				return true
			}
		}
	}
	return false
}

// Script pods of an RWO agent, from every Tentacle style, land on the Tentacle's node.
func TestRWOScriptPodsRunOnTheTentacleNode(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-rwo", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-2")}
	installAgent(t, ctx, a, true)

	styles := []tentacle.Style{tentacle.StyleV2, tentacle.StyleV3, tentacle.StyleTemplate, tentacle.StyleV2, tentacle.StyleV2, tentacle.StyleV3}
	for i, style := range styles {
		pod := a.ScriptPod(fmt.Sprintf("rwo%02d%s", i, style), style)
		must(t, createScriptPod(t, ctx, pod))
		if !mountsWorkspace(pod, a.ClaimName()) {
			t.Fatalf("%s (%s): workspace not mounted at /octopus: %+v", pod.Name, style, pod.Spec.Volumes)
		}
		if !workspace.IsPinned(pod, "node-2") {
			t.Fatalf("%s (%s): not pinned to node-2: %+v", pod.Name, style, pod.Spec.Affinity)
		}
		r := record(t, pod)
		if r.Node != "node-2" || r.Claim != a.ClaimName() || !strings.Contains(r.NodeSource, "is running there") {
			t.Fatalf("%s: record %+v", pod.Name, r)
		}
		if node := waitScheduled(t, ctx, pod); node != "node-2" {
			t.Fatalf("%s (%s) scheduled to %s, want node-2", pod.Name, style, node)
		}
	}
}

// Script pods of an RWX agent are not pinned, and the scheduler spreads them.
func TestRWXScriptPodsAreNotPinnedAndSpread(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-rwx", Release: "prod", AccessModes: rwx, NodeSelector: onNode("node-1")}
	installAgent(t, ctx, a, true)
	nodes := map[string]int{}
	for i := 0; i < 9; i++ {
		pod := a.ScriptPod(fmt.Sprintf("rwx%02d", i), tentacle.StyleV2)
		must(t, createScriptPod(t, ctx, pod))
		for _, term := range pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			if len(term.MatchFields) > 0 {
				t.Fatalf("RWX pod %s pinned: %+v", pod.Name, term.MatchFields)
			}
		}
		nodes[waitScheduled(t, ctx, pod)]++
	}
	if len(nodes) < 2 {
		t.Fatalf("RWX script pods did not spread: %v", nodes)
	}
	t.Logf("RWX script pods per node: %v", nodes)
}

// Two agents in one namespace and agents of the same release name in two namespaces each
// keep their own claim and node.
func TestAgentsDoNotCross(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	agents := []tentacle.Agent{
		{Namespace: "octopus-agents-shared", Release: "alpha", AccessModes: rwo, NodeSelector: onNode("node-1")},
		{Namespace: "octopus-agents-shared", Release: "beta", AccessModes: rwo, NodeSelector: onNode("node-3")},
		{Namespace: "octopus-agent-east", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-1")},
		{Namespace: "octopus-agent-west", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-3")},
	}
	for _, a := range agents {
		installAgent(t, ctx, a, true)
	}
	for i, a := range agents {
		for j := 0; j < 2; j++ {
			pod := a.ScriptPod(fmt.Sprintf("cross%d%d", i, j), tentacle.StyleV2)
			must(t, createScriptPod(t, ctx, pod))
			want := a.NodeSelector["kubernetes.io/hostname"]
			r := record(t, pod)
			if r.Claim != a.ClaimName() || r.Node != want {
				t.Fatalf("%s/%s of release %s: record %+v, want claim %s on %s", a.Namespace, pod.Name, a.Release, r, a.ClaimName(), want)
			}
			if node := waitScheduled(t, ctx, pod); node != want {
				t.Fatalf("%s/%s scheduled to %s, want %s", a.Namespace, pod.Name, node, want)
			}
		}
	}
}

// Mid-rollout: the old Tentacle pod runs on node-1 and holds the volume while the new one
// waits unscheduled; script pods follow the running one.
func TestRolloutPinsToTheRunningTentacle(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-rollout", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-1")}
	installAgent(t, ctx, a, true)
	next := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-tentacle-next", Namespace: a.Namespace, Labels: a.TentacleLabels()},
		Spec: a.Deployment().Spec.Template.Spec}
	next.Spec.NodeSelector = onNode("node-that-does-not-exist")
	must(t, cp.Client.Create(ctx, next))

	pod := a.ScriptPod("rollout01", tentacle.StyleV3)
	must(t, createScriptPod(t, ctx, pod))
	if node := waitScheduled(t, ctx, pod); node != "node-1" {
		t.Fatalf("scheduled to %s, want node-1 (the running Tentacle's)", node)
	}
}

// With no Tentacle running, an attached VolumeAttachment of the claim's volume names the node.
func TestVolumeAttachmentNamesTheNodeWhenNoTentacleRuns(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-attached", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-3")}
	installAgent(t, ctx, a, true)
	dep := a.Deployment()
	must(t, cp.Client.Patch(ctx, dep, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"replicas":0}}`))))
	eventually(t, ctx, "Tentacle pods gone", func() (bool, string) {
		var pods corev1.PodList
		must(t, cp.Client.List(ctx, &pods, client.InNamespace(a.Namespace), client.MatchingLabels(a.TentacleLabels())))
		return len(pods.Items) == 0, fmt.Sprintf("%d left", len(pods.Items))
	})
	// Without a running Tentacle and without an attachment, no node can be known.
	err := cp.Client.Create(ctx, a.ScriptPod("attach00", tentacle.StyleV2))
	if err == nil || !strings.Contains(err.Error(), "no node holds it yet") {
		t.Fatalf("expected the no-node denial, got %v", err)
	}

	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: "csi-" + a.VolumeName()},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: "ebs.csi.aws.com", NodeName: "node-3",
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To(a.VolumeName())}}}
	must(t, cp.Client.Create(ctx, va))
	va.Status.Attached = true
	must(t, cp.Client.Status().Update(ctx, va))

	pod := a.ScriptPod("attach01", tentacle.StyleV2)
	must(t, createScriptPod(t, ctx, pod))
	r := record(t, pod)
	if r.Node != "node-3" || !strings.Contains(r.NodeSource, "VolumeAttachment") {
		t.Fatalf("record %+v, want node-3 from the VolumeAttachment", r)
	}
}

// A Tentacle that is not scheduled yet gives the clear, retryable denial.
func TestUnscheduledTentacleIsARetryableDenial(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-pending", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-that-does-not-exist")}
	installAgent(t, ctx, a, false)
	eventually(t, ctx, "Tentacle pod created", func() (bool, string) {
		var pods corev1.PodList
		must(t, cp.Client.List(ctx, &pods, client.InNamespace(a.Namespace), client.MatchingLabels(a.TentacleLabels())))
		return len(pods.Items) == 1, ""
	})
	time.Sleep(time.Second) // let the webhook's informer see the pending pod
	err := cp.Client.Create(ctx, a.ScriptPod("pending01", tentacle.StyleV2))
	if err == nil {
		t.Fatal("script pod admitted although no node holds its RWO workspace")
	}
	for _, want := range []string{"ReadWriteOnce", "no node holds it yet", "Pending and not scheduled", "retry once the Tentacle pod is running", a.ClaimName()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("denial lacks %q:\n%v", want, err)
		}
	}
}

func TestReadWriteOncePodClaimIsDenied(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-rwop", Release: "prod", AccessModes: rwop, NodeSelector: onNode("node-1")}
	installAgent(t, ctx, a, true)
	err := cp.Client.Create(ctx, a.ScriptPod("rwop01", tentacle.StyleV2))
	if err == nil || !strings.Contains(err.Error(), "ReadWriteOncePod: no second pod can ever mount it") {
		t.Fatalf("expected the ReadWriteOncePod denial, got %v", err)
	}
}

// Pods without the script-pod label are never sent to the webhook (objectSelector).
func TestUnlabelledPodsAreNeverSent(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-unlabelled", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-2")}
	installAgent(t, ctx, a, true)
	before := total(decisions(t))
	pod := a.ScriptPod("unlabelled01", tentacle.StyleTemplate)
	delete(pod.Labels, "octopus.com/scriptTicketId")
	must(t, cp.Client.Create(ctx, pod))
	if _, ok := pod.Annotations[workspace.RecordAnnotation]; ok || len(pod.Spec.Volumes) > 1 {
		t.Fatalf("unlabelled pod was mutated: %+v", pod.Spec.Volumes)
	}
	// A labelled pod right after proves the counter moves when the webhook is called.
	labelled := a.ScriptPod("unlabelled02", tentacle.StyleV2)
	must(t, createScriptPod(t, ctx, labelled))
	after := decisions(t)
	if got := total(after) - before; got != 1 { // the labelled pod: one mutating decision, the policy runs in the API server
		t.Fatalf("webhook decisions moved by %v, want exactly 1 (for the labelled pod only): %v", got, after)
	}
}

// When the Tentacle moves to another node (and its volume with it), script pods follow, and
// the move is an Event on the Tentacle pod.
func TestPinsFollowTheTentacleWhenItMoves(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-moves", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-1")}
	installAgent(t, ctx, a, true)
	first := a.ScriptPod("moves01", tentacle.StyleV2)
	must(t, createScriptPod(t, ctx, first))
	if r := record(t, first); r.Node != "node-1" {
		t.Fatalf("first pod pinned to %s, want node-1", r.Node)
	}

	must(t, cp.Client.Patch(ctx, a.Deployment(), client.RawPatch("application/merge-patch+json",
		[]byte(`{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/hostname":"node-3"}}}}}`))))
	var moved *corev1.Pod
	eventually(t, ctx, "Tentacle running on node-3 alone", func() (bool, string) {
		var pods corev1.PodList
		must(t, cp.Client.List(ctx, &pods, client.InNamespace(a.Namespace), client.MatchingLabels(a.TentacleLabels())))
		if len(pods.Items) != 1 || pods.Items[0].Spec.NodeName != "node-3" || pods.Items[0].Status.Phase != corev1.PodRunning {
			return false, fmt.Sprintf("%d pods", len(pods.Items))
		}
		moved = &pods.Items[0]
		return true, ""
	})
	second := a.ScriptPod("moves02", tentacle.StyleV2)
	must(t, createScriptPod(t, ctx, second))
	if node := waitScheduled(t, ctx, second); node != "node-3" {
		t.Fatalf("after the move, scheduled to %s, want node-3", node)
	}
	eventually(t, ctx, "pin-moved Event on the Tentacle pod", func() (bool, string) {
		var list eventsv1.EventList
		must(t, cp.Client.List(ctx, &list, client.InNamespace(a.Namespace)))
		for _, e := range list.Items {
			if e.Reason == "WorkspacePinMoved" && e.Regarding.Name == moved.Name && strings.Contains(e.Note, "node node-3 instead of node-1") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(list.Items))
	})
}
