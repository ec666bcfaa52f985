package bench

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// waitReady polls /readyz every 5 ms and returns how long after start it first said 200.
func (p *webhookProcess) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
			return 0, err
		}
		resp, err := c.Get("http://" + p.probe + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.started), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("webhook not ready after %s\n%s", timeout, tail(p.logPath, 20))
}

// memStatus reads fields of /proc/<pid>/status given in kB (VmRSS, RssAnon, RssFile), in bytes.
func (p *webhookProcess) memStatus() (map[string]float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			kb, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return nil, err
			}
			out[k] = kb * 1024
		}
	}
	if out["VmRSS"] == 0 {
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", p.cmd.Process.Pid)
	}
	return out, nil
}

// metric reads one unlabelled series from the process's metrics endpoint.
func (p *webhookProcess) metric(name string) (float64, error) {
	all, err := p.metricsText()
	if err != nil {
		return 0, err
	}
	return seriesValue(all, name)
}

func (p *webhookProcess) metricsText() (string, error) {
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// seriesValue sums the samples of series name (every label set) in a Prometheus text page.
func seriesValue(page, name string) (float64, error) {
	sum, found := 0.0, false
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, err
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("no series %s", name)
	}
	return sum, nil
}

// gcLine is one GODEBUG=gctrace=1 line: "gc 12 @3.4s 1%: ... 4->5->2 MB, 8 MB goal, ...".
var gcLine = regexp.MustCompile(`^gc (\d+) @([0-9.]+)s .*?(\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

type gcRecord struct {
	n      int
	at     time.Duration // since process start
	liveMB float64       // heap marked live by this cycle
	goalMB float64
}

// gcs reads every GC trace line the process has written so far.
func (p *webhookProcess) gcs() []gcRecord {
	f, err := os.Open(p.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []gcRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := gcLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		at, _ := strconv.ParseFloat(m[2], 64)
		live, _ := strconv.ParseFloat(m[5], 64)
		goal, _ := strconv.ParseFloat(m[6], 64)
		out = append(out, gcRecord{n: n, at: time.Duration(at * float64(time.Second)), liveMB: live, goalMB: goal})
	}
	return out
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
