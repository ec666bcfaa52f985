package webhookprocess

import (
	"context"
	"crypto/x509"
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
	"testing"
	"time"
)

// Process is cmd/workspace-webhook running as its own process on loopback.
type Process struct {
	Cmd     *exec.Cmd
	Started time.Time // just before fork/exec
	// Addr is the HTTPS webhook server (host:port); Probe serves /healthz and /readyz, Metrics
	// /metrics (plain HTTP on loopback).
	Addr, Probe, Metrics string
	// Pool trusts the serving certificate (nil when Options.CertDir was given without a pool).
	Pool    *x509.CertPool
	LogPath string

	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// Options configure Start and Launch.
type Options struct {
	Kubeconfig string
	CertDir    string         // "" generates a certificate for 127.0.0.1 (WriteServingCerts; Start only)
	Pool       *x509.CertPool // trusts CertDir's certificate (when CertDir is given)
	Host       string         // default 127.0.0.1
	Port       int            // 0 picks a free one
	// Probe and Metrics are the loopback addresses of the health probes and the metrics
	// endpoint; "" picks free ports. A replica restarted on the same addresses looks, to a
	// Service and its probes, like the same pod's container restarting.
	Probe, Metrics string
	GCTrace        bool     // GODEBUG=gctrace=1: one line per GC with the live heap (see GCs)
	LogPath        string   // where the process logs (appended to); "" a file in the test's temporary directory (Start only)
	Args           []string // more flags, after the ones set here
	Env            []string // added to the environment (KUBECONFIG is always cleared)
}

// Start runs the binary (Binary) with --kubeconfig and a cert dir; it is stopped (by its pid
// only) when the test ends, and its log's tail is printed if the test failed.
func Start(t testing.TB, o Options) *Process {
	t.Helper()
	Binary(t)
	dir := t.TempDir()
	if o.LogPath == "" {
		o.LogPath = filepath.Join(dir, "webhook.log")
	}
	if o.CertDir == "" {
		o.CertDir = filepath.Join(dir, "certs")
		o.Pool = WriteServingCerts(t, o.CertDir)
	}
	p, err := Launch(o)
	must(t, err)
	t.Cleanup(func() {
		began := time.Now()
		p.Stop()
		if d := time.Since(began); d > time.Second {
			t.Logf("webhook process took %s to stop", d.Round(time.Millisecond))
		}
		if t.Failed() {
			t.Logf("webhook log (%s):\n%s", p.LogPath, Tail(p.LogPath, 30))
		}
	})
	return p
}

// Launch is Start for callers without a test (TestMain, a replica restarted by a fault
// scenario): CertDir and LogPath are required, and the caller stops the process (Stop or Kill).
func Launch(o Options) (*Process, error) {
	bin, err := BinaryPath()
	if err != nil {
		return nil, err
	}
	if o.Kubeconfig == "" || o.CertDir == "" || o.LogPath == "" {
		return nil, fmt.Errorf("webhookprocess: Kubeconfig, CertDir and LogPath are required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		if o.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	p := &Process{LogPath: o.LogPath, done: make(chan struct{}), Pool: o.Pool,
		Addr: net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), Probe: o.Probe, Metrics: o.Metrics}
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
	if o.GCTrace {
		p.Cmd.Env = append(p.Cmd.Env, "GODEBUG=gctrace=1")
	}
	p.Cmd.SysProcAttr = childAttr()
	p.Started = time.Now()
	if err := p.Cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	go func() { p.waitErr = p.Cmd.Wait(); _ = logFile.Close(); close(p.done) }()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Stop sends SIGTERM to this process (its pid only) and SIGKILL after 10 s.
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

// Exited is an error naming the exit and the log's tail once the process has ended, else nil.
func (p *Process) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("webhook process exited: %v\n%s", p.waitErr, Tail(p.LogPath, 20))
	default:
		return nil
	}
}

// WaitReady returns how long after start /readyz first answered 200 (see FirstOK).
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	d, err := p.FirstOK(ctx, timeout, func(ctx context.Context) bool { return GetOK(ctx, c, "http://"+p.Probe+"/readyz") })
	if err != nil {
		return 0, fmt.Errorf("/readyz: %w", err)
	}
	return d, nil
}

// FirstOK starts attempt every 5 ms, without waiting for the previous one, and returns how
// long after the process started the first attempt succeeded. Not waiting matters: before the
// informer caches sync, a readiness probe or an admission is parked until client-go's next
// 100 ms sync poll, so one sent just before the sync answers late while one sent just after
// answers at once. At most timeout/5ms attempts, all on loopback.
func (p *Process) FirstOK(ctx context.Context, timeout time.Duration, attempt func(context.Context) bool) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok := make(chan time.Duration, 1)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := p.Exited(); err != nil {
			return 0, err
		}
		go func() {
			if attempt(ctx) {
				select {
				case ok <- time.Since(p.Started):
				default:
				}
			}
		}()
		select {
		case d := <-ok:
			return d, nil
		case <-ctx.Done():
			return 0, fmt.Errorf("no success after %s: %w\n%s", timeout, ctx.Err(), Tail(p.LogPath, 20))
		case <-tick.C:
		}
	}
}

// GetOK says whether a GET of url answered 200.
func GetOK(ctx context.Context, c *http.Client, url string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
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

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
