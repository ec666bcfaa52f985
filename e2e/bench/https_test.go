package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

// HTTPS targets (the issue): p99 within 1.5x and throughput at least 70% of the no-op
// handler on the same server stack, zero errors.
const (
	httpsMaxP99Ratio     = 1.5
	httpsMinThroughputOf = 0.70
)

// TestHTTPS drives the real webhook server (app.NewManager: TLS 1.3, HTTP/1.1, the
// manager's webhook server and mux) over HTTPS on loopback at a fixed concurrency, the
// mutating webhook and the no-op handler registered on the same server alternating
// (ABBA...) so drift on a noisy machine cancels. The load generator is this test binary:
// it shares the machine's cores with the server, as the API server would.
func TestHTTPS(t *testing.T) {
	w := inProcessWebhook(t)
	ctx := ctxFor(t, 10*time.Minute)
	client := webhookprocess.NewReviewClient(w.pool, cfg.httpsConcurrency)
	defer client.Close()
	type kind struct {
		name, url string
		want      [][]byte
		phases    []Phase
	}
	kinds := []*kind{
		{name: "webhook " + app.MutatePodPath, url: "https://" + w.addr + app.MutatePodPath,
			want: [][]byte{[]byte(`"allowed":true`), []byte(`"patch":`)}},
		{name: "no-op " + noopPath, url: "https://" + w.addr + noopPath, want: [][]byte{[]byte(`"allowed":true`)}},
	}
	drive := func(k *kind, d time.Duration) Phase {
		return RunPhase(ctx, cfg.httpsConcurrency, d, func(ctx context.Context, _, _ int) error {
			return client.Post(ctx, k.url, w.mutateBody, k.want...)
		})
	}
	for _, k := range kinds { // warm-up: connections, caches, JIT-free but allocator-warm
		if p := drive(k, cfg.httpsWarmup); p.Errors > 0 {
			t.Fatalf("warm-up of %s: %d errors, e.g. %v", k.name, p.Errors, p.Examples)
		}
	}
	var raw strings.Builder
	for r := range cfg.httpsRounds {
		order := []*kind{kinds[0], kinds[1]}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, k := range order {
			p := drive(k, cfg.httpsPhase)
			k.phases = append(k.phases, p)
			fmt.Fprintf(&raw, "round %d %-28s %s\n", r+1, k.name, p.Summary().Line())
		}
	}
	hook, base := Merge(kinds[0].phases).Summary(), Merge(kinds[1].phases).Summary()
	fmt.Fprintf(&raw, "\npooled %-27s %s\npooled %-27s %s\n", kinds[0].name, hook.Line(), kinds[1].name, base.Line())
	for _, s := range []Summary{hook, base} {
		if s.N == 0 || s.P50 <= 0 || s.Errors > 0 {
			t.Fatalf("no sane measurement: %s; errors: %v\n%s", s.Line(), s.ErrorExamples, raw.String())
		}
	}
	m := fmt.Sprintf("2. HTTPS loopback, %d connections", cfg.httpsConcurrency)
	p99 := ratio(hook.P99, base.P99)
	tput := hook.RequestsPerSecond / base.RequestsPerSecond
	save(t, Result{Order: 2, Name: "https", Title: "2. HTTPS on loopback: the webhook server vs the same server with a no-op handler",
		Config: fmt.Sprintf("%s mode; %d concurrent keep-alive HTTP/1.1 connections (TLS 1.3, ECDSA P-256), %d rounds x %s per handler, alternating ABBA, after %s warm-up each; "+
			"same AdmissionReview (Tentacle v3 script pod, %d bytes); load generator in the same process as the server", cfg.mode(), cfg.httpsConcurrency, cfg.httpsRounds, cfg.httpsPhase, cfg.httpsWarmup, len(w.mutateBody)),
		Figures: []Figure{
			{Measurement: m, Figure: "p99 latency", Measured: Ms(hook.P99), Baseline: Ms(base.P99), Ratio: p99, Target: fmt.Sprintf("<= %.1fx", httpsMaxP99Ratio), Met: Met(p99 <= httpsMaxP99Ratio)},
			{Measurement: m, Figure: "throughput", Measured: fmt.Sprintf("%.0f req/s", hook.RequestsPerSecond), Baseline: fmt.Sprintf("%.0f req/s", base.RequestsPerSecond),
				Ratio: tput, Target: fmt.Sprintf(">= %.2fx", httpsMinThroughputOf), Met: Met(tput >= httpsMinThroughputOf)},
			{Measurement: m, Figure: "p50 latency", Measured: Ms(hook.P50), Baseline: Ms(base.P50), Ratio: ratio(hook.P50, base.P50)},
			{Measurement: m, Figure: "p99.9 latency", Measured: Ms(hook.P999), Baseline: Ms(base.P999), Ratio: ratio(hook.P999, base.P999)},
			{Measurement: m, Figure: "errors", Measured: fmt.Sprint(hook.Errors), Baseline: fmt.Sprint(base.Errors), Target: "0", Met: Met(hook.Errors == 0 && base.Errors == 0)},
		},
		Raw: raw.String(),
	})
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
