package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

// Memory targets (the issue): at most 5 MiB more resident memory on the populated cluster
// than on an empty one, and below 64 MiB in all.
const (
	memMaxGrowth = 5 << 20
	memMaxTotal  = 64 << 20
)

// TestMemory runs cmd/workspace-webhook as its own process (GODEBUG=gctrace=1) against a
// kube-apiserver of its own, first empty, then holding unrelated pods, claims, volumes and
// VolumeAttachments plus agents, and compares VmRSS (/proc/<pid>/status) after a GC has
// settled: a process started on the empty cluster vs one started on the populated cluster
// (the headline), and the first process again once the cluster grew under it. Both answer
// the same admission reviews before measuring (dry-run, so no Events are written).
func TestMemory(t *testing.T) {
	requireBinaries(t)
	ctx := ctxFor(t, 40*time.Minute)
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	must(t, err)
	t.Cleanup(func() { _ = cp.Stop() }) // after the webhook processes: they hold watches
	c, err := fastClient(cp.Config)
	must(t, err)
	var raw strings.Builder
	logf := func(format string, a ...any) {
		fmt.Fprintf(&raw, format+"\n", a...)
		t.Logf(format, a...)
	}

	reviews := agentReviews(cfg.memAgents)
	empty := startWebhookProcess(t, processOptions{kubeconfig: cp.KubeconfigPath, gctrace: true})
	readyEmpty, err := empty.waitReady(ctx, time.Minute)
	must(t, err)
	must(t, exercise(ctx, empty, reviews, false))
	e0, err := settle(ctx, empty)
	must(t, err)
	logf("empty cluster, fresh process: ready after %s; %s", Secs(readyEmpty), e0)

	began := time.Now()
	must(t, populate(ctx, c, cfg.memAgents, cfg.memPods, cfg.memClaims))
	logf("populated in %s: %d agents (namespace, volume, claim, Running Tentacle pod), %d unrelated pods, %d unrelated claims + volumes + VolumeAttachments",
		time.Since(began).Round(time.Second), cfg.memAgents, cfg.memPods, cfg.memClaims)

	full := startWebhookProcess(t, processOptions{kubeconfig: cp.KubeconfigPath, gctrace: true})
	readyFull, err := full.waitReady(ctx, time.Minute)
	must(t, err)
	var wg sync.WaitGroup
	var p1, e1 memSample
	var errFull, errEmpty error
	wg.Add(2)
	go func() {
		defer wg.Done()
		if errFull = exercise(ctx, full, reviews, true); errFull == nil {
			p1, errFull = settle(ctx, full)
		}
	}()
	go func() {
		defer wg.Done()
		if errEmpty = exercise(ctx, empty, reviews, true); errEmpty == nil {
			e1, errEmpty = settle(ctx, empty)
		}
	}()
	wg.Wait()
	must(t, firstErr(errFull, errEmpty))
	logf("populated cluster, fresh process: ready after %s; %s", Secs(readyFull), p1)
	logf("first process, after the cluster grew under it: %s", e1)
	for _, s := range []memSample{e0, p1, e1} {
		if s.rss <= 0 || s.rssAnon <= 0 || s.heapInuse <= 0 {
			t.Fatalf("implausible resident memory:\n%s", raw.String())
		}
	}

	growth := p1.rss - e0.rss
	m := fmt.Sprintf("4. memory (%s)", popDescription())
	save(t, Result{Order: 4, Name: "memory", Title: "4. Memory: resident memory of the webhook process, populated vs empty cluster",
		Config: fmt.Sprintf("%s mode; cmd/workspace-webhook (production build) as a process, VmRSS/RssAnon/RssFile from /proc/<pid>/status (median of 3 reads) after the first GC that follows "+
			"the last admission (the runtime forces one within 2 minutes when idle), then 5 s for the scavenger; live heap from GODEBUG=gctrace=1, Go heap from its metrics endpoint; "+
			"%d admission reviews (mutate, dry-run) answered before measuring", cfg.mode(), len(reviews)),
		Figures: []Figure{
			{Measurement: m, Figure: "RSS, fresh process (baseline: fresh process, empty cluster)", Measured: MiB(p1.rss), Baseline: MiB(e0.rss), Ratio: p1.rss / e0.rss,
				Target: "<= +5 MiB and < 64 MiB", Met: Met(growth <= memMaxGrowth && p1.rss < memMaxTotal && e0.rss < memMaxTotal)},
			{Measurement: m, Figure: "RSS growth", Measured: signedMiB(growth), Target: "<= +5 MiB", Met: Met(growth <= memMaxGrowth)},
			{Measurement: m, Figure: "RSS, process started on the empty cluster, after it grew", Measured: MiB(e1.rss), Baseline: MiB(e0.rss), Ratio: e1.rss / e0.rss,
				Target: "<= +5 MiB", Met: Met(e1.rss-e0.rss <= memMaxGrowth)},
			{Measurement: m, Figure: "of which anonymous (RssAnon: heap, stacks)", Measured: MiB(p1.rssAnon), Baseline: MiB(e0.rssAnon), Ratio: p1.rssAnon / e0.rssAnon},
			{Measurement: m, Figure: "Go heap in use / live heap after GC", Measured: fmt.Sprintf("%s / %.0f MB", MiB(p1.heapInuse), p1.gc.liveMB), Baseline: fmt.Sprintf("%s / %.0f MB", MiB(e0.heapInuse), e0.gc.liveMB)},
			{Measurement: m, Figure: "start to /readyz", Measured: Secs(readyFull), Baseline: Secs(readyEmpty), Ratio: readyFull.Seconds() / readyEmpty.Seconds()},
		},
		Raw: raw.String(),
	})
}

func popDescription() string {
	return fmt.Sprintf("%d pods, %d claims+volumes+attachments, %d agents", cfg.memPods, cfg.memClaims, cfg.memAgents)
}

func signedMiB(b float64) string { return fmt.Sprintf("%+.1f MiB", b/(1<<20)) }

// agentReviews are dry-run reviews of one script pod per agent (octopus-agent-000...).
func agentReviews(agents int) [][]byte {
	var out [][]byte
	for i := range agents {
		a := populationAgent(i)
		pod := a.ScriptPod(fmt.Sprintf("a%011d", i), a.NormalStyle())
		pod.APIVersion, pod.Kind = "v1", "Pod"
		b, err := json.Marshal(pod)
		if err != nil {
			panic(err)
		}
		out = append(out, review(b, a.Namespace, pod.Name, true))
	}
	return out
}

// exercise has p answer every review; populated says whether the agents exist (mutated)
// or not (denied: no agent).
func exercise(ctx context.Context, p *webhookProcess, reviews [][]byte, populated bool) error {
	c := newReviewClient(p.pool, 4)
	defer c.close()
	want := []byte(`"reason":"Forbidden"`)
	if populated {
		want = []byte(`"patch":`)
	}
	for _, r := range reviews {
		if err := c.post(ctx, "https://"+p.Addr+app.MutatePodPath, r, want); err != nil {
			return err
		}
	}
	return nil
}

// memSample is the process's memory once settled.
type memSample struct {
	rss, rssAnon, rssFile float64 // /proc/<pid>/status: resident, of which anonymous (heap, stacks) and file-backed (the binary's pages)
	heapInuse, heapFree   float64 // Go heap spans in use; free spans not yet returned to the OS (idle - released)
	stacks                float64
	gc                    gcRecord
	waited                time.Duration
}

func (s memSample) String() string {
	return fmt.Sprintf("VmRSS %s (RssAnon %s, RssFile %s); Go heap in use %s, free not returned %s, stacks %s; last GC #%d at %.1fs (waited %s): live heap %.0f MB, goal %.0f MB",
		MiB(s.rss), MiB(s.rssAnon), MiB(s.rssFile), MiB(s.heapInuse), MiB(s.heapFree), MiB(s.stacks), s.gc.n, s.gc.at.Seconds(), s.waited.Round(time.Second), s.gc.liveMB, s.gc.goalMB)
}

// settle waits (full mode) for the first GC after now, lets the scavenger return freed pages
// for 5 s, then reads /proc/<pid>/status three times a second apart and keeps the medians.
func settle(ctx context.Context, p *webhookProcess) (memSample, error) {
	var s memSample
	since := time.Since(p.Started)
	began := time.Now()
	if cfg.memWaitGC {
		for {
			if gcs := p.gcs(); len(gcs) > 0 && gcs[len(gcs)-1].at > since {
				break
			}
			if time.Since(began) > 150*time.Second {
				return s, fmt.Errorf("no GC within 150 s (gctrace in %s)", p.LogPath)
			}
			select {
			case <-ctx.Done():
				return s, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		time.Sleep(5 * time.Second)
	}
	s.waited = time.Since(began)
	var rss, anon, file []float64
	for i := range map[bool]int{true: 3, false: 1}[cfg.full] {
		if i > 0 {
			time.Sleep(time.Second)
		}
		st, err := p.memStatus()
		if err != nil {
			return s, err
		}
		rss, anon, file = append(rss, st["VmRSS"]), append(anon, st["RssAnon"]), append(file, st["RssFile"])
	}
	s.rss, s.rssAnon, s.rssFile = Median(rss), Median(anon), Median(file)
	if gcs := p.gcs(); len(gcs) > 0 {
		s.gc = gcs[len(gcs)-1]
	}
	page, err := p.MetricsText()
	if err != nil {
		return s, err
	}
	vals := map[string]float64{}
	for _, name := range []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes"} {
		if vals[name], err = seriesValue(page, name); err != nil {
			return s, err
		}
	}
	s.heapInuse, s.stacks = vals["go_memstats_heap_inuse_bytes"], vals["go_memstats_stack_inuse_bytes"]
	s.heapFree = vals["go_memstats_heap_idle_bytes"] - vals["go_memstats_heap_released_bytes"]
	return s, nil
}
