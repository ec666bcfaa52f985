package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// What the Finder does while a watch is down. The readers are in-memory stand-ins: the
// "cache" holds the world as it was before the Tentacle moved, "live" as it is now; the
// e2e/faults tests run the same against a real API server.

type watchState struct {
	fresh bool
	down  string
}

func (w watchState) Fresh() (bool, string) { return w.fresh, w.down }

// unreachable is an API server the webhook cannot reach: every read fails, or blocks until
// its context ends.
type unreachable struct{ block bool }

func (u unreachable) wait(ctx context.Context) error {
	if u.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return errors.New("dial tcp 10.0.0.1:443: connect: connection refused")
}

func (u unreachable) Get(ctx context.Context, _ client.ObjectKey, _ client.Object, _ ...client.GetOption) error {
	return u.wait(ctx)
}

func (u unreachable) List(ctx context.Context, _ client.ObjectList, _ ...client.ListOption) error {
	return u.wait(ctx)
}

func world(mode corev1.PersistentVolumeAccessMode, tentacleNode string) client.Reader {
	p := tentacle("octopus-agent-tentacle-1", tentacleNode, corev1.PodRunning, time.Hour)
	p.Labels = map[string]string{ComponentLabel: TentacleValue, InstanceLabel: "prod"}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: claim, Namespace: p.Namespace},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{mode}, VolumeName: "pv-1"}}
	objs := []client.Object{&p, pvc}
	for _, n := range []string{"node-1", "node-3"} {
		objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}, Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}})
	}
	return fake.NewClientBuilder().WithScheme(scheme()).WithObjects(objs...).Build()
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = corev1.AddToScheme(s)
	return s
}

func scriptPodOf(ns string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "octopus-script-1", Namespace: ns,
		Labels: map[string]string{ScriptTicketLabel: "1"}, Annotations: map[string]string{ReleaseAnnotation: "prod"}}}
}

func TestFactsWhileAWatchIsDown(t *testing.T) {
	const ns = "octopus-agent-prod"
	cases := []struct {
		name      string
		mode      corev1.PersistentVolumeAccessMode
		watches   watchState
		live      client.Reader
		wantNode  string
		wantClaim bool   // facts name the claim
		wantErr   string // "" for none
	}{
		{"watches current: the cache decides, live is not read", corev1.ReadWriteOnce, watchState{fresh: true},
			unreachable{}, "node-1", true, ""},
		{"a watch down: read live, the Tentacle's new node", corev1.ReadWriteOnce, watchState{down: "/api/v1/pods"},
			world(corev1.ReadWriteOnce, "node-3"), "node-3", true, ""},
		{"a watch down, live fails, ReadWriteOnce: no pin on old facts", corev1.ReadWriteOnce, watchState{down: "/api/v1/pods"},
			unreachable{}, "", false, CannotReadCurrentState},
		{"a watch down, live fails, ReadWriteMany: the cached facts serve, no node involved", corev1.ReadWriteMany, watchState{down: "/api/v1/pods"},
			unreachable{}, "", true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache := world(c.mode, "node-1")
			f := &Finder{Cache: cache, LegacyPods: cache, Live: c.live, MountPath: "/octopus", Watches: c.watches}
			facts, err := f.Facts(context.Background(), scriptPodOf(ns))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), c.watches.down) {
					t.Fatalf("err = %v, want one saying %q and naming %q", err, c.wantErr, c.watches.down)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if facts.Node != c.wantNode || (facts.Claim != nil) != c.wantClaim {
				t.Fatalf("facts: node %q claim %v, want node %q claim %v", facts.Node, facts.Claim != nil, c.wantNode, c.wantClaim)
			}
		})
	}
}

// A Tentacle pod being placed while the watch is down and the API server unreachable: an
// error, which the Tentacle webhook turns into "admitted, not pinned".
func TestTentacleFactsWhileAWatchIsDown(t *testing.T) {
	cache := world(corev1.ReadWriteOnce, "node-1")
	f := &Finder{Cache: cache, LegacyPods: cache, Live: unreachable{}, MountPath: "/octopus", Watches: watchState{down: "/api/v1/pods"}}
	next := tentacle("octopus-agent-tentacle-2", "", corev1.PodPending, 0)
	next.Labels = map[string]string{ComponentLabel: TentacleValue, InstanceLabel: "prod"}
	if _, err := f.TentacleFacts(context.Background(), &next); err == nil || !strings.Contains(err.Error(), CannotReadCurrentState) {
		t.Fatalf("err = %v, want %q", err, CannotReadCurrentState)
	}
}

// An API server that does not answer at all costs LiveTimeout per attempt, not the API
// server's whole webhook timeout.
func TestLiveReadsAreBounded(t *testing.T) {
	cache := world(corev1.ReadWriteOnce, "node-1")
	f := &Finder{Cache: cache, LegacyPods: cache, Live: unreachable{block: true}, MountPath: "/octopus",
		Watches: watchState{down: "/api/v1/pods"}, LiveTimeout: 50 * time.Millisecond}
	began := time.Now()
	_, err := f.Facts(context.Background(), scriptPodOf("octopus-agent-prod"))
	if err == nil {
		t.Fatal("facts from an API server that never answers")
	}
	if d := time.Since(began); d > time.Second {
		t.Fatalf("took %s with LiveTimeout 50ms", d)
	}
}

// slow is an API server under load: every read answers, late.
type slow struct {
	client.Reader
	delay time.Duration
}

func (s slow) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.Reader.Get(ctx, key, obj, opts...)
}

func (s slow) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.Reader.List(ctx, list, opts...)
}

func (s slow) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.delay):
		return nil
	}
}

// A request's live reads get what is left of its deadline (the handler's answer budget), not
// a fixed DefaultLiveTimeout: an API server under load that takes 800 ms per read (more than
// DefaultLiveTimeout for the four reads of a ReadWriteOnce script pod) still yields the
// Tentacle's new node, and the reads end in time for the answer.
func TestLiveReadsUseTheRequestsBudget(t *testing.T) {
	cache := world(corev1.ReadWriteOnce, "node-1")
	f := &Finder{Cache: cache, LegacyPods: cache, Live: slow{Reader: world(corev1.ReadWriteOnce, "node-3"), delay: 800 * time.Millisecond},
		MountPath: "/octopus", Watches: watchState{down: "/api/v1/pods"}}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second) // 80% of the API server's 5 s
	defer cancel()
	facts, err := f.Facts(ctx, scriptPodOf("octopus-agent-prod"))
	if err != nil {
		t.Fatal(err)
	}
	if facts.Node != "node-3" {
		t.Fatalf("node %q, want node-3 (read live)", facts.Node)
	}

	for _, c := range []struct {
		name    string
		timeout time.Duration
		cap     time.Duration
		want    time.Duration // within 50 ms
	}{
		{"no deadline: DefaultLiveTimeout", 0, 0, DefaultLiveTimeout},
		{"4 s left: all but the reserve", 4 * time.Second, 0, 4*time.Second - liveReserve},
		{"300 ms left: half of it", 300 * time.Millisecond, 0, 150 * time.Millisecond},
		{"LiveTimeout caps it", 4 * time.Second, time.Second, time.Second},
	} {
		ctx := context.Background()
		if c.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.timeout)
			defer cancel()
		}
		got := (&Finder{LiveTimeout: c.cap}).liveBudget(ctx)
		if got > c.want || got < c.want-50*time.Millisecond {
			t.Errorf("%s: budget %s, want %s", c.name, got, c.want)
		}
	}
}
