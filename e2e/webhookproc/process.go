// Package webhookproc runs cmd/workspace-webhook as its own process on loopback, as a
// Deployment's container runs it, for the tests that need a real process: the benchmarks
// (e2e/bench: memory, start-up, the API server path) and the fault tests (e2e/faults: replicas
// killed with SIGKILL and restarted, the webhook fully down). Every process is stopped by its
// pid only, and the kernel kills it if the test binary dies first (Linux).
package webhookproc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
)

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary is cmd/workspace-webhook: $WEBHOOK_BIN, else $BENCH_WEBHOOK_BIN (make bench passes
// the production build, `make build`), else built once per test binary with the cached
// default flags into a temporary directory that Cleanup removes.
func Binary() (string, error) {
	for _, env := range []string{"WEBHOOK_BIN", "BENCH_WEBHOOK_BIN"} {
		if p := os.Getenv(env); p != "" {
			return p, nil
		}
	}
	built.once.Do(func() {
		root, err := controlplane.RepoRoot()
		if err != nil {
			built.err = err
			return
		}
		if built.dir, err = os.MkdirTemp("", "webhook-bin-"); err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(built.dir, "workspace-webhook")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/workspace-webhook")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/workspace-webhook: %v\n%s", err, out)
		}
	})
	return built.path, built.err
}

// Cleanup removes the binary Binary built, if any; call it once the tests are done (TestMain).
func Cleanup() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}

// Options says how to run the process. Kubeconfig and CertDir (tls.crt, tls.key) are required.
type Options struct {
	Kubeconfig string
	CertDir    string
	Host       string // default 127.0.0.1
	Port       int    // 0 picks a free one
	// Probe and Metrics are the loopback addresses of the health probes and the metrics
	// endpoint; "" picks free ports. A replica restarted on the same addresses looks, to a
	// Service and its probes, like the same pod's container restarting.
	Probe, Metrics string
	// Dir holds the log file (webhook.log); required.
	Dir string
	// Args are more flags, appended after the ones Start sets.
	Args []string
	// Env is added to this process's environment (KUBECONFIG is always cleared).
	Env []string
}

// Process is one running webhook process.
type Process struct {
	Cmd *exec.Cmd
	// Started is the time just before fork/exec.
	Started time.Time
	// Addr is the webhook server (host:port), Probe the health probes' and Metrics the metrics
	// endpoint's address.
	Addr, Probe, Metrics string
	LogPath              string

	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// Start runs the binary with --kubeconfig, --cert-dir and loopback addresses for the webhook
// server, probes and metrics. Stop it (Stop or Kill) when done.
func Start(o Options) (*Process, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if o.Kubeconfig == "" || o.CertDir == "" || o.Dir == "" {
		return nil, fmt.Errorf("webhookproc: Kubeconfig, CertDir and Dir are required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		if o.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	p := &Process{LogPath: filepath.Join(o.Dir, "webhook.log"), done: make(chan struct{}), Addr: net.JoinHostPort(o.Host, strconv.Itoa(o.Port)),
		Probe: o.Probe, Metrics: o.Metrics}
	for _, a := range []*string{&p.Probe, &p.Metrics} {
		if *a != "" {
			continue
		}
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		*a = "127.0.0.1:" + strconv.Itoa(port)
	}
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--kubeconfig=" + o.Kubeconfig, "--host=" + o.Host, "--port=" + strconv.Itoa(o.Port), "--cert-dir=" + o.CertDir,
		"--metrics-bind-address=" + p.Metrics, "--health-probe-bind-address=" + p.Probe, "--namespace=octopus-workspace-webhook"}, o.Args...)
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = logFile, logFile
	p.Cmd.Env = append(append(os.Environ(), "KUBECONFIG="), o.Env...)
	p.Cmd.SysProcAttr = childAttr()
	p.Started = time.Now()
	if err := p.Cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	go func() { p.waitErr = p.Cmd.Wait(); _ = logFile.Close(); close(p.done) }()
	return p, nil
}

// Stop sends SIGTERM to this process (its pid only), SIGKILL after 10 s, and waits for it.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
	})
}

// Kill sends SIGKILL (a crash, an OOM kill, a node lost) and waits for the process to be gone.
func (p *Process) Kill() {
	p.stopOnce.Do(func() {
		_ = p.Cmd.Process.Kill()
		<-p.done
	})
}

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited returns nil while the process runs, else how it ended with the end of its log.
func (p *Process) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("webhook process exited: %v\n%s", p.waitErr, Tail(p.LogPath, 20))
	default:
		return nil
	}
}

// WaitReady polls /readyz every 20 ms until it answers 200, the process exits or timeout passes.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		if err := p.Exited(); err != nil {
			return err
		}
		if GetOK(ctx, c, "http://"+p.Probe+"/readyz") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("/readyz not 200 after %s: %w\n%s", timeout, ctx.Err(), Tail(p.LogPath, 20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// MetricsText is the process's /metrics page.
func (p *Process) MetricsText() (string, error) {
	resp, err := http.Get("http://" + p.Metrics + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// GetOK tells whether a GET of url answers 200.
func GetOK(ctx context.Context, c *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// FreePort is a loopback port free at the time of asking.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tail is the last n lines of the file at path (or the error reading it).
func Tail(path string, n int) string {
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
