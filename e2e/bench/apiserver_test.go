package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// Targets through the API server (the issue): creation latency with the webhooks within
// 1.10x (p50) and 1.25x (p99) of the same load without them.
const (
	apiMaxP50Ratio = 1.10
	apiMaxP99Ratio = 1.25
	// sideLabel picks which webhooks apply to a namespace: absent, ours (manifests/base);
	// "noop", the same configurations pointing at a no-op server; "none", no webhook.
	sideLabel = "bench.workspace-webhook.io/webhooks"
)

// apiSide is one kind of namespace the creators create script pods in.
type apiSide struct {
	name    string
	label   string // value of sideLabel; "" for ours
	agent   tentacle.Agent
	mutated bool // pods come back with the webhook's record annotation
	phases  []phase
	cpu     map[string]float64 // process -> CPU seconds during this side's phases
	pods    int
}

// TestAPIServer creates script pods through a real kube-apiserver (with scheduler,
// controller manager and kwok nodes) from a fixed number of concurrent creators, in
// rotating phases (ABC, CBA, ...) over three namespaces with the same agent: one where the
// webhook configurations of manifests/base apply (our webhook process pins and checks the
// pod), one where the same configurations point at a no-op server (the floor: what any
// webhook costs the API server), one no webhook applies to (the baseline). Between phases
// the pods are deleted and the cluster settles. CPU per created pod is read from /proc for
// the webhook, kube-apiserver and etcd.
func TestAPIServer(t *testing.T) {
	requireBinaries(t)
	ctx := ctxFor(t, 40*time.Minute)
	cp, err := controlplane.Start(ctx, controlplane.AllComponents(3))
	must(t, err)
	t.Cleanup(func() { _ = cp.Stop() }) // after the webhook processes: they hold watches
	must(t, roomForPods(ctx, cp))

	wio := cp.WebhookInstallOptions
	hook := startWebhookProcess(t, processOptions{kubeconfig: cp.KubeconfigPath, certDir: wio.LocalServingCertDir,
		host: wio.LocalServingHost, port: wio.LocalServingPort})
	_, err = hook.waitReady(ctx, time.Minute)
	must(t, err)
	noopBase := startNoopServer(t, wio.LocalServingCertDir)
	must(t, registerWebhooks(ctx, cp, fmt.Sprintf("https://%s:%d", wio.LocalServingHost, wio.LocalServingPort), noopBase))

	sides := []*apiSide{
		{name: "our webhooks", agent: benchAgent("bench-hooked"), mutated: true},
		{name: "no-op webhooks (floor)", label: "noop", agent: benchAgent("bench-noop")},
		{name: "no webhooks (baseline)", label: "none", agent: benchAgent("bench-none")},
	}
	for _, s := range sides {
		must(t, installAgent(ctx, cp, s.agent, s.label))
	}
	c, err := fastClient(cp.Config)
	must(t, err)
	procs := cp.PIDs() // kube-scheduler, kube-controller-manager, kwok
	procs["webhook"], procs["kube-apiserver"], procs["etcd"] = hook.cmd.Process.Pid, childPID("kube-apiserver"), childPID("etcd")
	procs["load generator"] = os.Getpid() // with the no-op webhook server

	var raw strings.Builder
	var figures []Figure
	for _, conc := range cfg.apiConcurrencies {
		for _, s := range sides {
			s.phases, s.cpu, s.pods = nil, map[string]float64{}, 0
		}
		// Warm-up: connections, caches, the scheduler's and kwok's first pods; not measured.
		for _, s := range sides {
			if p := runPhase(ctx, conc, time.Second, creator(c, s, 0)); p.errors > 0 {
				t.Fatalf("warm-up %s: %d errors: %v", s.name, p.errors, p.examples)
			}
			must(t, clearScriptPods(ctx, c, s.agent.Namespace))
		}
		calls0, err := hook.metric("controller_runtime_webhook_requests_total")
		must(t, err)
		fmt.Fprintf(&raw, "--- %d concurrent creators\n", conc)
		for r := range cfg.apiRounds {
			order := slices.Clone(sides)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				cpu0 := cpuOf(procs)
				p := runPhase(ctx, conc, cfg.apiPhase, creator(c, s, r+1))
				for name, v := range cpuOf(procs) {
					s.cpu[name] += v - cpu0[name]
				}
				s.phases, s.pods = append(s.phases, p), s.pods+len(p.latencies)
				fmt.Fprintf(&raw, "round %d %-23s %s\n", r+1, s.name, p.summary().Line())
				must(t, clearScriptPods(ctx, c, s.agent.Namespace))
			}
		}
		calls1, err := hook.metric("controller_runtime_webhook_requests_total")
		must(t, err)
		sum := map[*apiSide]Summary{}
		for _, s := range sides {
			sum[s] = merge(s.phases).summary()
			fmt.Fprintf(&raw, "pooled  %-23s %s\n", s.name, sum[s].Line())
			if sum[s].N == 0 || sum[s].P50 <= 0 || sum[s].Errors > 0 {
				t.Fatalf("no sane measurement: %s; errors %v\n%s", sum[s].Line(), sum[s].ErrorExamples, raw.String())
			}
		}
		fmt.Fprintf(&raw, "calls to our webhook per script pod: %.2f (mutating + validating, reinvocations included)\n", (calls1-calls0)/float64(sides[0].pods))
		fmt.Fprintf(&raw, "CPU per created pod, µs (/proc/<pid>/stat; machine: /proc/stat busy time over all cores):\n  %-23s", "")
		cols := []string{"kube-apiserver", "etcd", "webhook", "kube-scheduler", "kube-controller-manager", "kwok", "load generator", machine}
		for _, name := range cols {
			fmt.Fprintf(&raw, " %*s", max(len(name), 6), name)
		}
		for _, s := range sides {
			fmt.Fprintf(&raw, "\n  %-23s", s.name)
			for _, name := range cols {
				fmt.Fprintf(&raw, " %*.0f", max(len(name), 6), s.cpu[name]/float64(s.pods)*1e6)
			}
		}
		raw.WriteString("\n")
		raw.WriteString("\n")
		ours, floor, none := sum[sides[0]], sum[sides[1]], sum[sides[2]]
		m := fmt.Sprintf("3. pod creation via kube-apiserver, %d creators", conc)
		p50, p99 := ratio(ours.P50, none.P50), ratio(ours.P99, none.P99)
		figures = append(figures,
			Figure{Measurement: m, Figure: "p50 create latency", Measured: Ms(ours.P50), Baseline: Ms(none.P50) + " (none)", Ratio: p50, Target: fmt.Sprintf("<= %.2fx", apiMaxP50Ratio), Met: Met(p50 <= apiMaxP50Ratio)},
			Figure{Measurement: m, Figure: "p99 create latency", Measured: Ms(ours.P99), Baseline: Ms(none.P99) + " (none)", Ratio: p99, Target: fmt.Sprintf("<= %.2fx", apiMaxP99Ratio), Met: Met(p99 <= apiMaxP99Ratio)},
			Figure{Measurement: m, Figure: "p50 / p99 vs the no-op webhooks (our share)", Measured: Ms(ours.P50) + " / " + Ms(ours.P99), Baseline: Ms(floor.P50) + " / " + Ms(floor.P99) + " (no-op)", Ratio: ratio(ours.P50, floor.P50)},
			Figure{Measurement: m, Figure: "p50 / p99 of the no-op webhooks vs none (any webhook's cost)", Measured: Ms(floor.P50) + " / " + Ms(floor.P99), Baseline: Ms(none.P50) + " / " + Ms(none.P99) + " (none)", Ratio: ratio(floor.P50, none.P50)},
			Figure{Measurement: m, Figure: "creates per second", Measured: fmt.Sprintf("%.0f /s", ours.RequestsPerSecond), Baseline: fmt.Sprintf("%.0f /s (none); %.0f /s (no-op)", none.RequestsPerSecond, floor.RequestsPerSecond), Ratio: ours.RequestsPerSecond / none.RequestsPerSecond},
			Figure{Measurement: m, Figure: "errors", Measured: fmt.Sprint(ours.Errors), Baseline: fmt.Sprint(none.Errors + floor.Errors), Target: "0", Met: Met(ours.Errors+none.Errors+floor.Errors == 0)},
		)
	}
	save(t, Result{Order: 3, Name: "apiserver", Title: "3. Script-pod creation through kube-apiserver: our webhooks vs no-op webhooks vs none",
		Config: fmt.Sprintf("%s mode; AllComponents(3) (kube-apiserver, etcd, scheduler, controller manager, kwok); our webhook process on loopback registered from manifests/base/webhooks.yaml, "+
			"the same configurations pointing at a no-op controller-runtime webhook server (in the load generator's process) for the floor, namespaces picked by label %s; "+
			"concurrent creators %v (one HTTP/2 connection, no client rate limit), %d rounds x %s per side, rotating ABC/CBA; Tentacle v3 script pods; "+
			"pods deleted and the cluster settled between phases", cfg.mode(), sideLabel, cfg.apiConcurrencies, cfg.apiRounds, cfg.apiPhase),
		Figures: figures,
		Raw:     raw.String(),
	})
}

// creator creates one script pod of s per call and checks whether our webhook mutated it.
func creator(c client.Client, s *apiSide, round int) func(context.Context, int, int) error {
	return func(ctx context.Context, worker, seq int) error {
		pod := s.agent.ScriptPod(fmt.Sprintf("r%dw%ds%d", round, worker, seq), tentacle.StyleV3)
		if err := c.Create(ctx, pod); err != nil {
			return err
		}
		if _, mutated := pod.Annotations[workspace.RecordAnnotation]; mutated != s.mutated {
			return fmt.Errorf("pod %s/%s: webhook record present=%v, want %v", pod.Namespace, pod.Name, mutated, s.mutated)
		}
		return nil
	}
}

// startNoopServer serves the no-op handler at our webhook paths with controller-runtime's
// webhook server, configured as app.NewManager configures ours (TLS 1.3, HTTP/1.1).
func startNoopServer(t testing.TB, certDir string) string {
	t.Helper()
	_, port := freeAddr(t)
	srv := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir, TLSOpts: []func(*tls.Config){func(c *tls.Config) {
		c.MinVersion, c.NextProtos = tls.VersionTLS13, []string{"http/1.1"}
	}}})
	srv.Register(app.MutatePodPath, &webhook.Admission{Handler: noop})
	srv.Register(app.ValidatePodPath, &webhook.Admission{Handler: noop})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = srv.Start(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for srv.StartedChecker()(nil) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no-op webhook server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Sprintf("https://127.0.0.1:%d", port)
}

// registerWebhooks installs manifests/base's webhook configurations twice: pointing at
// ours (namespaces without sideLabel) and at the no-op server (sideLabel=noop), both with
// the CA of the harness's serving certificate.
func registerWebhooks(ctx context.Context, cp *controlplane.ControlPlane, ours, noop string) error {
	ca := cp.WebhookInstallOptions.LocalServingCAData
	for _, target := range []struct {
		base, prefix string
		sel          metav1.LabelSelectorRequirement
	}{
		{ours, "", metav1.LabelSelectorRequirement{Key: sideLabel, Operator: metav1.LabelSelectorOpDoesNotExist}},
		{noop, "noop-", metav1.LabelSelectorRequirement{Key: sideLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"noop"}}},
	} {
		m, v, err := manifests.WebhookConfigurations()
		if err != nil {
			return err
		}
		point := func(name *string, cc *admissionregistrationv1.WebhookClientConfig, sel **metav1.LabelSelector) {
			url := target.base + *cc.Service.Path
			*name = target.prefix + *name
			cc.URL, cc.Service, cc.CABundle = &url, nil, ca
			if *sel == nil {
				*sel = &metav1.LabelSelector{}
			}
			(*sel).MatchExpressions = append((*sel).MatchExpressions, target.sel)
		}
		for i := range m.Webhooks {
			point(&m.Webhooks[i].Name, &m.Webhooks[i].ClientConfig, &m.Webhooks[i].NamespaceSelector)
		}
		for i := range v.Webhooks {
			point(&v.Webhooks[i].Name, &v.Webhooks[i].ClientConfig, &v.Webhooks[i].NamespaceSelector)
		}
		m.Name, v.Name = target.prefix+m.Name, target.prefix+v.Name
		if err := cp.Client.Create(ctx, m); err != nil {
			return err
		}
		if err := cp.Client.Create(ctx, v); err != nil {
			return err
		}
	}
	return nil
}

// roomForPods raises the kwok nodes' capacity so that no phase ever runs out of pods, CPU or
// memory (script pods request 500m CPU; the pinned ones all go to one node).
func roomForPods(ctx context.Context, cp *controlplane.ControlPlane) error {
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10k"), corev1.ResourceMemory: resource.MustParse("100Ti"), corev1.ResourcePods: resource.MustParse("50k")}
	for _, n := range cp.Nodes {
		var node corev1.Node
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: n}, &node); err != nil {
			return err
		}
		patch := client.MergeFrom(node.DeepCopy())
		node.Status.Capacity, node.Status.Allocatable = res, res
		if err := cp.Client.Status().Patch(ctx, &node, patch); err != nil {
			return err
		}
	}
	return nil
}

// installAgent installs an agent as its chart does (Deployment, claim on a pre-bound volume)
// in a namespace labelled sideLabel=label (unless ""), and waits for its Tentacle pod to run.
func installAgent(ctx context.Context, cp *controlplane.ControlPlane, a tentacle.Agent, label string) error {
	ns := namespace(a.Namespace)
	if label != "" {
		ns.Labels = map[string]string{sideLabel: label}
	}
	if err := cp.Client.Create(ctx, ns); err != nil {
		return err
	}
	if _, err := cp.CreateNamespace(ctx, a.Namespace); err != nil { // waits for the default ServiceAccount
		return err
	}
	for _, o := range []client.Object{a.ServiceAccounts()[0], a.ServiceAccounts()[1], a.Volume(), a.Claim(), a.Deployment()} {
		if err := cp.Client.Create(ctx, o); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var pods corev1.PodList
		if err := cp.Client.List(ctx, &pods, client.InNamespace(a.Namespace), client.MatchingLabels(a.TentacleLabels())); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the Tentacle pod of %s never ran", a.Namespace)
}

// clearScriptPods deletes every script pod of namespace at once (grace period 0), waits
// until they are gone, then gives the scheduler, kwok and the controllers 2 s to settle.
func clearScriptPods(ctx context.Context, c client.Client, namespace string) error {
	sel := client.HasLabels{"octopus.com/scriptTicketId"}
	if err := c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(namespace), sel, client.GracePeriodSeconds(0)); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var pods metav1.PartialObjectMetadataList
		pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
		if err := c.List(ctx, &pods, client.InNamespace(namespace), sel, client.Limit(1)); err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			time.Sleep(2 * time.Second)
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("script pods of %s not deleted after 2 minutes", namespace)
}

// cpuSeconds is the process's user+system CPU time.
func (p *webhookProcess) cpuSeconds() (float64, error) { return procCPU(p.cmd.Process.Pid) }

// procCPU is a process's user+system CPU seconds (/proc/<pid>/stat, clock ticks of 10 ms).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := firstErr(err1, err2); err != nil {
		return 0, err
	}
	return (utime + stime) / 100, nil
}

const machine = "machine"

// cpuOf reads procCPU of each named process (0 for one that cannot be read), and the
// machine's busy CPU seconds under "machine".
func cpuOf(pids map[string]int) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range pids {
		out[name], _ = procCPU(pid)
	}
	out[machine] = machineBusy()
	return out
}

// machineBusy is the busy CPU seconds of all cores (/proc/stat: all but idle and iowait).
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	busy := 0.0
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		if i != 3 && i != 4 && i < 8 { // user nice system [idle iowait] irq softirq steal
			busy += v
		}
	}
	return busy / 100
}

// childPID finds a direct child of this test binary by command name (the kube-apiserver and
// etcd envtest started for us), for reading its CPU time; 0 when there is none.
func childPID(comm string) int {
	entries, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+2:])
		if s[open+1:end] == comm && len(f) > 1 && f[1] == self {
			return pid
		}
	}
	return 0
}
