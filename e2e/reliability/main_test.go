package reliability

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
)

// config sizes every scenario. smoke (the default, run by `go test ./...`) runs each one small
// and asserts correctness and sane numbers, never timings; full (RELIABILITY_FULL=1, set by
// run.sh) is the scenario the issue asks for and RELIABILITY.md reports.
type config struct {
	full bool
	out  string // RELIABILITY_OUT: where results (Save) and the webhook logs (logPath) go ("": nowhere)

	// Burst: script pods created at once through kube-apiserver.
	burstPods, burstAgents, burstNodes, burstCreators int

	// Scale: agents and unrelated pods on kwok nodes.
	scaleAgents, scalePods, scaleNodes int
	scaleSample                        int           // agents whose script pods are measured, present on both sides
	scaleAdmission                     time.Duration // direct HTTPS admission load per process
	scaleScriptPods                    int           // script pods created through kube-apiserver per side
	settleGC                           bool          // wait for a GC before reading RSS (as figure 4)
}

var cfg = loadConfig()

func loadConfig() config {
	c := config{
		burstPods: 200, burstAgents: 4, burstNodes: 3, burstCreators: 8,
		scaleAgents: 50, scalePods: 1_000, scaleNodes: 10, scaleSample: 8, scaleAdmission: time.Second, scaleScriptPods: 16,
	}
	if os.Getenv("RELIABILITY_FULL") == "1" {
		c = config{full: true,
			burstPods: 5_000, burstAgents: 20, burstNodes: 10, burstCreators: 50,
			scaleAgents: 1_000, scalePods: 50_000, scaleNodes: 100, scaleSample: 16, scaleAdmission: 10 * time.Second, scaleScriptPods: 200,
			settleGC: true,
		}
	}
	// A machine that cannot hold 50,000 pods in reasonable time measures fewer, and says so.
	if n, err := strconv.Atoi(os.Getenv("RELIABILITY_SCALE_PODS")); err == nil && n > 0 {
		c.scalePods = n
	}
	c.out = os.Getenv("RELIABILITY_OUT")
	return c
}

func (c config) mode() string {
	if c.full {
		return "full"
	}
	return "smoke"
}

// logPath is where a webhook process of the run logs: kept in RELIABILITY_OUT when set (a
// full run's webhook logs explain its figures), else in the test's temporary directory.
func logPath(name string) string {
	if cfg.out == "" {
		return ""
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return ""
	}
	return filepath.Join(cfg.out, name+".webhook.log")
}

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard()) // envtest's installer logs through controller-runtime; the webhook logs in its own process
	code := m.Run()
	webhookprocess.RemoveBuilt()
	os.Exit(code)
}

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
