package faults

// The stage every scenario shares: one real control plane (kube-apiserver, etcd, scheduler,
// controller manager, three kwok nodes) with the shipped webhook configurations and the
// final-state policy; two webhook replicas, each the production binary as its own process,
// behind one address (a Proxy standing for the Service, as the shipped Deployment runs 2);
// and a second Proxy between the replicas and the API server, which a scenario can cut to drop
// the webhook's watches. Scenarios run one after the other (they restart the API server and
// kill replicas) and each leaves the stage as it found it.
//
// RELIABILITY_OUT=dir saves each scenario's bench.Result there (make reliability renders them
// into RELIABILITY.md); RELIABILITY_FULL=1 runs the long versions. By default (make test) each
// scenario runs a short smoke version that still asserts its outcomes.

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
)

var (
	cp *controlplane.ControlPlane
	// apiLink carries every connection of the webhook replicas to the API server.
	apiLink *Proxy
	// hooks are the webhook replicas behind the address the webhook configurations call.
	hooks *fleet
	// full: RELIABILITY_FULL=1, the long versions.
	full = os.Getenv("RELIABILITY_FULL") == "1"
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if _, err := controlplane.FindBinaries(); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "control plane binaries missing under CI:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "SKIP e2e/faults:", err)
		return 0
	}
	defer webhookprocess.RemoveBuilt()
	// The test's own clients log the API server's warnings through controller-runtime; not needed.
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := setUp(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "setting up:", err)
		tearDown()
		return 1
	}
	code := m.Run()
	tearDown()
	return code
}

func setUp(ctx context.Context) error {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	// Built before the control plane starts: the two do not compete for the 2 cores.
	if _, err := webhookprocess.BinaryPath(); err != nil {
		return err
	}
	opts := controlplane.AllComponents(3)
	opts.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "manifests", "base", "webhooks.yaml")}}
	if cp, err = controlplane.Start(ctx, opts); err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	policy, bindings, err := manifests.ScriptPodPolicy()
	if err != nil {
		return err
	}
	if err := cp.InstallPolicy(ctx, policy, bindings...); err != nil {
		return fmt.Errorf("installing the final-state policy: %w", err)
	}
	if apiLink, err = NewProxy("127.0.0.1:0"); err != nil {
		return err
	}
	apiURL, err := url.Parse(cp.Config.Host)
	if err != nil {
		return err
	}
	apiLink.AddBackend(apiURL.Host, "")
	kubeconfig, err := kubeconfigVia(apiLink.Addr())
	if err != nil {
		return err
	}
	wio := cp.WebhookInstallOptions
	if hooks, err = newFleet(2, kubeconfig, wio.LocalServingCertDir, fmt.Sprintf("%s:%d", wio.LocalServingHost, wio.LocalServingPort)); err != nil {
		return err
	}
	return hooks.startAll(ctx)
}

func tearDown() {
	if hooks != nil {
		hooks.close()
	}
	if apiLink != nil {
		apiLink.Close()
	}
	if cp != nil {
		_ = cp.Stop()
	}
}

// kubeconfigVia writes the admin kubeconfig with the API server reached through addr.
func kubeconfigVia(addr string) (string, error) {
	cfg, err := clientcmd.LoadFromFile(cp.KubeconfigPath)
	if err != nil {
		return "", err
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + addr
	}
	dir, err := os.MkdirTemp("", "faults-kubeconfig-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "webhook.kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

// replica is one webhook process with fixed addresses, so that restarting it looks to the
// Service (the balancer) like the same pod's container restarting.
type replica struct {
	name                string
	port                int
	probe, metrics, dir string
	proc                *webhookprocess.Process
	kubeconfig, certDir string
	host                string
	args                []string
}

// fleet is the webhook Deployment: replicas behind one address.
type fleet struct {
	lb       *Proxy
	replicas []*replica
}

// newFleet makes n replicas behind addr, not started. With certDir "" each replica has a
// cert dir of its own (the self-managed mode writes its certificate there); args are added
// to every replica's command line.
func newFleet(n int, kubeconfig, certDir, addr string, args ...string) (*fleet, error) {
	lb, err := NewProxy(addr)
	if err != nil {
		return nil, fmt.Errorf("listening where the webhook configurations call (%s): %w", addr, err)
	}
	f := &fleet{lb: lb}
	for i := range n {
		r := &replica{name: fmt.Sprintf("replica-%d", i+1), kubeconfig: kubeconfig, certDir: certDir, host: "127.0.0.1", args: args}
		ports := make([]int, 3)
		for j := range ports {
			if ports[j], err = webhookprocess.FreePort(); err != nil {
				return nil, err
			}
		}
		r.port, r.probe, r.metrics = ports[0], "127.0.0.1:"+strconv.Itoa(ports[1]), "127.0.0.1:"+strconv.Itoa(ports[2])
		if r.dir, err = os.MkdirTemp("", "faults-"+r.name+"-"); err != nil {
			return nil, err
		}
		if r.certDir == "" {
			r.certDir = filepath.Join(r.dir, "certs")
		}
		f.replicas = append(f.replicas, r)
		lb.AddBackend(fmt.Sprintf("127.0.0.1:%d", r.port), "http://"+r.probe+"/readyz")
	}
	return f, nil
}

// start runs the replica's process (again) and waits for its /readyz.
func (r *replica) start(ctx context.Context) error {
	p, err := webhookprocess.Launch(webhookprocess.Options{Kubeconfig: r.kubeconfig, CertDir: r.certDir, Host: r.host, Port: r.port,
		Probe: r.probe, Metrics: r.metrics, LogPath: filepath.Join(r.dir, "webhook.log"), Args: r.args})
	if err != nil {
		return err
	}
	r.proc = p
	_, err = p.WaitReady(ctx, time.Minute)
	return err
}

func (r *replica) running() bool { return r.proc != nil && r.proc.Exited() == nil }

// startAll starts every replica that is not running and waits until the balancer sees them
// all ready.
func (f *fleet) startAll(ctx context.Context) error {
	for _, r := range f.replicas {
		if r.running() {
			continue
		}
		if err := r.start(ctx); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.lb.Ready() != len(f.replicas) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the balancer sees %d of %d replicas ready", f.lb.Ready(), len(f.replicas))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// stopAll stops every replica (SIGTERM) and waits until the balancer sees none ready.
func (f *fleet) stopAll() {
	for _, r := range f.replicas {
		if r.proc != nil {
			r.proc.Stop()
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.lb.Ready() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fleet) close() {
	for _, r := range f.replicas {
		if r.proc != nil {
			r.proc.Stop()
		}
	}
	f.lb.Close()
	for _, r := range f.replicas {
		_ = os.RemoveAll(r.dir)
	}
}

// restoreStage puts the stage back for the next scenario: the API server link up and every
// replica running and ready.
func restoreStage(t *testing.T) {
	t.Helper()
	apiLink.Restore()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := hooks.startAll(ctx); err != nil {
		t.Errorf("restoring the webhook replicas: %v", err)
	}
}

// logsOnFailure prints the end of every replica's log when the test failed.
func logsOnFailure(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, r := range hooks.replicas {
			t.Logf("%s log:\n%s", r.name, webhookprocess.Tail(filepath.Join(r.dir, "webhook.log"), 40))
		}
	})
}

// size picks the smoke or the full value.
func size[T any](smoke, long T) T {
	if full {
		return long
	}
	return smoke
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 50 ms until it holds, failing the test after timeout.
func eventually(t *testing.T, ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last: %s)", what, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
