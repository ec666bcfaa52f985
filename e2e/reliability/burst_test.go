package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
)

const scriptTicketLabel = "octopus.com/scriptTicketId"

// TestBurst creates cfg.burstPods script pods at once (cfg.burstCreators concurrent creators)
// across cfg.burstAgents agents of every chart generation and storage mode, through a real
// kube-apiserver with scheduler, controller manager and kwok nodes, the webhook configurations
// of manifests/base pointing at the webhook running as its own process and the final-state
// policy installed. Every pod must be admitted with exactly one workspace volume and one
// workspace mount per container, every ReadWriteOnce one pinned to its agent's node and
// scheduled there, no ReadWriteMany one pinned, with no refusal, error or failed answer from
// the webhook.
func TestBurst(t *testing.T) {
	requireBinaries(t)
	ctx := ctxFor(t, 40*time.Minute)
	root, err := controlplane.RepoRoot()
	must(t, err)
	opts := controlplane.AllComponents(cfg.burstNodes)
	opts.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "manifests", "base", "webhooks.yaml")}}
	// The scheduler's default client rate (50 requests/s) alone would take 100 s to bind 5,000
	// pods; a cluster expecting bursts raises it.
	opts.ExtraSchedulerArgs = []string{"--kube-api-qps=500", "--kube-api-burst=1000"}
	cp, err := controlplane.Start(ctx, opts)
	must(t, err)
	t.Cleanup(func() { _ = cp.Stop() }) // after the webhook process: it holds watches
	must(t, bench.RoomForPods(ctx, cp))
	policy, bindings, err := manifests.ScriptPodPolicy()
	must(t, err)
	must(t, cp.InstallPolicy(ctx, policy, bindings...))
	wio := cp.WebhookInstallOptions
	hook := webhookprocess.Start(t, webhookprocess.Options{Kubeconfig: cp.KubeconfigPath, CertDir: wio.LocalServingCertDir,
		Host: wio.LocalServingHost, Port: wio.LocalServingPort, LogPath: logPath("burst")})
	_, err = hook.WaitReady(ctx, time.Minute)
	must(t, err)
	c, err := bench.FastClient(cp.Config)
	must(t, err)
	must(t, createIgnoringExisting(ctx, c, storageClasses()...))

	var raw strings.Builder
	logf := func(format string, a ...any) {
		fmt.Fprintf(&raw, format+"\n", a...)
		t.Logf(format, a...)
	}
	agents := fleet("burst", cfg.burstAgents, cfg.burstNodes)
	began := time.Now()
	must(t, installAgents(ctx, cp, agents))
	must(t, waitAdmitting(ctx, c, agents))
	logf("%d agents installed through their Deployments and admitting script pods in %s: %s", len(agents), time.Since(began).Round(time.Second), shapeCounts(agents))
	logf("machine %.0f%% busy in the second before the burst (other work skews the rate and latency)", bench.BusyPercent(time.Second))
	before, err := tallyOf(hook)
	must(t, err)
	procs := cp.PIDs() // kube-apiserver, etcd, kube-scheduler, kube-controller-manager, kwok
	procs["webhook"], procs["creators (test)"] = hook.Pid(), os.Getpid()
	cpu0 := bench.CPUOf(procs)

	pods := make([]*corev1.Pod, cfg.burstPods)
	owner := make([]fleetAgent, cfg.burstPods)
	for k := range pods {
		owner[k] = agents[k%len(agents)]
		pods[k] = owner[k].agent.ScriptPod(fmt.Sprintf("b%05d", k), scriptStyle(owner[k].agent, k))
	}
	took, burst := createConcurrently(ctx, c, pods, cfg.burstCreators)
	sum := burst.Summary()
	cpu1 := bench.CPUOf(procs)
	after, err := tallyOf(hook)
	must(t, err)
	webhook := after.since(before)
	logf("burst: %s", sum.Line())
	for _, e := range sum.ErrorExamples {
		logf("  error: %s", e)
	}
	logf("webhook, during the burst: %s", webhook)
	logf("create latency by kind of agent (NFS claims are read live, as are the Tentacle pods of a v1/v2 agent with nameOverride):\n%s", strings.TrimRight(latencyByKind(owner, took), "\n"))
	logf("CPU during the burst (/proc/<pid>/stat; machine: all cores, /proc/stat), seconds and per pod:\n%s", cpuTable(cpu0, cpu1, cfg.burstPods))

	// What each admitted pod came back with, then where the scheduler put it.
	var wrong []string
	var admitted, workspaceOK, admittedRWO, pinnedThere, admittedRWX, notPinned int
	for k, pod := range pods {
		if took[k] == 0 {
			continue
		}
		admitted++
		if err := checkWorkspace(pod, owner[k]); err != nil {
			wrong = append(wrong, err.Error())
		} else {
			workspaceOK++
		}
		if owner[k].shape.Pinned {
			admittedRWO++
		} else {
			admittedRWX++
		}
	}
	began = time.Now()
	nodes, err := waitScheduled(ctx, c, admitted)
	must(t, err)
	scheduledIn := time.Since(began)
	for k, pod := range pods {
		if took[k] == 0 {
			continue
		}
		if err := checkPin(pod, owner[k]); err != nil {
			wrong = append(wrong, err.Error())
			continue
		}
		if !owner[k].shape.Pinned {
			notPinned++
		} else if got := nodes[pod.Namespace+"/"+pod.Name]; got == owner[k].node {
			pinnedThere++
		} else {
			wrong = append(wrong, fmt.Sprintf("pod %s/%s (RWO) scheduled to %q, want the Tentacle's node %s", pod.Namespace, pod.Name, got, owner[k].node))
		}
	}
	logf("every admitted pod scheduled %s after the burst ended; ReadWriteOnce pods pinned to and scheduled on their Tentacle's node: %d of %d", scheduledIn.Round(100*time.Millisecond), pinnedThere, admittedRWO)
	for i, w := range wrong {
		if i == 10 {
			logf("  ... %d more", len(wrong)-10)
			break
		}
		logf("  wrong: %s", w)
	}

	n := cfg.burstPods
	callsPerPod := webhook.calls() / float64(n)
	p50Own, _ := webhook.tookAtMost(0.50)
	p99Own, slowOwn := webhook.tookAtMost(0.99)
	m := fmt.Sprintf("burst: %d script pods, %d agents, %d creators", n, len(agents), cfg.burstCreators)
	Save(t, bench.Result{Order: 10, Name: "burst", Title: "10. Burst: script pods created at once through kube-apiserver",
		Config: fmt.Sprintf("Promise: when many deployments start at once, every script pod is admitted, none is refused or slowed into failure by the webhook, each gets exactly one workspace volume "+
			"and one workspace mount per container, ReadWriteOnce ones are pinned to their agent's node and scheduled there, ReadWriteMany ones are not pinned. "+
			"How: %s mode; %d script pods (8 in 10 the agent's own Tentacle style, 1 in 10 raw-script, 1 in 10 from a ScriptPodTemplate) created by %d concurrent creators (one HTTP/2 connection, no client rate limit) "+
			"across %d agents installed through their chart's objects (%s) on a real kube-apiserver, etcd, scheduler, controller manager and %d kwok nodes; "+
			"the webhook (cmd/workspace-webhook, its own process: the production build under make reliability) registered from manifests/base/webhooks.yaml, "+
			"the final-state policy from manifests/base/script-pod-policy.yaml; each admitted pod checked as created, then once the scheduler bound them all; the webhook's own metrics read before and after",
			cfg.mode(), n, cfg.burstCreators, len(agents), shapeCounts(agents), cfg.burstNodes),
		Figures: []bench.Figure{
			{Measurement: m, Figure: "script pods admitted", Measured: fmt.Sprintf("%d of %d", admitted, n), Target: "all", Met: bench.Met(admitted == n)},
			{Measurement: m, Figure: "admitted with exactly one workspace volume and one mount at /octopus per container", Measured: fmt.Sprintf("%d of %d admitted", workspaceOK, admitted), Target: "all", Met: bench.Met(workspaceOK == admitted)},
			{Measurement: m, Figure: "admitted ReadWriteOnce pods pinned to the agent's node and scheduled there", Measured: fmt.Sprintf("%d of %d", pinnedThere, admittedRWO), Target: "all", Met: bench.Met(pinnedThere == admittedRWO)},
			{Measurement: m, Figure: "admitted ReadWriteMany pods not pinned", Measured: fmt.Sprintf("%d of %d", notPinned, admittedRWX), Target: "all", Met: bench.Met(notPinned == admittedRWX)},
			{Measurement: m, Figure: "webhook errors (refusals, InternalError, non-200 answers) / client errors", Measured: fmt.Sprintf("%.0f / %d", webhook.errors(), sum.Errors), Target: "0 / 0",
				Met: bench.Met(webhook.errors() == 0 && sum.Errors == 0)},
			{Measurement: m, Figure: "calls to the webhook per script pod", Measured: fmt.Sprintf("%.2f", callsPerPod), Target: "1.00", Met: bench.Met(callsPerPod > 0.995 && callsPerPod < 1.005)},
			{Measurement: m, Figure: "the webhook's own time per decision p50 / p99 (its histogram's bucket bounds); over 1 s", Measured: fmt.Sprintf("<= %s / <= %s; %.0f", p50Own, p99Own, slowOwn)},
			{Measurement: m, Figure: "the webhook's live reads of the API server per script pod", Measured: fmt.Sprintf("%.2f", webhook.liveReads()/float64(n))},
			{Measurement: m, Figure: "script pods admitted per second (whole burst)", Measured: fmt.Sprintf("%.0f /s (%d in %s)", float64(admitted)/burst.Wall.Seconds(), admitted, bench.Secs(burst.Wall))},
			{Measurement: m, Figure: "create latency p50 / p99 / max", Measured: fmt.Sprintf("%s / %s / %s", bench.Ms(sum.P50), bench.Ms(sum.P99), bench.Ms(sum.Max))},
			{Measurement: m, Figure: "every pod scheduled, after the last create", Measured: bench.Secs(scheduledIn)},
		},
		Raw: raw.String(),
	})
	if len(wrong) > 0 || admitted != n || sum.Errors > 0 || webhook.errors() > 0 || sum.P50 <= 0 {
		t.Fatalf("burst: %d of %d admitted, %d wrong, %d client errors, webhook %s\n%s", admitted, n, len(wrong), sum.Errors, webhook, raw.String())
	}
	if callsPerPod < 0.995 {
		t.Fatalf("the webhook answered %.0f calls for %d script pods: not every pod went through it", webhook.calls(), n)
	}
}

// installAgents installs each agent as its chart does (namespace, service accounts, workspace
// claim and volume, the Tentacle Deployment), eight at a time, and waits for every Tentacle
// pod to run: the controller manager makes the ReplicaSet and pod, the scheduler places it on
// the node its NodeSelector names, kwok runs it.
func installAgents(ctx context.Context, cp *controlplane.ControlPlane, agents []fleetAgent) error {
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, f := range agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := installAgent(ctx, cp, f.agent)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = fmt.Errorf("installing %s: %w", f, err)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return poll(ctx, "every Tentacle pod running", time.Second, 3*time.Minute, func() (bool, string, error) {
		waiting := 0
		for _, f := range agents {
			var pods corev1.PodList
			if err := cp.Client.List(ctx, &pods, client.InNamespace(f.agent.Namespace), client.MatchingLabels(f.agent.Deployment().Spec.Selector.MatchLabels), client.HasLabels{"pod-template-hash"}); err != nil {
				return false, "", err
			}
			running := false
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && p.Spec.NodeName == f.node {
					running = true
				}
			}
			if !running {
				waiting++
			}
		}
		return waiting == 0, fmt.Sprintf("%d agents without a running Tentacle pod", waiting), nil
	})
}

func installAgent(ctx context.Context, cp *controlplane.ControlPlane, a tentacle.Agent) error {
	if _, err := cp.CreateNamespace(ctx, a.Namespace); err != nil { // waits for its default ServiceAccount
		return err
	}
	for _, sa := range a.ServiceAccounts() {
		if err := createIgnoringExisting(ctx, cp.Client, sa); err != nil {
			return err
		}
	}
	if err := bench.CreateWorkspace(ctx, cp.Client, a); err != nil {
		return err
	}
	return cp.Client.Create(ctx, a.Deployment())
}

// waitAdmitting dry-runs one script pod per agent until the webhook admits it: right after a
// Tentacle pod starts, the webhook's cache may not have seen it yet ("no node holds it yet").
func waitAdmitting(ctx context.Context, c client.Client, agents []fleetAgent) error {
	for i, f := range agents {
		err := poll(ctx, "the webhook to admit script pods of "+f.String(), 100*time.Millisecond, time.Minute, func() (bool, string, error) {
			pod := f.agent.ScriptPod(fmt.Sprintf("warmup%d", i), f.agent.NormalStyle())
			if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
				return false, err.Error(), nil
			}
			return true, "", checkScriptPod(pod, f)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// createConcurrently creates pods from creators workers as fast as the API server answers;
// each pod is replaced by what the API server returned (the admitted pod). took says how long
// each create took, 0 for those that failed.
func createConcurrently(ctx context.Context, c client.Client, pods []*corev1.Pod, creators int) (took []time.Duration, _ bench.Phase) {
	took = make([]time.Duration, len(pods))
	var next atomic.Int64
	var mu sync.Mutex
	var out bench.Phase
	var wg sync.WaitGroup
	start := time.Now()
	for range creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= len(pods) {
					return
				}
				t0 := time.Now()
				err := c.Create(ctx, pods[k])
				el := time.Since(t0)
				mu.Lock()
				if err != nil {
					out.Errors++
					if len(out.Examples) < 5 {
						out.Examples = append(out.Examples, err.Error())
					}
				} else {
					took[k] = el
					out.Latencies = append(out.Latencies, el)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	out.Wall = time.Since(start)
	return took, out
}

// latencyByKind summarises the create latencies of each kind of agent (shape, nameOverride):
// they differ in what the webhook reads (a cache, or the API server live).
func latencyByKind(owner []fleetAgent, took []time.Duration) string {
	byKind := map[string][]time.Duration{}
	var kinds []string
	for k, d := range took {
		if d == 0 {
			continue
		}
		kind := owner[k].kind()
		if byKind[kind] == nil {
			kinds = append(kinds, kind)
		}
		byKind[kind] = append(byKind[kind], d)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, kind := range kinds {
		s := bench.Summarize(byKind[kind], 0, 0, nil)
		fmt.Fprintf(&b, "  %-28s n=%-5d p50 %s  p99 %s  max %s\n", kind, s.N, bench.Ms(s.P50), bench.Ms(s.P99), bench.Ms(s.Max))
	}
	return b.String()
}

// waitScheduled waits until every script pod is bound to a node (at most 10 minutes; pods
// that are not would be the webhook's failure: a pin no node satisfies) and returns
// namespace/name -> node for all of them.
func waitScheduled(ctx context.Context, c client.Client, want int) (map[string]string, error) {
	err := poll(ctx, "every script pod scheduled", 2*time.Second, 10*time.Minute, func() (bool, string, error) {
		var pending corev1.PodList
		if err := c.List(ctx, &pending, client.HasLabels{scriptTicketLabel}, client.MatchingFields{"spec.nodeName": ""}); err != nil {
			return false, "", err
		}
		return len(pending.Items) == 0, fmt.Sprintf("%d script pods not scheduled", len(pending.Items)), nil
	})
	if err != nil {
		return nil, err
	}
	var all corev1.PodList
	if err := c.List(ctx, &all, client.HasLabels{scriptTicketLabel}); err != nil {
		return nil, err
	}
	if len(all.Items) != want {
		return nil, fmt.Errorf("%d script pods in the cluster, want %d", len(all.Items), want)
	}
	nodes := make(map[string]string, len(all.Items))
	for _, p := range all.Items {
		nodes[p.Namespace+"/"+p.Name] = p.Spec.NodeName
	}
	return nodes, nil
}

// cpuTable is the CPU each process used between two CPUOf readings, in seconds and per pod.
func cpuTable(before, after map[string]float64, pods int) string {
	names := make([]string, 0, len(after))
	for name := range after {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		d := after[name] - before[name]
		fmt.Fprintf(&b, "  %-24s %8.1f s  %8.0f µs/pod\n", name, d, d/float64(pods)*1e6)
	}
	return strings.TrimRight(b.String(), "\n")
}
