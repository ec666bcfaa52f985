package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

const oldNodeTaint = "e2e.workspace-webhook.io/old-node"

// runningTentacle is the agent's one running, not terminating Tentacle pod.
func runningTentacle(t *testing.T, ctx context.Context, a tentacle.Agent) *corev1.Pod {
	t.Helper()
	return waitTentacleRunning(t, ctx, a)
}

// rollout restarts the agent's Deployment (what helm upgrade or kubectl rollout restart do to
// its template) and waits until it completes: the new pod available, the old one gone.
func rollout(t *testing.T, ctx context.Context, a tentacle.Agent, n int) *corev1.Pod {
	t.Helper()
	dep := &appsv1.Deployment{}
	must(t, cp.Client.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: a.DeploymentName()}, dep))
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"rollout-%d"}}}}}`, n)
	must(t, cp.Client.Patch(ctx, dep, client.RawPatch("application/merge-patch+json", []byte(patch))))
	var pod *corev1.Pod
	eventually(t, ctx, fmt.Sprintf("rollout %d of %s complete", n, a.Namespace), func() (bool, string) {
		must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(dep), dep))
		s := dep.Status
		if s.ObservedGeneration < dep.Generation || s.UpdatedReplicas != 1 || s.AvailableReplicas != 1 || s.Replicas != 1 {
			return false, fmt.Sprintf("%+v", s)
		}
		var pods corev1.PodList
		must(t, cp.Client.List(ctx, &pods, a.TentaclePodsOf()...))
		if len(pods.Items) != 1 || pods.Items[0].Annotations["kubectl.kubernetes.io/restartedAt"] != fmt.Sprintf("rollout-%d", n) ||
			pods.Items[0].Status.Phase != corev1.PodRunning {
			return false, fmt.Sprintf("%d Tentacle pods", len(pods.Items))
		}
		pod = &pods.Items[0]
		return true, ""
	})
	return pod
}

// markOldNode gives node the PreferNoSchedule taint the cluster autoscaler puts on a node it
// wants to scale down, so the scheduler prefers any other node for new pods.
func markOldNode(t *testing.T, ctx context.Context, node string) func() {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	set := func(taints string) {
		must(t, cp.Client.Patch(ctx, n, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"taints":`+taints+`}}`))))
	}
	set(`[{"key":"` + oldNodeTaint + `","effect":"PreferNoSchedule"}]`)
	return func() { set(`null`) }
}

// Ten consecutive rollouts of the chart-shaped Tentacle Deployment (replicas 1, default
// RollingUpdate) on three nodes, each with the old node marked PreferNoSchedule: with the
// webhook every new pod lands on the node holding the RWO volume and every rollout completes.
// A second agent whose pods the webhook does not see (no chart label) shows, in the same run,
// where Kubernetes alone puts them.
func TestTentacleRolloutsStayOnTheVolumesNode(t *testing.T) {
	ctx := ctxFor(t, 8*time.Minute)
	with := tentacle.Agent{Namespace: "octopus-agent-upgrades", Release: "upgrades", Generation: 3, Storage: tentacle.StorageStatic, AccessModes: rwo}
	without := tentacle.Agent{Namespace: "octopus-agent-upgrades-unseen", Release: "unseen", Generation: 3, Storage: tentacle.StorageStatic, AccessModes: rwo}
	installAgent(t, ctx, with, false)
	unseen := without.Deployment()
	delete(unseen.Spec.Template.Labels, "helm.sh/chart") // outside the webhook's objectSelector
	_, err := cp.CreateNamespace(ctx, without.Namespace)
	must(t, err)
	for _, sa := range without.ServiceAccounts() {
		must(t, cp.Client.Create(ctx, sa))
	}
	createWorkspace(t, ctx, without)
	must(t, cp.Client.Create(ctx, unseen))

	stayed := map[string]int{}
	for i := 1; i <= 10; i++ {
		for _, a := range []tentacle.Agent{with, without} {
			old := runningTentacle(t, ctx, a)
			unmark := markOldNode(t, ctx, old.Spec.NodeName)
			next := rollout(t, ctx, a, i)
			unmark()
			if next.Spec.NodeName == old.Spec.NodeName {
				stayed[a.Namespace]++
			}
			if a.Namespace == with.Namespace && (next.Spec.NodeName != old.Spec.NodeName || !workspace.IsPinned(next, old.Spec.NodeName)) {
				t.Fatalf("rollout %d: new Tentacle pod on %s (pinned: %v), want pinned to %s, the volume's node", i, next.Spec.NodeName,
					workspace.IsPinned(next, old.Spec.NodeName), old.Spec.NodeName)
			}
		}
	}
	t.Logf("10 rollouts with the old node PreferNoSchedule: with the webhook %d/10 new Tentacle pods on the volume's node; without it %d/10 (%d elsewhere)",
		stayed[with.Namespace], stayed[without.Namespace], 10-stayed[without.Namespace])
}

// Cordon and drain of the Tentacle's node: the new pod is not pinned (the old pod's eviction
// frees the volume), the agent moves, and script pods created afterwards follow it.
func TestDrainMovesTheAgentAndScriptPodsFollow(t *testing.T) {
	ctx := ctxFor(t, 4*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-drained", Release: "drained", Generation: 2, Storage: tentacle.StorageClass,
		StorageClass: "e2e-drain-rwo", AccessModes: rwo}
	createClasses(t, ctx, class("e2e-drain-rwo", "ebs.csi.aws.com", nil))
	installAgent(t, ctx, a, true)
	old := runningTentacle(t, ctx, a)
	node := old.Spec.NodeName
	patchNode(t, ctx, node, `{"spec":{"unschedulable":true}}`, `{"spec":{"unschedulable":null}}`)
	must(t, cp.Client.SubResource("eviction").Create(ctx, old, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: old.Name, Namespace: old.Namespace}}))

	var moved *corev1.Pod
	eventually(t, ctx, "the agent's new Tentacle pod running elsewhere, the old one gone", func() (bool, string) {
		var pods corev1.PodList
		must(t, cp.Client.List(ctx, &pods, a.TentaclePodsOf()...))
		if len(pods.Items) != 1 || pods.Items[0].Name == old.Name || pods.Items[0].Status.Phase != corev1.PodRunning {
			return false, fmt.Sprintf("%d pods", len(pods.Items))
		}
		moved = &pods.Items[0]
		return true, ""
	})
	if moved.Spec.NodeName == node || hasNamePin(moved) {
		t.Fatalf("new Tentacle pod on %s (pinned: %v), want unpinned on another node than the cordoned %s", moved.Spec.NodeName, hasNamePin(moved), node)
	}
	pod := a.ScriptPod("drained01", a.NormalStyle())
	must(t, createScriptPod(t, ctx, pod))
	if got := waitScheduled(t, ctx, pod); got != moved.Spec.NodeName || !workspace.IsPinned(pod, moved.Spec.NodeName) {
		t.Fatalf("script pod on %s, want pinned to the agent's new node %s", got, moved.Spec.NodeName)
	}
}

// Fresh installs and RWX agents: Tentacle pods are left exactly as created.
func TestTentaclePodsUntouchedOnFreshInstallAndRWX(t *testing.T) {
	ctx := ctxFor(t, 4*time.Minute)
	fresh := tentacle.Agent{Namespace: "octopus-agent-fresh", Release: "fresh", Generation: 3, Storage: tentacle.StorageStatic, AccessModes: rwo}
	shared := tentacle.Agent{Namespace: "octopus-agent-rwx-rollout", Release: "rwx-rollout", Generation: 2, Storage: tentacle.StorageNFS}
	for _, a := range []tentacle.Agent{fresh, shared} {
		installAgent(t, ctx, a, true)
	}
	next := rollout(t, ctx, shared, 1)
	for _, p := range []*corev1.Pod{runningTentacle(t, ctx, fresh), next} {
		if _, ok := p.Annotations[workspace.RecordAnnotation]; ok || p.Spec.Affinity != nil {
			t.Fatalf("%s/%s was changed: annotation %q, affinity %+v", p.Namespace, p.Name, p.Annotations[workspace.RecordAnnotation], p.Spec.Affinity)
		}
	}
}

// The Tentacle pod webhook down: its failurePolicy (Ignore, from the manifest) lets the
// rollout proceed. A copy of the manifest's entry that calls a port nobody listens on stands
// for the webhook being down.
func TestTentacleRolloutProceedsWithTheWebhookDown(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-webhook-down", Release: "down", Generation: 2, Storage: tentacle.StorageStatic, AccessModes: rwo}
	installAgent(t, ctx, a, true)

	m, _ := manifestWebhooks(t)
	var entry admissionregistrationv1.MutatingWebhook
	for _, w := range m.Webhooks {
		if w.Name == "tentacle-pod-placement.workspace-webhook.io" {
			entry = w
		}
	}
	if entry.FailurePolicy == nil || *entry.FailurePolicy != admissionregistrationv1.Ignore {
		t.Fatalf("manifest entry: %+v", entry.FailurePolicy)
	}
	dead := "https://" + freeAddr() + "/mutate-tentacle-pod" // closed again: nobody listens there
	entry.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &dead, CABundle: cp.WebhookInstallOptions.LocalServingCAData}
	entry.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": a.Namespace}}
	down := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "e2e-tentacle-webhook-down"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{entry}}
	must(t, cp.Client.Create(ctx, down))
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), down) })
	time.Sleep(time.Second) // the API server's webhook configuration informer

	started := time.Now()
	next := rollout(t, ctx, a, 1)
	t.Logf("rollout with the Tentacle pod webhook down completed in %s on %s", time.Since(started).Round(time.Millisecond), next.Spec.NodeName)
}
