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
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
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
	c, err := FastClient(cp.Config)
	must(t, err)
	var raw strings.Builder
	logf := func(format string, a ...any) {
		fmt.Fprintf(&raw, format+"\n", a...)
		t.Logf(format, a...)
	}

	reviews := agentReviews(cfg.memAgents)
	empty := webhookprocess.Start(t, webhookprocess.Options{Kubeconfig: cp.KubeconfigPath, GCTrace: true})
	readyEmpty, err := empty.WaitReady(ctx, time.Minute)
	must(t, err)
	must(t, exercise(ctx, empty, reviews, false))
	e0, err := empty.Settle(ctx, cfg.memWaitGC)
	must(t, err)
	logf("empty cluster, fresh process: ready after %s; %s", Secs(readyEmpty), e0)

	began := time.Now()
	must(t, populate(ctx, c, cfg.memAgents, cfg.memPods, cfg.memClaims))
	logf("populated in %s: %d agents (namespace, volume, claim, Running Tentacle pod), %d unrelated pods, %d unrelated claims + volumes + VolumeAttachments",
		time.Since(began).Round(time.Second), cfg.memAgents, cfg.memPods, cfg.memClaims)

	full := webhookprocess.Start(t, webhookprocess.Options{Kubeconfig: cp.KubeconfigPath, GCTrace: true})
	readyFull, err := full.WaitReady(ctx, time.Minute)
	must(t, err)
	var wg sync.WaitGroup
	var p1, e1 webhookprocess.MemSample
	var errFull, errEmpty error
	wg.Add(2)
	go func() {
		defer wg.Done()
		if errFull = exercise(ctx, full, reviews, true); errFull == nil {
			p1, errFull = full.Settle(ctx, cfg.memWaitGC)
		}
	}()
	go func() {
		defer wg.Done()
		if errEmpty = exercise(ctx, empty, reviews, true); errEmpty == nil {
			e1, errEmpty = empty.Settle(ctx, cfg.memWaitGC)
		}
	}()
	wg.Wait()
	must(t, firstErr(errFull, errEmpty))
	logf("populated cluster, fresh process: ready after %s; %s", Secs(readyFull), p1)
	logf("first process, after the cluster grew under it: %s", e1)
	for _, s := range []webhookprocess.MemSample{e0, p1, e1} {
		if s.RSS <= 0 || s.RSSAnon <= 0 || s.HeapInuse <= 0 {
			t.Fatalf("implausible resident memory:\n%s", raw.String())
		}
	}

	growth := p1.RSS - e0.RSS
	m := fmt.Sprintf("4. memory (%s)", popDescription())
	save(t, Result{Order: 4, Name: "memory", Title: "4. Memory: resident memory of the webhook process, populated vs empty cluster",
		Config: fmt.Sprintf("%s mode; cmd/workspace-webhook (production build) as a process, VmRSS/RssAnon/RssFile from /proc/<pid>/status (median of 3 reads) after the first GC that follows "+
			"the last admission (the runtime forces one within 2 minutes when idle), then 5 s for the scavenger; live heap from GODEBUG=gctrace=1, Go heap from its metrics endpoint; "+
			"%d admission reviews (mutate, dry-run) answered before measuring", cfg.mode(), len(reviews)),
		Figures: []Figure{
			{Measurement: m, Figure: "RSS, fresh process (baseline: fresh process, empty cluster)", Measured: MiB(p1.RSS), Baseline: MiB(e0.RSS), Ratio: p1.RSS / e0.RSS,
				Target: "<= +5 MiB and < 64 MiB", Met: Met(growth <= memMaxGrowth && p1.RSS < memMaxTotal && e0.RSS < memMaxTotal)},
			{Measurement: m, Figure: "RSS growth", Measured: signedMiB(growth), Target: "<= +5 MiB", Met: Met(growth <= memMaxGrowth)},
			{Measurement: m, Figure: "RSS, process started on the empty cluster, after it grew", Measured: MiB(e1.RSS), Baseline: MiB(e0.RSS), Ratio: e1.RSS / e0.RSS,
				Target: "<= +5 MiB", Met: Met(e1.RSS-e0.RSS <= memMaxGrowth)},
			{Measurement: m, Figure: "of which anonymous (RssAnon: heap, stacks)", Measured: MiB(p1.RSSAnon), Baseline: MiB(e0.RSSAnon), Ratio: p1.RSSAnon / e0.RSSAnon},
			{Measurement: m, Figure: "Go heap in use / live heap after GC", Measured: fmt.Sprintf("%s / %.0f MB", MiB(p1.HeapInuse), p1.GC.LiveMB), Baseline: fmt.Sprintf("%s / %.0f MB", MiB(e0.HeapInuse), e0.GC.LiveMB)},
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
func exercise(ctx context.Context, p *webhookprocess.Process, reviews [][]byte, populated bool) error {
	c := webhookprocess.NewReviewClient(p.Pool, 4)
	defer c.Close()
	want := []byte(`"reason":"Forbidden"`)
	if populated {
		want = []byte(`"patch":`)
	}
	for _, r := range reviews {
		if err := c.Post(ctx, "https://"+p.Addr+app.MutatePodPath, r, want); err != nil {
			return err
		}
	}
	return nil
}
