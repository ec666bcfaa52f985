package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/reliability"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// Outcomes of the other two webhooks, as their creators see them.
const (
	claimChecked     = "refused by the webhook (checked)"
	claimUnchecked   = "admitted unchecked"
	tentaclePinned   = "pinned by the webhook"
	tentacleUnpinned = "admitted unpinned"
)

// unsupportedClass is a class that cannot serve ReadWriteMany (EBS): the claim webhook refuses
// an agent claim asking for it, so a claim admitted on it was not checked.
func unsupportedClass(t *testing.T, ctx context.Context) string {
	t.Helper()
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "faults-gp2"}, Provisioner: "ebs.csi.aws.com"}
	if err := cp.Client.Create(ctx, class); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return class.Name
}

// createClaim creates (dry-run) an agent chart claim asking ReadWriteMany of class and sorts the
// answer: refused by the webhook, or admitted (unchecked: the webhook would have refused it).
func createClaim(ctx context.Context, a tentacle.Agent, class, name string) outcome {
	c := a.Claim()
	c.Name, c.Spec.StorageClassName, c.Spec.VolumeName = name, ptr.To(class), ""
	c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	start := time.Now()
	err := cp.Client.Create(ctx, c, client.DryRunAll)
	o := outcome{Start: start, End: time.Now()}
	switch {
	case err == nil:
		o.Kind = claimUnchecked
	case strings.Contains(err.Error(), "denied the request"):
		o.Kind = claimChecked
	default:
		o.Kind, o.Err = kindError, err.Error()
	}
	return o
}

// createTentaclePod creates (dry-run) a new Tentacle pod of a, whose running Tentacle holds its
// ReadWriteOnce volume on node, and sorts the answer: pinned there, or admitted unpinned.
func createTentaclePod(ctx context.Context, a tentacle.Agent, node, name string) outcome {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.Namespace, Labels: a.TentacleLabels()}, Spec: a.Deployment().Spec.Template.Spec}
	pod.Spec.NodeSelector = nil
	start := time.Now()
	err := cp.Client.Create(ctx, pod, client.DryRunAll)
	o := outcome{Start: start, End: time.Now()}
	switch {
	case err != nil:
		o.Kind, o.Err = kindError, err.Error()
	case workspace.IsPinned(pod, node):
		o.Kind = tentaclePinned
	default:
		o.Kind = tentacleUnpinned
	}
	return o
}

// balancerMode is how the address in front of the replicas behaves when one dies.
type balancerMode struct {
	name  string
	retry bool
	probe time.Duration
	desc  string
}

var balancerModes = []balancerMode{
	{"Service", false, time.Second, "as a Service: connections keep going round-robin to the killed replica until its readiness fails (probed every 1 s, " +
		"standing for the kubelet noticing the dead container and the endpoint update reaching kube-proxy, which take a second or more), and a connection it refuses fails"},
	{"retrying balancer", true, 100 * time.Millisecond, "a balancer that retries a refused connection on the other replica (as some service meshes and cloud load balancers do)"},
}

// TestReplicaKilledUnderLoad: two webhook replicas behind one address; one is killed (SIGKILL)
// and restarted while script pods, agent claims and Tentacle pods keep being created through
// the API server. Each failed call has its webhook's documented outcome: a script pod refused
// (failurePolicy Fail), never admitted without its workspace; a claim admitted unchecked and a
// Tentacle pod admitted unpinned (Ignore), never refused.
func TestReplicaKilledUnderLoad(t *testing.T) {
	logsOnFailure(t)
	ctx := ctxFor(t, 6*time.Minute)
	t.Cleanup(func() {
		hooks.lb.SetMode(false, ProbeInterval)
		restoreStage(t)
	})
	a := rwoAgent("faults-replicas", "node-1")
	installAgent(t, ctx, a)
	class := unsupportedClass(t, ctx)
	waitPinned(t, ctx, a, "node-1")
	if o := createClaim(ctx, a, class, "probe-claim"); o.Kind != claimChecked {
		t.Fatalf("the claim webhook does not refuse the test's claim: %s %s", o.Kind, o.Err)
	}
	if o := createTentaclePod(ctx, a, "node-1", "probe-tentacle"); o.Kind != tentaclePinned {
		t.Fatalf("the Tentacle webhook does not pin the test's Tentacle pod: %s %s", o.Kind, o.Err)
	}

	var figures []bench.Figure
	var raw strings.Builder
	rounds := size(1, 5)
	for _, mode := range balancerModes {
		hooks.lb.SetMode(mode.retry, mode.probe)
		pods, claims, tentacles := newTally(), newTally(), newTally()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		worker := func(do func(i int) outcome, into *tally) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					into.add(do(i))
				}
			}()
		}
		tag := strings.ReplaceAll(strings.ToLower(mode.name), " ", "")
		for w := range 2 {
			worker(func(i int) outcome { return createScriptPod(ctx, a, fmt.Sprintf("%s%d-%06d", tag[:3], w, i)) }, pods)
		}
		worker(func(i int) outcome { return createClaim(ctx, a, class, fmt.Sprintf("claim-%s-%06d", tag[:3], i)) }, claims)
		worker(func(i int) outcome {
			return createTentaclePod(ctx, a, "node-1", fmt.Sprintf("tentacle-%s-%06d", tag[:3], i))
		}, tentacles)

		var restarts []time.Duration
		for round := range rounds {
			time.Sleep(time.Second)
			victim := hooks.replicas[round%len(hooks.replicas)]
			killedAt := time.Now()
			victim.proc.Kill()
			time.Sleep(time.Second)
			must(t, victim.start(ctx))
			must(t, hooks.startAll(ctx)) // the balancer sees it ready
			restarts = append(restarts, time.Since(killedAt))
		}
		time.Sleep(time.Second)
		close(stop)
		wg.Wait()

		podsFailed := pods.count(kindWebhookFailed)
		unmutated := pods.count(kindUnmutated)
		m := "replica killed (" + mode.name + ")"
		figures = append(figures,
			bench.Figure{Measurement: m, Figure: "script pods refused because the webhook call failed (failurePolicy Fail)", Measured: fmt.Sprintf("%d of %d", podsFailed, pods.total)},
			bench.Figure{Measurement: m, Figure: "script pods admitted without the webhook", Measured: fmt.Sprint(unmutated), Target: "0", Met: bench.Met(unmutated == 0)},
			bench.Figure{Measurement: m, Figure: "ReadWriteMany claims on a class that cannot serve it admitted unchecked (failurePolicy Ignore; the rest refused as they should be)",
				Measured: fmt.Sprintf("%d of %d", claims.count(claimUnchecked), claims.total)},
			bench.Figure{Measurement: m, Figure: "Tentacle pods admitted unpinned (failurePolicy Ignore; the rest pinned to the volume's node)",
				Measured: fmt.Sprintf("%d of %d", tentacles.count(tentacleUnpinned), tentacles.total)},
			bench.Figure{Measurement: m, Figure: "killed replica serving again (kill to ready, behind the balancer)", Measured: durations(restarts)},
		)
		fmt.Fprintf(&raw, "%s: %s\nscript pods: %s\n%sclaims: %s\n%sTentacle pods: %s\n%s\n", mode.name, mode.desc, pods, pods.Examples(), claims, claims.Examples(), tentacles, tentacles.Examples())
		t.Logf("%s: script pods %s; claims %s; Tentacle pods %s", mode.name, pods, claims, tentacles)

		// Only the documented outcomes, and traffic on every path.
		if unmutated != 0 {
			t.Errorf("%s: %d script pods admitted without the webhook", mode.name, unmutated)
		}
		if other := pods.total - pods.count("pinned to node-1") - podsFailed; other != 0 {
			t.Errorf("%s: %d script pods had an outcome other than pinned or refused for the failed call: %s\n%s", mode.name, other, pods, pods.Examples())
		}
		if n := claims.count(kindError); n != 0 {
			t.Errorf("%s: %d claims failed: %s", mode.name, n, claims.Examples())
		}
		if n := tentacles.count(kindError); n != 0 {
			t.Errorf("%s: %d Tentacle pods failed: %s", mode.name, n, tentacles.Examples())
		}
		if pods.count("pinned to node-1") == 0 || claims.count(claimChecked) == 0 || tentacles.count(tentaclePinned) == 0 {
			t.Errorf("%s: a path saw no successful call: script pods %s; claims %s; Tentacle pods %s", mode.name, pods, claims, tentacles)
		}
	}
	reliability.Save(t, bench.Result{Order: 33, Name: "faults-replica-killed", Title: "33. Faults: one of two webhook replicas killed (SIGKILL) and restarted under load",
		Config: fmt.Sprintf("Promise: a call that fails because a replica died has its webhook's documented outcome, nothing else: a script pod is refused (failurePolicy Fail; Tentacle reports the API server's error), "+
			"never admitted without its workspace; an agent claim is admitted unchecked and a Tentacle pod admitted unpinned (failurePolicy Ignore), never refused. "+
			"How: two replicas (production binary) behind one loopback address; %d round(s) per balancer mode of: 1 s of load, SIGKILL of one replica, 1 s, restart, wait until it is ready behind the balancer; "+
			"load through the API server (dry-run): 2 workers creating script pods of a ReadWriteOnce agent, 1 creating agent claims asking ReadWriteMany of an EBS class (which the webhook refuses), 1 creating Tentacle pods (which it pins), each one after the other.", rounds),
		Figures: figures, Raw: raw.String()})
}

// durations is "1.234 s" for one, "median 1.234 s, max 2.345 s" for several.
func durations(ds []time.Duration) string {
	if len(ds) == 1 {
		return bench.Secs(ds[0])
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return fmt.Sprintf("median %s, max %s", bench.Secs(sorted[(len(sorted)-1)/2]), bench.Secs(sorted[len(sorted)-1]))
}
