package bench

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
)

var built struct {
	once sync.Once
	path string
	err  error
}

// webhookBinary is cmd/workspace-webhook: $BENCH_WEBHOOK_BIN (run.sh passes the production
// build, `make build`), else built once per test binary with the cached default flags.
func webhookBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BENCH_WEBHOOK_BIN"); p != "" {
		return p
	}
	built.once.Do(func() {
		root, err := controlplane.RepoRoot()
		if err != nil {
			built.err = err
			return
		}
		dir, err := os.MkdirTemp("", "bench-bin-")
		if err != nil {
			built.err = err
			return
		}
		atExit(func() { _ = os.RemoveAll(dir) })
		built.path = filepath.Join(dir, "workspace-webhook")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/workspace-webhook")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/workspace-webhook: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// webhookProcess is cmd/workspace-webhook running as its own process on loopback.
type webhookProcess struct {
	cmd                  *exec.Cmd
	started              time.Time // just before fork/exec
	addr, probe, metrics string
	pool                 *x509.CertPool
	logPath              string
	done                 chan struct{}
	waitErr              error
	stopOnce             sync.Once
}

type processOptions struct {
	kubeconfig string
	certDir    string         // "" generates one
	pool       *x509.CertPool // trusts certDir's certificate (when certDir is given)
	host       string         // default 127.0.0.1
	port       int            // 0 picks a free one
	gctrace    bool           // GODEBUG=gctrace=1: one line per GC with the live heap
}

// startWebhookProcess runs the binary with --kubeconfig and a cert dir; it is stopped (by
// its pid only) when the test ends.
func startWebhookProcess(t testing.TB, o processOptions) *webhookProcess {
	t.Helper()
	bin := webhookBinary(t)
	dir := t.TempDir()
	p := &webhookProcess{logPath: filepath.Join(dir, "webhook.log"), done: make(chan struct{}), pool: o.pool}
	if o.certDir == "" {
		o.certDir = filepath.Join(dir, "certs")
		p.pool = writeServingCerts(t, o.certDir)
	}
	if o.host == "" {
		o.host = "127.0.0.1"
	}
	if o.port == 0 {
		_, o.port = freeAddr(t)
	}
	p.addr = fmt.Sprintf("%s:%d", o.host, o.port)
	p.probe, _ = freeAddr(t)
	p.metrics, _ = freeAddr(t)
	logFile, err := os.Create(p.logPath)
	must(t, err)
	p.cmd = exec.Command(bin, "--kubeconfig="+o.kubeconfig, "--host="+o.host, "--port="+strconv.Itoa(o.port), "--cert-dir="+o.certDir,
		"--metrics-bind-address="+p.metrics, "--health-probe-bind-address="+p.probe, "--namespace=octopus-workspace-webhook")
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.Env = append(os.Environ(), "KUBECONFIG=")
	if o.gctrace {
		p.cmd.Env = append(p.cmd.Env, "GODEBUG=gctrace=1")
	}
	p.cmd.SysProcAttr = childAttr()
	p.started = time.Now()
	must(t, p.cmd.Start())
	go func() { p.waitErr = p.cmd.Wait(); _ = logFile.Close(); close(p.done) }()
	t.Cleanup(func() {
		began := time.Now()
		p.stop()
		if d := time.Since(began); d > time.Second {
			t.Logf("webhook process took %s to stop", d.Round(time.Millisecond))
		}
		if t.Failed() {
			t.Logf("webhook log (%s):\n%s", p.logPath, tail(p.logPath, 30))
		}
	})
	return p
}

// stop sends SIGTERM to this process (its pid only) and SIGKILL after 10 s.
func (p *webhookProcess) stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func (p *webhookProcess) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("webhook process exited: %v\n%s", p.waitErr, tail(p.logPath, 20))
	default:
		return nil
	}
}

// waitReady returns how long after start /readyz first answered 200 (see firstOK).
func (p *webhookProcess) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	d, err := p.firstOK(ctx, timeout, func(ctx context.Context) bool { return getOK(ctx, c, "http://"+p.probe+"/readyz") })
	if err != nil {
		return 0, fmt.Errorf("/readyz: %w", err)
	}
	return d, nil
}

// firstOK starts attempt every 5 ms, without waiting for the previous one, and returns how
// long after the process started the first attempt succeeded. Not waiting matters: before the
// informer caches sync, a readiness probe or an admission is parked until client-go's next
// 100 ms sync poll, so one sent just before the sync answers late while one sent just after
// answers at once. At most timeout/5ms attempts, all on loopback.
func (p *webhookProcess) firstOK(ctx context.Context, timeout time.Duration, attempt func(context.Context) bool) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok := make(chan time.Duration, 1)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := p.exited(); err != nil {
			return 0, err
		}
		go func() {
			if attempt(ctx) {
				select {
				case ok <- time.Since(p.started):
				default:
				}
			}
		}()
		select {
		case d := <-ok:
			return d, nil
		case <-ctx.Done():
			return 0, fmt.Errorf("no success after %s: %w\n%s", timeout, ctx.Err(), tail(p.logPath, 20))
		case <-tick.C:
		}
	}
}

func getOK(ctx context.Context, c *http.Client, url string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
