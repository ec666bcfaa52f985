package reliability

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

// Issue 6's memory bound (BENCHMARKS.md figure 4): at most 5 MiB more resident memory on the
// populated cluster than the same binary on an empty one, and below 64 MiB in all.
const (
	memMaxGrowth = 5 << 20
	memMaxTotal  = 64 << 20
)

// TestScale measures the webhook process (production build under make reliability) on a
// cluster holding cfg.scaleAgents agents of every chart generation and storage mode and
// cfg.scalePods unrelated application pods on cfg.scaleNodes kwok nodes, against the same
// binary on the empty cluster in the same run (the cluster holding only the cfg.scaleSample
// agents whose script pods are measured): resident memory after GC, start-up to ready, and
// the latency of admitting those script pods, each side a fresh process. The objects are
// created directly, as the chart and the controllers leave them (kwok runs the pods); no
// scheduler runs: every pod is created bound to its node.
// The process started on the empty cluster keeps serving the registered webhook while the
// cluster grows: script pods created through kube-apiserver on each side must come back with
// the workspace and the right pin.
func TestScale(t *testing.T) {
	requireBinaries(t)
	ctx := ctxFor(t, 90*time.Minute)
	root, err := controlplane.RepoRoot()
	must(t, err)
	// The controller manager runs as in any cluster (node lifecycle, service accounts, policy
	// type checking); the scheduler does not: every pod is created bound to its node.
	opts := controlplane.Options{Nodes: cfg.scaleNodes, WithKwok: true, WithControllerManager: true, StartTimeout: 5 * time.Minute,
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "manifests", "base", "webhooks.yaml")}}}
	cp, err := controlplane.Start(ctx, opts)
	must(t, err)
	t.Cleanup(func() { _ = cp.Stop() }) // after the webhook processes: they hold watches
	must(t, bench.RoomForPods(ctx, cp))
	policy, bindings, err := manifests.ScriptPodPolicy()
	must(t, err)
	must(t, cp.InstallPolicy(ctx, policy, bindings...))
	c, err := bench.FastClient(cp.Config)
	must(t, err)
	must(t, createIgnoringExisting(ctx, c, storageClasses()...))

	var raw strings.Builder
	logf := func(format string, a ...any) {
		fmt.Fprintf(&raw, format+"\n", a...)
		t.Logf(format, a...)
	}
	agents := fleet("agent", cfg.scaleAgents, cfg.scaleNodes)
	sample := agents[:cfg.scaleSample]
	reviews := sampleReviews(t, sample)

	// The empty cluster: the nodes and the sample agents.
	began := time.Now()
	must(t, seedAgents(ctx, c, sample))
	must(t, waitTentaclesRunning(ctx, c, len(sample)))
	logf("empty cluster: %d kwok nodes, %d agents (%s) seeded and running in %s", cfg.scaleNodes, len(sample), shapeCounts(sample), time.Since(began).Round(time.Second))
	wio := cp.WebhookInstallOptions
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(wio.LocalServingCAData)
	first := webhookprocess.Start(t, webhookprocess.Options{Kubeconfig: cp.KubeconfigPath, CertDir: wio.LocalServingCertDir, Pool: pool,
		Host: wio.LocalServingHost, Port: wio.LocalServingPort, GCTrace: true, LogPath: logPath("scale-started-empty")})
	readyEmpty, err := first.WaitReady(ctx, time.Minute)
	must(t, err)
	must(t, waitAdmitting(ctx, c, sample))
	warmUp(ctx, t, first, reviews)
	admitEmpty, busyEmpty := measureAdmission(ctx, first, reviews, cfg.scaleAdmission)
	apiEmpty := createThroughAPIServer(ctx, c, sample, cfg.scaleScriptPods, "e")
	e0, err := first.Settle(ctx, cfg.settleGC)
	must(t, err)
	logf("empty cluster, fresh process: ready after %s; admission (machine %.0f%% busy just before) %s", bench.Secs(readyEmpty), busyEmpty, admitEmpty.Summary().Line())
	logf("  memory: %s", e0)
	logf("  %d script pods through kube-apiserver: %s", cfg.scaleScriptPods, apiEmpty)

	// The populated cluster: first every agent, measured by a fresh process (its caches hold
	// agents; memory that grows with them is expected), then the unrelated pods, which never
	// reach its label-selected caches, while that process settles.
	began = time.Now()
	must(t, seedAgents(ctx, c, agents[len(sample):]))
	must(t, waitTentaclesRunning(ctx, c, len(agents)))
	seeded := time.Since(began)
	agentsOnly := webhookprocess.Start(t, webhookprocess.Options{Kubeconfig: cp.KubeconfigPath, GCTrace: true, LogPath: logPath("scale-started-agents-only")})
	readyAgents, err := agentsOnly.WaitReady(ctx, 2*time.Minute)
	must(t, err)
	warmUp(ctx, t, agentsOnly, reviews)
	var a0 webhookprocess.MemSample
	var errAgents error
	settled := make(chan struct{})
	go func() { defer close(settled); a0, errAgents = agentsOnly.Settle(ctx, cfg.settleGC) }()
	began = time.Now()
	must(t, createUnrelatedPods(ctx, cp, c, cfg.scalePods, cfg.scaleNodes))
	created := time.Since(began)
	began = time.Now()
	must(t, waitNonePending(ctx, c))
	running := time.Since(began)
	<-settled
	must(t, errAgents)
	agentsOnly.Stop()
	logf("populated: %d more agents seeded and running in %s; %d unrelated pods created in %s (%.0f pods/s, bound to the %d nodes round robin); all %d pods Running (kwok) %s later",
		len(agents)-len(sample), seeded.Round(time.Second), cfg.scalePods, created.Round(time.Second), float64(cfg.scalePods)/created.Seconds(), cfg.scaleNodes,
		cfg.scalePods+len(agents), running.Round(time.Second))
	logf("agents only, fresh process: ready after %s", bench.Secs(readyAgents))
	logf("  memory: %s", a0)
	logf("agents: %s", shapeCounts(agents))

	if cfg.full { // let the API server, etcd, the controller manager and kwok digest the population
		q0 := time.Now()
		busy := waitQuiet(ctx, 50, 3*time.Minute)
		logf("after the population, the machine settled to %.0f%% busy in %s", busy, time.Since(q0).Round(time.Second))
	}
	fresh := webhookprocess.Start(t, webhookprocess.Options{Kubeconfig: cp.KubeconfigPath, GCTrace: true, LogPath: logPath("scale-started-populated")})
	readyFull, err := fresh.WaitReady(ctx, 2*time.Minute)
	must(t, err)
	// The two processes on the populated cluster take turns (ABBA), so that other work on the
	// machine weighs on both alike.
	warmUp(ctx, t, fresh, reviews)
	warmUp(ctx, t, first, reviews)
	freshBefore, err := tallyOf(fresh)
	must(t, err)
	firstBefore, err := tallyOf(first)
	must(t, err)
	var fullPhases, grownPhases []bench.Phase
	var busyFull, busyGrown float64
	for round := range 2 {
		order := []*webhookprocess.Process{fresh, first}
		if round == 1 {
			order = []*webhookprocess.Process{first, fresh}
		}
		for _, p := range order {
			ph, busy := measureAdmission(ctx, p, reviews, cfg.scaleAdmission/2)
			if p == fresh {
				fullPhases, busyFull = append(fullPhases, ph), max(busyFull, busy)
			} else {
				grownPhases, busyGrown = append(grownPhases, ph), max(busyGrown, busy)
			}
		}
	}
	admitFull, admitGrown := bench.Merge(fullPhases), bench.Merge(grownPhases)
	freshAfter, err := tallyOf(fresh)
	must(t, err)
	firstAfter, err := tallyOf(first)
	must(t, err)
	logf("the webhook's own time per decision while measured on the populated cluster (its histogram): fresh process %s; process started empty %s",
		freshAfter.since(freshBefore).timing(), firstAfter.since(firstBefore).timing())
	apiFull := createThroughAPIServer(ctx, c, sample, cfg.scaleScriptPods, "p")
	var p1, e1 webhookprocess.MemSample
	var errFresh, errFirst error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p1, errFresh = fresh.Settle(ctx, cfg.settleGC) }()
	go func() { defer wg.Done(); e1, errFirst = first.Settle(ctx, cfg.settleGC) }()
	wg.Wait()
	must(t, errFresh)
	must(t, errFirst)
	logf("populated cluster, fresh process: ready after %s; admission (machine %.0f%% busy just before) %s", bench.Secs(readyFull), busyFull, admitFull.Summary().Line())
	logf("  memory: %s", p1)
	logf("process started on the empty cluster, after it grew: admission (machine %.0f%% busy just before) %s", busyGrown, admitGrown.Summary().Line())
	logf("  memory: %s", e1)
	logf("  %d script pods through kube-apiserver: %s", cfg.scaleScriptPods, apiFull)
	tallyFirst, err := tallyOf(first)
	must(t, err)
	tallyFresh, err := tallyOf(fresh)
	must(t, err)
	logf("webhook decisions on script pods, process started empty: %s", tallyFirst)
	logf("webhook decisions on script pods, fresh process on the populated cluster: %s", tallyFresh)

	se, sp := admitEmpty.Summary(), admitFull.Summary()
	for _, s := range []webhookprocess.MemSample{e0, a0, p1, e1} {
		if s.RSS <= 0 || s.RSSAnon <= 0 || s.HeapInuse <= 0 {
			t.Fatalf("implausible resident memory:\n%s", raw.String())
		}
	}
	growth := p1.RSS - e0.RSS
	webhookErrors := tallyFirst.errors() + tallyFresh.errors()
	admitErrors := se.Errors + sp.Errors + admitGrown.Errors
	m := fmt.Sprintf("scale: %d agents, %d unrelated pods, %d kwok nodes", len(agents), cfg.scalePods, cfg.scaleNodes)
	Save(t, bench.Result{Order: 20, Name: "scale", Title: "20. Scale: the webhook on a large cluster vs an empty one",
		Config: fmt.Sprintf("Promise: the webhook's memory does not grow with the cluster: it caches only Tentacle pods, the agent chart's claims, nodes and StorageClasses, trimmed, "+
			"so a large cluster costs at most 5 MiB more resident memory than an empty one, and below 64 MiB in all (issue 6, BENCHMARKS.md figure 4); it admits every script pod correctly there; "+
			"start-up and admission latency are reported against the empty cluster. "+
			"How: %s mode; kube-apiserver, etcd, controller manager and kwok (no scheduler: every pod is created bound to its node); "+
			"%d agents (%s) with their namespace, service accounts, claim, volume and Tentacle pod (the chart's labels, env and volumes, pod-template-hash, "+
			"Running on a kwok node) and %d application pods (~4 KiB each, as a Deployment's with a sidecar, probes and env) spread over %d kwok nodes, all created directly through the API server; "+
			"the empty side is the same cluster before the population: the nodes and the %d agents whose script pods are measured; a third fresh process measures the cluster holding every agent "+
			"but no unrelated pod, to tell the agents' share of the growth from the unrelated pods'. Each side a fresh process of the same binary "+
			"(cmd/workspace-webhook; the production build under make reliability): start to /readyz 200; admission latency of %d AdmissionReviews (those agents' script pods in each style) "+
			"posted over HTTPS on loopback by 4 connections for %s (on the populated cluster the fresh process and the one started empty take turns, ABBA); VmRSS from /proc/<pid>/status after the first GC that follows the last admission and 5 s for the scavenger "+
			"(median of 3 reads); the process started on the empty cluster serves the registered webhook throughout, so %d script pods created through kube-apiserver on each side are checked "+
			"for the workspace and the right pin",
			cfg.mode(), len(agents), shapeCounts(agents), cfg.scalePods, cfg.scaleNodes, len(sample), len(reviews), cfg.scaleAdmission, cfg.scaleScriptPods),
		Figures: []bench.Figure{
			{Measurement: m, Figure: "webhook RSS, fresh process (baseline: fresh process, empty cluster)", Measured: webhookprocess.MiB(p1.RSS), Baseline: webhookprocess.MiB(e0.RSS), Ratio: p1.RSS / e0.RSS,
				Target: "<= +5 MiB and < 64 MiB", Met: bench.Met(growth <= memMaxGrowth && p1.RSS < memMaxTotal && e0.RSS < memMaxTotal)},
			{Measurement: m, Figure: "RSS growth", Measured: fmt.Sprintf("%+.1f MiB", growth/(1<<20)), Target: "<= +5 MiB", Met: bench.Met(growth <= memMaxGrowth)},
			{Measurement: m, Figure: "RSS, process started on the empty cluster, after it grew", Measured: webhookprocess.MiB(e1.RSS), Baseline: webhookprocess.MiB(e0.RSS), Ratio: e1.RSS / e0.RSS,
				Target: "<= +5 MiB", Met: bench.Met(e1.RSS-e0.RSS <= memMaxGrowth)},
			{Measurement: m, Figure: fmt.Sprintf("of the growth: the %d agents (fresh process, agents only vs empty)", len(agents)-len(sample)),
				Measured: fmt.Sprintf("%+.1f MiB (%s with the agents only; %.1f KiB per agent)", (a0.RSS-e0.RSS)/(1<<20), webhookprocess.MiB(a0.RSS), (a0.RSS-e0.RSS)/1024/float64(len(agents)-len(sample)))},
			{Measurement: m, Figure: fmt.Sprintf("of the growth: the %d unrelated pods (populated vs agents only)", cfg.scalePods),
				Measured: fmt.Sprintf("%+.1f MiB", (p1.RSS-a0.RSS)/(1<<20))},
			{Measurement: m, Figure: "of which anonymous (RssAnon) / Go heap in use / live heap after GC", Measured: fmt.Sprintf("%s / %s / %.0f MB", webhookprocess.MiB(p1.RSSAnon), webhookprocess.MiB(p1.HeapInuse), p1.GC.LiveMB),
				Baseline: fmt.Sprintf("%s / %s / %.0f MB", webhookprocess.MiB(e0.RSSAnon), webhookprocess.MiB(e0.HeapInuse), e0.GC.LiveMB)},
			{Measurement: m, Figure: "start to /readyz 200 (caches synced)", Measured: bench.Secs(readyFull), Baseline: bench.Secs(readyEmpty), Ratio: readyFull.Seconds() / readyEmpty.Seconds()},
			{Measurement: m, Figure: "start to /readyz 200, agents only (no unrelated pods)", Measured: bench.Secs(readyAgents), Baseline: bench.Secs(readyEmpty), Ratio: readyAgents.Seconds() / readyEmpty.Seconds()},
			{Measurement: m, Figure: "admission p99, HTTPS, 4 connections (machine busy just before)", Measured: fmt.Sprintf("%s (%.0f%%)", bench.Ms(sp.P99), busyFull),
				Baseline: fmt.Sprintf("%s (%.0f%%)", bench.Ms(se.P99), busyEmpty), Ratio: ratio(sp.P99, se.P99)},
			{Measurement: m, Figure: "admission p50 / requests per second", Measured: fmt.Sprintf("%s / %.0f /s", bench.Ms(sp.P50), sp.RequestsPerSecond), Baseline: fmt.Sprintf("%s / %.0f /s", bench.Ms(se.P50), se.RequestsPerSecond), Ratio: ratio(sp.P50, se.P50)},
			{Measurement: m, Figure: "admission p50 / p99, process started on the empty cluster, after it grew (taking turns with the fresh one)", Measured: fmt.Sprintf("%s / %s", bench.Ms(admitGrown.Summary().P50), bench.Ms(admitGrown.Summary().P99)),
				Baseline: fmt.Sprintf("%s / %s", bench.Ms(se.P50), bench.Ms(se.P99))},
			{Measurement: m, Figure: "admission errors (client) / webhook errors (refusals, InternalError, non-200)", Measured: fmt.Sprintf("%d / %.0f", admitErrors, webhookErrors), Target: "0 / 0",
				Met: bench.Met(admitErrors == 0 && webhookErrors == 0)},
			{Measurement: m, Figure: "script pods through kube-apiserver with the workspace and the right pin", Measured: fmt.Sprintf("%d of %d", apiFull.good, cfg.scaleScriptPods),
				Baseline: fmt.Sprintf("%d of %d", apiEmpty.good, cfg.scaleScriptPods), Target: "all", Met: bench.Met(apiFull.good == cfg.scaleScriptPods && apiEmpty.good == cfg.scaleScriptPods)},
			{Measurement: m, Figure: "create latency through kube-apiserver p50 / p99 (context: the API server holds the population too)", Measured: fmt.Sprintf("%s / %s", bench.Ms(apiFull.sum.P50), bench.Ms(apiFull.sum.P99)),
				Baseline: fmt.Sprintf("%s / %s", bench.Ms(apiEmpty.sum.P50), bench.Ms(apiEmpty.sum.P99))},
			{Measurement: m, Figure: "population created / all Running (kwok)", Measured: fmt.Sprintf("%s (%.0f pods/s) / %s later", bench.Secs(created), float64(cfg.scalePods)/created.Seconds(), bench.Secs(running))},
		},
		Raw: raw.String(),
	})
	if admitErrors > 0 || webhookErrors > 0 || se.P50 <= 0 || sp.P50 <= 0 {
		t.Fatalf("admission failed or measured nothing: empty %s; populated %s; errors %v %v\n%s", se.Line(), sp.Line(), se.ErrorExamples, sp.ErrorExamples, raw.String())
	}
	if apiFull.good != cfg.scaleScriptPods || apiEmpty.good != cfg.scaleScriptPods {
		t.Fatalf("script pods through kube-apiserver: empty %s; populated %s\n%s", apiEmpty, apiFull, raw.String())
	}
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// sampleReviews are the AdmissionReviews (not dry-run: as kube-apiserver sends a create) of
// each sample agent's script pods in its own style, raw-script and from a template.
func sampleReviews(t testing.TB, sample []fleetAgent) [][]byte {
	var out [][]byte
	for i, f := range sample {
		for j, style := range []tentacle.Style{f.agent.NormalStyle(), tentacle.StyleRawScript, tentacle.StyleTemplate} {
			pod := f.agent.ScriptPod(fmt.Sprintf("s%04d%d", i, j), style)
			pod.APIVersion, pod.Kind = "v1", "Pod"
			b, err := json.Marshal(pod)
			must(t, err)
			out = append(out, webhookprocess.AdmissionReview(b, f.agent.Namespace, pod.Name, false))
		}
	}
	return out
}

// admits is what every answer must say: admitted, with a patch.
var admits = [][]byte{[]byte(`"allowed":true`), []byte(`"patch":`)}

// waitQuiet waits until the machine is at most busy percent busy over 5 s, or at most
// timeout (other work may keep it busy: the figures then say how busy it was), and returns
// the last reading.
func waitQuiet(ctx context.Context, busy float64, timeout time.Duration) float64 {
	deadline := time.Now().Add(timeout)
	for {
		b := bench.BusyPercent(5 * time.Second)
		if b <= busy || time.Now().After(deadline) || ctx.Err() != nil {
			return b
		}
	}
}

// warmUp has p answer every review once: connections, caches and the live-read paths warm.
func warmUp(ctx context.Context, t testing.TB, p *webhookprocess.Process, reviews [][]byte) {
	t.Helper()
	rc := webhookprocess.NewReviewClient(p.Pool, 1)
	defer rc.Close()
	for _, r := range reviews {
		must(t, rc.Post(ctx, "https://"+p.Addr+app.MutatePodPath, r, admits...))
	}
}

// measureAdmission keeps 4 connections busy posting the reviews to p for d; each answer must
// admit with a patch. It also says how busy the machine was in the second before (other work
// skews latency).
func measureAdmission(ctx context.Context, p *webhookprocess.Process, reviews [][]byte, d time.Duration) (bench.Phase, float64) {
	rc := webhookprocess.NewReviewClient(p.Pool, 4)
	defer rc.Close()
	url := "https://" + p.Addr + app.MutatePodPath
	busy := bench.BusyPercent(time.Second)
	return bench.RunPhase(ctx, 4, d, func(ctx context.Context, worker, seq int) error {
		return rc.Post(ctx, url, reviews[(seq*4+worker)%len(reviews)], admits...)
	}), busy
}

// apiCheck is what became of script pods created through kube-apiserver.
type apiCheck struct {
	sum   bench.Summary
	good  int
	wrong []string
}

func (a apiCheck) String() string {
	s := fmt.Sprintf("%d admitted with the workspace and the right pin; %s", a.good, a.sum.Line())
	for i, w := range append(a.sum.ErrorExamples, a.wrong...) {
		if i == 5 {
			break
		}
		s += "\n    " + w
	}
	return s
}

// createThroughAPIServer creates n script pods of the sample agents (4 creators) and checks
// what admission made of each.
func createThroughAPIServer(ctx context.Context, c client.Client, sample []fleetAgent, n int, prefix string) apiCheck {
	pods := make([]*corev1.Pod, n)
	owner := make([]fleetAgent, n)
	for k := range pods {
		owner[k] = sample[k%len(sample)]
		pods[k] = owner[k].agent.ScriptPod(fmt.Sprintf("%s%05d", prefix, k), scriptStyle(owner[k].agent, k))
	}
	took, phase := createConcurrently(ctx, c, pods, 4)
	out := apiCheck{sum: phase.Summary()}
	for k := range pods {
		if took[k] == 0 {
			continue
		}
		if err := checkScriptPod(pods[k], owner[k]); err != nil {
			out.wrong = append(out.wrong, err.Error())
			continue
		}
		out.good++
	}
	return out
}

// seedAgents seeds each agent (bench.SeedAgent: namespace, workspace, Tentacle pod bound to
// its node), 16 at a time.
func seedAgents(ctx context.Context, c client.Client, agents []fleetAgent) error {
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, f := range agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := bench.SeedAgent(ctx, c, f.agent, f.node)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = fmt.Errorf("seeding %s: %w", f, err)
			}
		}()
	}
	wg.Wait()
	return first
}

// fromWatchCache lists from the API server's watch cache (resourceVersion 0): polling a large
// cluster stays cheap, and a stale answer only means one more poll.
var fromWatchCache = &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}

// waitTentaclesRunning waits until want seeded Tentacle pods run (kwok).
func waitTentaclesRunning(ctx context.Context, c client.Client, want int) error {
	return poll(ctx, fmt.Sprintf("%d Tentacle pods running", want), time.Second, 10*time.Minute, func() (bool, string, error) {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.MatchingLabels{"pod-template-hash": "6d5f7b9c4", "app.kubernetes.io/managed-by": "Helm"},
			client.MatchingFields{"status.phase": string(corev1.PodRunning)}, fromWatchCache); err != nil {
			return false, "", err
		}
		return len(pods.Items) >= want, fmt.Sprintf("%d of %d running", len(pods.Items), want), nil
	})
}

// createUnrelatedPods creates the application pods (bench.UnrelatedPod) in their namespaces,
// bound to the kwok nodes round robin, from 32 creators. They name no owner: the garbage
// collector would delete pods whose ReplicaSet does not exist.
func createUnrelatedPods(ctx context.Context, cp *controlplane.ControlPlane, c client.Client, n, nodes int) error {
	for i := range bench.UnrelatedNamespaces {
		if _, err := cp.CreateNamespace(ctx, bench.UnrelatedNamespace(i)); err != nil { // waits for its default ServiceAccount
			return err
		}
	}
	return bench.CreateAll(ctx, c, n, 32, func(i int) client.Object {
		p := bench.UnrelatedPod(i)
		p.OwnerReferences = nil
		p.Spec.NodeName = fmt.Sprintf("node-%d", i%nodes+1)
		return p
	})
}

// waitNonePending waits until kwok has run every pod (none Pending).
func waitNonePending(ctx context.Context, c client.Client) error {
	return poll(ctx, "every pod Running", 5*time.Second, 30*time.Minute, func() (bool, string, error) {
		var pending metav1.PartialObjectMetadataList
		pending.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
		if err := c.List(ctx, &pending, client.MatchingFields{"status.phase": string(corev1.PodPending)}, fromWatchCache); err != nil {
			return false, "", err
		}
		return len(pending.Items) == 0, fmt.Sprintf("%d pods Pending", len(pending.Items)), nil
	})
}
