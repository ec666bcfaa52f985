package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// Targets through the API server (issue 15, one round trip per script pod): creation
// latency with our webhook and the final-state policy within 1.30x (p50) and 1.25x (p99) of
// the same load without any, and within 1.10x (p50) of a single no-op webhook call.
const (
	apiMaxP50Ratio     = 1.30
	apiMaxP99Ratio     = 1.25
	apiMaxP50VsNoop    = 1.10
	apiCallsPerPodGoal = 1.00
	// sideLabel picks which webhooks apply to a namespace: absent, ours (manifests/base);
	// "noop", the same configurations pointing at a no-op server (script pods: one call);
	// "none", no webhook.
	sideLabel = "bench.workspace-webhook.io/webhooks"
)

// apiSide is one kind of namespace the creators create script pods in.
type apiSide struct {
	name    string
	label   string // value of sideLabel; "" for ours
	agent   tentacle.Agent
	mutated bool // pods come back with the webhook's record annotation
	phases  []Phase
	cpu     map[string]float64 // process -> CPU seconds during this side's phases
	pods    int
}

// apiLoad is the load of one part of figure 3: closed loop (creators, rate 0) or open loop
// (rate pods per second, at most creators in flight).
type apiLoad struct {
	creators int
	rate     float64
}

func (l apiLoad) String() string {
	if l.rate > 0 {
		return fmt.Sprintf("%g pods/s paced", l.rate)
	}
	return fmt.Sprintf("%d creators", l.creators)
}

func (l apiLoad) file() string {
	return strings.ReplaceAll(strings.ReplaceAll(l.String(), " ", ""), "/", "per")
}

func (l apiLoad) run(ctx context.Context, d time.Duration, do func(context.Context, int, int) error) Phase {
	if l.rate > 0 {
		return RunPaced(ctx, l.rate, l.creators, d, do)
	}
	return RunPhase(ctx, l.creators, d, do)
}

// file names the side in file names: ours, noop, none.
func (s *apiSide) file() string {
	if s.label == "" {
		return "ours"
	}
	return s.label
}

// TestAPIServer creates script pods through a real kube-apiserver (with scheduler,
// controller manager and kwok nodes) under each load of cfg.apiLoads (a fixed number of
// concurrent creators, which saturates two cores, or a fixed rate, which need not), in
// rotating phases (ABC, CBA, ...) over three namespaces with the same agent: one where the
// webhook configurations and the final-state policy of manifests/base apply (our webhook
// process pins the pod, the API server checks its final state), one where the same webhook
// configurations point at a no-op server (the floor: one webhook call, what any webhook costs
// the API server), one no webhook applies to (the baseline). Between phases
// the pods are deleted and the cluster settles. CPU per created pod is read from /proc for
// every process of the cluster, the webhook and the load generator, and for the machine.
func TestAPIServer(t *testing.T) {
	requireBinaries(t)
	ctx := ctxFor(t, 40*time.Minute)
	cp, err := controlplane.Start(ctx, controlplane.AllComponents(3))
	must(t, err)
	t.Cleanup(func() { _ = cp.Stop() }) // after the webhook processes: they hold watches
	must(t, RoomForPods(ctx, cp))

	wio := cp.WebhookInstallOptions
	hook := webhookprocess.Start(t, webhookprocess.Options{Kubeconfig: cp.KubeconfigPath, CertDir: wio.LocalServingCertDir,
		Host: wio.LocalServingHost, Port: wio.LocalServingPort})
	_, err = hook.WaitReady(ctx, time.Minute)
	must(t, err)
	noopBase := startNoopServer(t, wio.LocalServingCertDir)
	must(t, registerWebhooks(ctx, cp, fmt.Sprintf("https://%s:%d", wio.LocalServingHost, wio.LocalServingPort), noopBase))

	sides := []*apiSide{
		{name: "ours (webhook + policy)", agent: benchAgent("bench-hooked"), mutated: true},
		{name: "one no-op call (floor)", label: "noop", agent: benchAgent("bench-noop")},
		{name: "no webhooks (baseline)", label: "none", agent: benchAgent("bench-none")},
	}
	for _, s := range sides {
		must(t, installAgent(ctx, cp, s.agent, s.label))
	}
	c, err := FastClient(cp.Config)
	must(t, err)
	procs := cp.PIDs() // kube-apiserver, etcd, kube-scheduler, kube-controller-manager, kwok
	procs["webhook"] = hook.Pid()
	procs["load generator"] = os.Getpid() // with the no-op webhook server

	var raw strings.Builder
	var figures []Figure
	for li, load := range cfg.apiLoads {
		for _, s := range sides {
			s.phases, s.cpu, s.pods = nil, map[string]float64{}, 0
		}
		// Warm-up: connections, caches, the scheduler's and kwok's first pods; not measured.
		for _, s := range sides {
			if p := load.run(ctx, time.Second, creator(c, s, 100*li)); p.Errors > 0 {
				t.Fatalf("warm-up %s: %d errors: %v", s.name, p.Errors, p.Examples)
			}
			must(t, clearScriptPods(ctx, c, s.agent.Namespace))
		}
		calls0, err := hook.Metric("controller_runtime_webhook_requests_total")
		must(t, err)
		fmt.Fprintf(&raw, "--- %s\n", load)
		for r := range cfg.apiRounds {
			order := slices.Clone(sides)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				cpu0 := CPUOf(procs)
				profiled := func() error { return nil }
				if r == 0 && cfg.out != "" { // one profile per side and concurrency, in full runs
					name := fmt.Sprintf("apiserver.%s.%s.cpu.pprof", load.file(), s.file())
					profiled = profileAPIServer(ctx, cp.Config, cfg.apiPhase-time.Second, cfg.out, name)
				}
				p := load.run(ctx, cfg.apiPhase, creator(c, s, 100*li+r+1))
				must(t, profiled())
				for name, v := range CPUOf(procs) {
					s.cpu[name] += v - cpu0[name]
				}
				s.phases, s.pods = append(s.phases, p), s.pods+len(p.Latencies)
				fmt.Fprintf(&raw, "round %d %-23s %s\n", r+1, s.name, p.Summary().Line())
				must(t, clearScriptPods(ctx, c, s.agent.Namespace))
			}
		}
		calls1, err := hook.Metric("controller_runtime_webhook_requests_total")
		must(t, err)
		sum := map[*apiSide]Summary{}
		for _, s := range sides {
			sum[s] = Merge(s.phases).Summary()
			fmt.Fprintf(&raw, "pooled  %-23s %s\n", s.name, sum[s].Line())
			if sum[s].N == 0 || sum[s].P50 <= 0 || sum[s].Errors > 0 {
				t.Fatalf("no sane measurement: %s; errors %v\n%s", sum[s].Line(), sum[s].ErrorExamples, raw.String())
			}
		}
		callsPerPod := (calls1 - calls0) / float64(sides[0].pods)
		fmt.Fprintf(&raw, "calls to our webhook per script pod: %.2f (reinvocations included)\n", callsPerPod)
		fmt.Fprintf(&raw, "CPU per created pod, µs (/proc/<pid>/stat; machine: /proc/stat busy time over all cores):\n  %-23s", "")
		cols := []string{"kube-apiserver", "etcd", "webhook", "kube-scheduler", "kube-controller-manager", "kwok", "load generator", MachineCPU}
		for _, name := range cols {
			fmt.Fprintf(&raw, " %*s", max(len(name), 6), name)
		}
		for _, s := range sides {
			fmt.Fprintf(&raw, "\n  %-23s", s.name)
			for _, name := range cols {
				fmt.Fprintf(&raw, " %*.0f", max(len(name), 6), s.cpu[name]/float64(s.pods)*1e6)
			}
		}
		raw.WriteString("\n")
		raw.WriteString("\n")
		ours, floor, none := sum[sides[0]], sum[sides[1]], sum[sides[2]]
		m := fmt.Sprintf("3. pod creation via kube-apiserver, %s", load)
		p50, p99, p50Noop := ratio(ours.P50, none.P50), ratio(ours.P99, none.P99), ratio(ours.P50, floor.P50)
		figures = append(figures,
			Figure{Measurement: m, Figure: "p50 create latency", Measured: Ms(ours.P50), Baseline: Ms(none.P50) + " (none)", Ratio: p50, Target: fmt.Sprintf("<= %.2fx", apiMaxP50Ratio), Met: Met(p50 <= apiMaxP50Ratio)},
			Figure{Measurement: m, Figure: "p99 create latency", Measured: Ms(ours.P99), Baseline: Ms(none.P99) + " (none)", Ratio: p99, Target: fmt.Sprintf("<= %.2fx", apiMaxP99Ratio), Met: Met(p99 <= apiMaxP99Ratio)},
			Figure{Measurement: m, Figure: "p50 vs one no-op webhook call (our share)", Measured: Ms(ours.P50) + " / " + Ms(ours.P99), Baseline: Ms(floor.P50) + " / " + Ms(floor.P99) + " (no-op)", Ratio: p50Noop, Target: fmt.Sprintf("<= %.2fx", apiMaxP50VsNoop), Met: Met(p50Noop <= apiMaxP50VsNoop)},
			Figure{Measurement: m, Figure: "p50 / p99 of one no-op webhook call vs none (any webhook's cost)", Measured: Ms(floor.P50) + " / " + Ms(floor.P99), Baseline: Ms(none.P50) + " / " + Ms(none.P99) + " (none)", Ratio: ratio(floor.P50, none.P50)},
			Figure{Measurement: m, Figure: "calls to our webhook per script pod", Measured: fmt.Sprintf("%.2f", callsPerPod), Baseline: "-", Target: fmt.Sprintf("%.2f", apiCallsPerPodGoal), Met: Met(callsPerPod <= apiCallsPerPodGoal+0.005)},
			Figure{Measurement: m, Figure: "creates per second", Measured: fmt.Sprintf("%.0f /s", ours.RequestsPerSecond), Baseline: fmt.Sprintf("%.0f /s (none); %.0f /s (no-op)", none.RequestsPerSecond, floor.RequestsPerSecond), Ratio: ours.RequestsPerSecond / none.RequestsPerSecond},
			Figure{Measurement: m, Figure: "errors", Measured: fmt.Sprint(ours.Errors), Baseline: fmt.Sprint(none.Errors + floor.Errors), Target: "0", Met: Met(ours.Errors+none.Errors+floor.Errors == 0)},
		)
	}
	save(t, Result{Order: 3, Name: "apiserver", Title: "3. Script-pod creation through kube-apiserver: our webhook + policy vs one no-op webhook call vs none",
		Config: fmt.Sprintf("%s mode; AllComponents(3) (kube-apiserver, etcd, scheduler, controller manager, kwok); our webhook process on loopback registered from manifests/base/webhooks.yaml with the final-state policy of manifests/base/script-pod-policy.yaml, "+
			"the same webhook configurations pointing at a no-op controller-runtime webhook server (in the load generator's process) for the floor (one call per script pod, no policy), namespaces picked by label %s; "+
			"loads %v (closed loop: N creators each creating its next pod when the last is answered; open loop: a fixed rate, latency counted from when each pod was due; one HTTP/2 connection, no client rate limit), %d rounds x %s per side, rotating ABC/CBA; Tentacle v3 script pods; "+
			"pods deleted and the cluster settled between phases", cfg.mode(), sideLabel, cfg.apiLoads, cfg.apiRounds, cfg.apiPhase),
		Figures: figures,
		Raw:     raw.String(),
	})
}

// creator creates one script pod of s per call and checks whether our webhook mutated it.
func creator(c client.Client, s *apiSide, round int) func(context.Context, int, int) error {
	return func(ctx context.Context, worker, seq int) error {
		pod := s.agent.ScriptPod(fmt.Sprintf("r%dw%ds%d", round, worker, seq), tentacle.StyleV3)
		if err := c.Create(ctx, pod); err != nil {
			return err
		}
		if _, mutated := pod.Annotations[workspace.RecordAnnotation]; mutated != s.mutated {
			return fmt.Errorf("pod %s/%s: webhook record present=%v, want %v", pod.Namespace, pod.Name, mutated, s.mutated)
		}
		return nil
	}
}
