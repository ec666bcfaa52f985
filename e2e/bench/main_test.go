package bench

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
)

// config sizes every measurement. smoke (the default, run by `go test ./...`) runs each one
// briefly and asserts only sane output; full (BENCH_FULL=1, set by run.sh) is the benchmark.
type config struct {
	full bool
	out  string // BENCH_OUT: where results are saved ("": only logged)

	// 2. HTTPS on loopback
	httpsConcurrency int
	httpsRounds      int // each round runs both handlers, order alternating (ABBA)
	httpsPhase       time.Duration
	httpsWarmup      time.Duration

	// 3. through kube-apiserver
	apiLoads  []apiLoad
	apiRounds int
	apiPhase  time.Duration

	// 4. memory
	memPods, memClaims, memAgents int
	memWaitGC                     bool // wait for a forced GC (2 min idle) before reading RSS

	// 5. start-up
	startupRuns int
}

var cfg = loadConfig()

func loadConfig() config {
	c := sizes()
	c.out = os.Getenv("BENCH_OUT")
	return c
}

func sizes() config {
	if os.Getenv("BENCH_FULL") == "1" {
		return config{full: true,
			httpsConcurrency: 16, httpsRounds: 6, httpsPhase: 5 * time.Second, httpsWarmup: 2 * time.Second,
			apiLoads: []apiLoad{{creators: 16}, {creators: 1}, {rate: 20, creators: 64}}, apiRounds: 3, apiPhase: 8 * time.Second,
			memPods: 10_000, memClaims: 10_000, memAgents: 100, memWaitGC: true,
			startupRuns: 7,
		}
	}
	return config{
		httpsConcurrency: 4, httpsRounds: 1, httpsPhase: 300 * time.Millisecond, httpsWarmup: 100 * time.Millisecond,
		apiLoads: []apiLoad{{creators: 4}, {rate: 20, creators: 16}}, apiRounds: 1, apiPhase: time.Second,
		memPods: 100, memClaims: 50, memAgents: 3,
		startupRuns: 1,
	}
}

func (c config) mode() string {
	if c.full {
		return "full"
	}
	return "smoke"
}

// save writes r for the report when BENCH_OUT is set; a smoke run only logs it.
func save(t testing.TB, r Result) {
	t.Helper()
	for _, f := range r.Figures {
		t.Logf("%s | %s: %s (baseline %s, ratio %.2f) target %s", f.Measurement, f.Figure, f.Measured, f.Baseline, f.Ratio, f.Target)
	}
	if cfg.out == "" {
		return
	}
	if err := r.Save(cfg.out); err != nil {
		t.Fatal(err)
	}
}

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// atExit runs f when the test binary ends (shared control planes, in-process webhooks).
func atExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

func TestMain(m *testing.M) {
	// As the binary does (cmd/workspace-webhook): JSON production logging, here discarded.
	ctrl.SetLogger(discardLogger())
	code := m.Run()
	webhookprocess.RemoveBuilt()
	cleanupMu.Lock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanupMu.Unlock()
	os.Exit(code)
}

// discardLogger is the binary's logger (zap, production JSON encoder, Info) writing nowhere:
// every log line is still built and encoded, only the write(2) is skipped.
func discardLogger() logr.Logger {
	return zap.New(zap.UseFlagOptions(&zap.Options{Development: false}), zap.WriteTo(discard{}))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// requireBinaries skips when the control-plane binaries were never built, except under CI.
func requireBinaries(t testing.TB) {
	t.Helper()
	if _, err := controlplane.FindBinaries(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
}

var shared struct {
	once sync.Once
	cp   *controlplane.ControlPlane
	err  error
}

// apiserverOnly is a kube-apiserver and etcd shared by the tests of this binary that need no
// scheduler or controllers (in-process, HTTPS, start-up). Stopped when the binary ends.
func apiserverOnly(t testing.TB) *controlplane.ControlPlane {
	t.Helper()
	requireBinaries(t)
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.cp, shared.err = controlplane.Start(ctx, controlplane.Options{})
		if shared.err == nil {
			atExit(func() { _ = shared.cp.Stop() })
		}
	})
	if shared.err != nil {
		t.Fatalf("starting kube-apiserver and etcd: %v", shared.err)
	}
	return shared.cp
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
