package agent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// countingReader is an API server that takes delay per read and counts the reads it served.
type countingReader struct {
	client.Reader
	delay time.Duration
	err   error
	reads atomic.Int32
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.reads.Add(1)
	time.Sleep(c.delay)
	if c.err != nil {
		return c.err
	}
	return c.Reader.Get(ctx, key, obj, opts...)
}

func (c *countingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c.reads.Add(1)
	time.Sleep(c.delay)
	if c.err != nil {
		return c.err
	}
	return c.Reader.List(ctx, list, opts...)
}

func sharedWorld() client.Reader {
	objs := []client.Object{
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "tentacle", Namespace: "a", Labels: map[string]string{InstanceLabel: "prod"}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "b", Labels: map[string]string{InstanceLabel: "prod"}}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "workspace", Namespace: "a"}},
	}
	return fake.NewClientBuilder().WithScheme(scheme()).WithObjects(objs...).Build()
}

// Twenty script pods of one agent arriving together cost one LIST and one GET, each caller
// gets the answer as its own copy, and different reads are not merged.
func TestSharedReadsMergeIdenticalReadsInFlight(t *testing.T) {
	api := &countingReader{Reader: sharedWorld(), delay: 100 * time.Millisecond}
	s := &SharedReads{Reader: api}
	const callers = 20
	pods := make([]corev1.PodList, callers)
	claims := make([]corev1.PersistentVolumeClaim, callers)
	errs := make([]error, 2*callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs[2*i] = s.List(context.Background(), &pods[i], client.InNamespace("a"), client.MatchingLabels{InstanceLabel: "prod"})
		}()
		go func() {
			defer wg.Done()
			errs[2*i+1] = s.Get(context.Background(), client.ObjectKey{Namespace: "a", Name: "workspace"}, &claims[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := api.reads.Load(); n != 2 {
		t.Fatalf("%d reads reached the API server for %d identical lists and %d identical gets, want 2", n, callers, callers)
	}
	for i := range callers {
		if len(pods[i].Items) != 1 || pods[i].Items[0].Name != "tentacle" || claims[i].Name != "workspace" {
			t.Fatalf("caller %d got %d pods %v and claim %q", i, len(pods[i].Items), pods[i].Items, claims[i].Name)
		}
	}
	pods[0].Items[0].Labels["changed"] = "by caller 0"
	if _, shared := pods[1].Items[0].Labels["changed"]; shared {
		t.Fatal("callers share one object: a change by one is seen by another")
	}

	// Another namespace is another read; so is the same read once the first has answered.
	var other corev1.PodList
	if err := s.List(context.Background(), &other, client.InNamespace("b"), client.MatchingLabels{InstanceLabel: "prod"}); err != nil {
		t.Fatal(err)
	}
	if len(other.Items) != 1 || other.Items[0].Name != "other" {
		t.Fatalf("namespace b: %v", other.Items)
	}
	if err := s.List(context.Background(), &pods[0], client.InNamespace("a"), client.MatchingLabels{InstanceLabel: "prod"}); err != nil {
		t.Fatal(err)
	}
	if n := api.reads.Load(); n != 4 {
		t.Fatalf("%d reads, want 4: a read in another namespace and a later read are not merged", n)
	}
}

// A failed read fails every caller that shared it, and a caller whose context ends stops
// waiting without cancelling the read for the others.
func TestSharedReadsErrorsAndCancellation(t *testing.T) {
	boom := errors.New("the server is currently unable to handle the request")
	s := &SharedReads{Reader: &countingReader{Reader: sharedWorld(), delay: 50 * time.Millisecond, err: boom}}
	var pods corev1.PodList
	if err := s.List(context.Background(), &pods, client.InNamespace("a")); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}

	api := &countingReader{Reader: sharedWorld(), delay: 300 * time.Millisecond}
	s = &SharedReads{Reader: api}
	impatient, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var patient corev1.PodList
	done := make(chan error, 1)
	go func() { done <- s.List(context.Background(), &patient, client.InNamespace("a")) }()
	time.Sleep(5 * time.Millisecond)
	var gaveUp corev1.PodList
	began := time.Now()
	if err := s.List(impatient, &gaveUp, client.InNamespace("a")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("impatient caller: err = %v, want its deadline", err)
	}
	if d := time.Since(began); d > 200*time.Millisecond {
		t.Fatalf("impatient caller waited %s", d)
	}
	if err := <-done; err != nil || len(patient.Items) != 1 {
		t.Fatalf("patient caller: err %v, %d pods", err, len(patient.Items))
	}
}
