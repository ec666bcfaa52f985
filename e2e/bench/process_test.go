package bench

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookproc"
)

// webhookProcess is cmd/workspace-webhook running as its own process on loopback
// (e2e/webhookproc), with the pool that trusts its serving certificate.
type webhookProcess struct {
	*webhookproc.Process
	pool *x509.CertPool
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
	dir := t.TempDir()
	p := &webhookProcess{pool: o.pool}
	if o.certDir == "" {
		o.certDir = filepath.Join(dir, "certs")
		p.pool = writeServingCerts(t, o.certDir)
	}
	var env []string
	if o.gctrace {
		env = append(env, "GODEBUG=gctrace=1")
	}
	proc, err := webhookproc.Start(webhookproc.Options{Kubeconfig: o.kubeconfig, CertDir: o.certDir, Host: o.host, Port: o.port, Dir: dir, Env: env})
	must(t, err)
	p.Process = proc
	t.Cleanup(func() {
		began := time.Now()
		p.Stop()
		if d := time.Since(began); d > time.Second {
			t.Logf("webhook process took %s to stop", d.Round(time.Millisecond))
		}
		if t.Failed() {
			t.Logf("webhook log (%s):\n%s", p.LogPath, webhookproc.Tail(p.LogPath, 30))
		}
	})
	return p
}

// waitReady returns how long after start /readyz first answered 200 (see firstOK).
func (p *webhookProcess) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	d, err := p.firstOK(ctx, timeout, func(ctx context.Context) bool { return getOK(ctx, c, "http://"+p.Probe+"/readyz") })
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
			return 0, fmt.Errorf("no success after %s: %w\n%s", timeout, ctx.Err(), webhookproc.Tail(p.LogPath, 20))
		case <-tick.C:
		}
	}
}

func getOK(ctx context.Context, c *http.Client, url string) bool {
	return webhookproc.GetOK(ctx, c, url)
}
