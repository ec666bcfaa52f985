package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

// TestStartup starts cmd/workspace-webhook as a process against a warm kube-apiserver
// holding one agent, and times, from just before fork/exec: the first /healthz 200 (the
// process is up and serving probes: the floor of any controller-runtime process), the first
// /readyz 200 (certificate served and matching the disk, informer caches synced) and the
// first admission answered with the pin over HTTPS. Each is attempted every 5 ms without
// waiting for the previous attempt (see firstOK).
func TestStartup(t *testing.T) {
	cp := apiserverOnly(t)
	ctx := ctxFor(t, 10*time.Minute)
	a := benchAgent("octopus-agent-startup")
	_, err := seedAgent(ctx, cp.Client, a, "node-1")
	must(t, err)
	pod, err := scriptPodObject(ctx, cp.Client, a, "5e4d3c2b1a0f")
	must(t, err)
	podJSON, err := json.Marshal(pod)
	must(t, err)
	body := admissionReview(podJSON, a.Namespace, pod.Name)
	certDir := t.TempDir()
	pool := webhookprocess.WriteServingCerts(t, certDir)

	var healthy, ready, first []float64
	var raw strings.Builder
	for i := range cfg.startupRuns {
		p := webhookprocess.Start(t, webhookprocess.Options{Kubeconfig: cp.KubeconfigPath, CertDir: certDir, Pool: pool})
		h, r, f, err := timeStartup(ctx, p, body)
		p.Stop()
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		healthy, ready, first = append(healthy, h.Seconds()), append(ready, r.Seconds()), append(first, f.Seconds())
		fmt.Fprintf(&raw, "run %d: /healthz %s, /readyz %s, first admission %s\n", i+1, Secs(h), Secs(r), Secs(f))
	}
	for _, xs := range [][]float64{healthy, ready, first} {
		if Median(xs) <= 0 {
			t.Fatalf("implausible start-up times:\n%s", raw.String())
		}
	}
	span := func(xs []float64) string {
		return fmt.Sprintf("%.3f s (%.3f-%.3f)", Median(xs), slices.Min(xs), slices.Max(xs))
	}
	m := "5. start-up (process)"
	save(t, Result{Order: 5, Name: "startup", Title: "5. Start-up: process start to ready and to first admission answered",
		Config: fmt.Sprintf("%s mode; %d starts of cmd/workspace-webhook (cert dir present) against a warm kube-apiserver with one agent; median (min-max); polled every 5 ms", cfg.mode(), cfg.startupRuns),
		Figures: []Figure{
			{Measurement: m, Figure: "to /readyz 200 (baseline: to /healthz 200)", Measured: span(ready), Baseline: span(healthy), Ratio: Median(ready) / Median(healthy)},
			{Measurement: m, Figure: "to first admission answered (pinned)", Measured: span(first), Baseline: span(healthy), Ratio: Median(first) / Median(healthy)},
		},
		Raw: raw.String(),
	})
}

// timeStartup polls the probes and the mutating webhook concurrently until each answered.
func timeStartup(ctx context.Context, p *webhookprocess.Process, body []byte) (healthy, ready, first time.Duration, err error) {
	var errs [3]error
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		c := &http.Client{Timeout: 2 * time.Second}
		healthy, errs[0] = p.FirstOK(ctx, time.Minute, func(ctx context.Context) bool { return webhookprocess.GetOK(ctx, c, "http://"+p.Probe+"/healthz") })
	}()
	go func() {
		defer wg.Done()
		ready, errs[1] = p.WaitReady(ctx, time.Minute)
	}()
	go func() {
		defer wg.Done()
		c := webhookprocess.NewReviewClient(p.Pool, 32)
		defer c.Close()
		url := "https://" + p.Addr + app.MutatePodPath
		first, errs[2] = p.FirstOK(ctx, time.Minute, func(ctx context.Context) bool { return c.Post(ctx, url, body, []byte(`"patch":`)) == nil })
	}()
	wg.Wait()
	return healthy, ready, first, firstErr(errs[:]...)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
