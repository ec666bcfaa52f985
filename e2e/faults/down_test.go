package faults

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/reliability"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
)

const (
	mutatingConfig   = "octopus-workspace-webhook"
	scriptPodWebhook = "script-pod-workspace.workspace-webhook.io"
)

// agentKind is one kind of agent, with the claim its chart (or a user) would create.
type agentKind struct {
	name  string
	agent tentacle.Agent
	// claim is a claim of this kind the claim webhook judges: ReadWriteMany on a class that
	// cannot serve it for the ReadWriteMany kind (refused when the webhook is up).
	claim func(name string) outcome
	node  string // where its Tentacle runs
}

// TestWebhookFullyDown: every replica stopped and nothing listening at the webhook's address
// (a Service with no endpoint). For each kind of agent (ReadWriteOnce, ReadWriteMany class,
// the chart's NFS) and each object (script pod, claim, Tentacle pod), what its creator sees,
// next to what it sees with the webhook up; then the emergency switch (the script-pod
// webhook's failurePolicy patched to Ignore) and what it costs.
func TestWebhookFullyDown(t *testing.T) {
	logsOnFailure(t)
	ctx := ctxFor(t, 6*time.Minute)
	t.Cleanup(func() {
		setScriptPodFailurePolicy(t, context.Background(), admissionregistrationv1.Fail)
		if err := hooks.lb.Resume(); err != nil {
			t.Errorf("listening again: %v", err)
		}
		restoreStage(t)
	})
	gp2 := unsupportedClass(t, ctx)
	rwo := rwoAgent("faults-down-rwo", "node-1")
	rwo2 := tentacle.Agent{Namespace: "faults-down-rwo-v2", Release: "prod", Generation: 2, AccessModes: rwo.AccessModes, NodeSelector: onNode("node-1")}
	nfs := tentacle.Agent{Namespace: "faults-down-nfs", Release: "downnfs", Generation: 2, Storage: tentacle.StorageNFS, NodeSelector: onNode("node-3")}
	installAgent(t, ctx, rwo)
	installAgent(t, ctx, rwo2)
	installAgent(t, ctx, nfs)
	rwx := rwxAgent(t, ctx, "faults-down-rwx")
	sameClaim := func(a tentacle.Agent) func(string) outcome {
		return func(name string) outcome {
			c := a.Claim()
			c.Name = name
			start := time.Now()
			o := claimOutcome(cp.Client.Create(ctx, c, client.DryRunAll))
			o.Start, o.End = start, time.Now()
			return o
		}
	}
	kinds := []agentKind{
		{"ReadWriteOnce (chart v3)", rwo, sameClaim(rwo), "node-1"},
		{"ReadWriteMany class", rwx, func(name string) outcome { return createClaim(ctx, rwx, gp2, name) }, "node-2"},
		{"NFS (chart v2 default)", nfs, sameClaim(nfs), "node-3"},
	}
	for _, k := range kinds {
		waitAdmitted(t, ctx, k.agent)
	}

	type cell struct{ up, down outcome }
	cells := map[string]map[string]*cell{}
	measure := func(state string) {
		for _, k := range kinds {
			if cells[k.name] == nil {
				cells[k.name] = map[string]*cell{"script pod": {}, "claim": {}, "Tentacle pod": {}}
			}
			set := func(object string, o outcome) {
				if state == "up" {
					cells[k.name][object].up = o
				} else {
					cells[k.name][object].down = o
				}
			}
			set("script pod", createScriptPod(ctx, k.agent, state+"01"))
			set("claim", k.claim("claim-"+state))
			set("Tentacle pod", createTentaclePod(ctx, k.agent, k.node, "tentacle-"+state))
		}
	}
	measure("up")

	hooks.stopAll()
	hooks.lb.Pause()
	downAt := time.Now()
	measure("down")
	downFor := time.Since(downAt)

	// The emergency switch: script pods admitted without the webhook.
	setScriptPodFailurePolicy(t, ctx, admissionregistrationv1.Ignore)
	i := 0
	eventually(t, ctx, time.Minute, "the API server applying failurePolicy Ignore", func() (bool, string) {
		i++
		o := createScriptPod(ctx, rwo, fmt.Sprintf("switch%03d", i))
		return o.Kind == kindUnmutated, o.String()
	})
	switched := map[string]string{}
	for _, k := range []struct {
		name  string
		agent tentacle.Agent
		style tentacle.Style
	}{
		{"ReadWriteOnce, chart v3 (Tentacle adds a pod affinity to itself)", rwo, tentacle.StyleV3},
		{"ReadWriteOnce, chart v2 (no co-location of its own)", rwo2, tentacle.StyleV2},
		{"ReadWriteMany class", rwx, tentacle.StyleV2},
		{"NFS", nfs, tentacle.StyleV2},
		{"any kind, ScriptPodTemplate naming no workspace", rwx, tentacle.StyleTemplate},
	} {
		switched[k.name] = landings(t, ctx, k.agent, k.style, size(4, 12))
	}
	setScriptPodFailurePolicy(t, ctx, admissionregistrationv1.Fail)
	must(t, hooks.lb.Resume())
	must(t, hooks.startAll(ctx))
	waitPinned(t, ctx, rwo, "node-1")

	var figures []bench.Figure
	var raw strings.Builder
	for _, k := range kinds {
		for _, object := range []string{"script pod", "claim", "Tentacle pod"} {
			c := cells[k.name][object]
			figures = append(figures, bench.Figure{Measurement: "webhook fully down", Figure: k.name + ", " + object,
				Measured: describe(c.down), Baseline: "up: " + describe(c.up)})
			fmt.Fprintf(&raw, "%s, %s: up: %s | down: %s (answered in %s)\n", k.name, object, describe(c.up), c.down.Kind, c.down.End.Sub(c.down.Start).Round(time.Millisecond))
			if c.down.Err != "" {
				fmt.Fprintf(&raw, "  the API server's answer: %s\n", portless(c.down.Err))
			}
		}
	}
	for _, k := range []string{"ReadWriteOnce, chart v3 (Tentacle adds a pod affinity to itself)", "ReadWriteOnce, chart v2 (no co-location of its own)", "ReadWriteMany class", "NFS", "any kind, ScriptPodTemplate naming no workspace"} {
		figures = append(figures, bench.Figure{Measurement: "emergency switch (script-pod failurePolicy Ignore, webhook down)", Figure: k + ", script pods", Measured: switched[k]})
	}
	reliability.Save(t, bench.Result{Order: 34, Name: "faults-webhook-down", Title: "34. Faults: the webhook fully down",
		Config: "Promise: with no replica running, script pods are refused at once with the API server's error (failurePolicy Fail: never admitted without their workspace or pin); " +
			"agent claims are admitted unchecked and Tentacle pods placed as Kubernetes would (Ignore); nothing else in the cluster is affected. " +
			"How: every replica stopped and nothing listening at the address the webhook configurations call (as a Service with no endpoint), " +
			"one object of each kind created through the API server (dry-run) with the webhook down (measured) and up (baseline); then the emergency switch, the script-pod webhook's failurePolicy patched to Ignore, " +
			"with script pods created for real and scheduled (kube-scheduler, kwok nodes) to show where they land.",
		Figures: figures, Raw: raw.String() + fmt.Sprintf("webhook down for %s\n", downFor.Round(time.Millisecond))})

	// Only the documented outcomes.
	for _, k := range kinds {
		c := cells[k.name]
		if c["script pod"].down.Kind != kindWebhookFailed || !strings.Contains(c["script pod"].down.Err, "connection refused") {
			t.Errorf("%s: script pod with the webhook down: %s %s, want refused: failed calling webhook ... connection refused", k.name, c["script pod"].down, c["script pod"].down.Err)
		}
		if c["Tentacle pod"].down.Kind != tentacleUnpinned {
			t.Errorf("%s: Tentacle pod with the webhook down: %s %s, want admitted unpinned", k.name, c["Tentacle pod"].down.Kind, c["Tentacle pod"].down.Err)
		}
		if c["claim"].down.Kind != claimUnchecked {
			t.Errorf("%s: claim with the webhook down: %s %s, want admitted unchecked", k.name, c["claim"].down.Kind, c["claim"].down.Err)
		}
	}
	if up := cells["ReadWriteMany class"]["claim"].up; up.Kind != claimChecked {
		t.Errorf("the ReadWriteMany claim was not refused with the webhook up (%s): the down case proves nothing", up.Kind)
	}
	if up := cells["ReadWriteOnce (chart v3)"]["Tentacle pod"].up; up.Kind != tentaclePinned {
		t.Errorf("the ReadWriteOnce Tentacle pod was not pinned with the webhook up (%s)", up.Kind)
	}
}

// claimOutcome sorts a claim creation's answer (admitted: unchecked when the webhook is down;
// describe says only "admitted").
func claimOutcome(err error) outcome {
	switch {
	case err == nil:
		return outcome{Kind: claimUnchecked}
	case strings.Contains(err.Error(), "denied the request"):
		return outcome{Kind: claimChecked, Err: err.Error()}
	default:
		return outcome{Kind: kindError, Err: err.Error()}
	}
}

// describe says what the creator saw, for the report.
func describe(o outcome) string {
	switch o.Kind {
	case kindWebhookFailed:
		return "refused: " + shortError(o.Err)
	case claimUnchecked:
		return "admitted"
	case claimChecked:
		return "refused by the webhook"
	default:
		return o.String()
	}
}

var portRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)

// portless hides the test's random ports in an API server message.
func portless(s string) string { return portRE.ReplaceAllString(s, "<webhook address>") }

// shortError keeps the part of the API server's error that says what failed.
func shortError(s string) string {
	s = portless(s)
	if i := strings.Index(s, "failed calling webhook"); i >= 0 {
		s = s[i:]
	}
	return s
}

// waitAdmitted waits until a script pod of a gets the webhook's mutation (its caches hold a).
func waitAdmitted(t *testing.T, ctx context.Context, a tentacle.Agent) {
	t.Helper()
	i := 0
	eventually(t, ctx, 30*time.Second, "script pods of "+a.Namespace+" admitted by the webhook", func() (bool, string) {
		i++
		o := createScriptPod(ctx, a, fmt.Sprintf("warm%04d", i))
		return o.Kind == kindPinned || o.Kind == kindShared, o.String() + " " + o.Err
	})
}

// setScriptPodFailurePolicy patches the script-pod webhook's failurePolicy, as the install
// guide's emergency switch does.
func setScriptPodFailurePolicy(t *testing.T, ctx context.Context, policy admissionregistrationv1.FailurePolicyType) {
	t.Helper()
	var m admissionregistrationv1.MutatingWebhookConfiguration
	must(t, cp.Client.Get(ctx, client.ObjectKey{Name: mutatingConfig}, &m))
	for i, w := range m.Webhooks {
		if w.Name == scriptPodWebhook {
			if i != 0 {
				t.Errorf("%s is webhook %d of %s; the install guide's emergency patch names index 0", scriptPodWebhook, i, mutatingConfig)
			}
			patch := fmt.Sprintf(`[{"op":"replace","path":"/webhooks/%d/failurePolicy","value":%q}]`, i, policy)
			must(t, cp.Client.Patch(ctx, &m, client.RawPatch("application/json-patch+json", []byte(patch))))
			return
		}
	}
	t.Fatalf("no webhook %s in %s", scriptPodWebhook, mutatingConfig)
}

// landings creates n script pods of a in style for real and says where the scheduler put
// them against where the agent's Tentacle (and so its volume) is, and whether they carry the
// workspace; then deletes them.
func landings(t *testing.T, ctx context.Context, a tentacle.Agent, style tentacle.Style, n int) string {
	t.Helper()
	tentaclePod := waitTentacle(t, ctx, a)
	var pods []*corev1.Pod
	for i := range n {
		pod := a.ScriptPod(fmt.Sprintf("landing-%s-%02d", style, i), style)
		must(t, cp.Client.Create(ctx, pod))
		pods = append(pods, pod)
	}
	defer func() {
		for _, p := range pods {
			_ = cp.Client.Delete(context.Background(), p, client.GracePeriodSeconds(0))
		}
	}()
	away, mounted := 0, 0
	for _, p := range pods {
		eventually(t, ctx, time.Minute, "script pod "+p.Name+" scheduled", func() (bool, string) {
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
				return false, err.Error()
			}
			return p.Spec.NodeName != "", string(p.Status.Phase)
		})
		if p.Spec.NodeName != tentaclePod.Spec.NodeName {
			away++
		}
		if mountsClaim(p, a.ClaimName()) {
			mounted++
		}
	}
	workspace := fmt.Sprintf("%d of %d mount the workspace", mounted, n)
	if a.AccessModes != nil && a.AccessModes[0] == corev1.ReadWriteOnce {
		return fmt.Sprintf("admitted unchanged; %d of %d scheduled away from the volume's node %s (each would hang on a Multi-Attach error); %s", away, n, tentaclePod.Spec.NodeName, workspace)
	}
	return fmt.Sprintf("admitted unchanged; %s", workspace)
}

// mountsClaim tells whether every container of p mounts claim at /octopus.
func mountsClaim(p *corev1.Pod, claim string) bool {
	vol := ""
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			vol = v.Name
		}
	}
	if vol == "" {
		return false
	}
	for _, c := range p.Spec.Containers {
		ok := false
		for _, m := range c.VolumeMounts {
			ok = ok || (m.Name == vol && m.MountPath == "/octopus")
		}
		if !ok {
			return false
		}
	}
	return true
}
