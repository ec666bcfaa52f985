package agent

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// emptyCluster holds nothing and, like the API server, refuses a label selector it cannot parse.
type emptyCluster struct{ lists int }

func (c *emptyCluster) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return fmt.Errorf("unexpected Get")
}

func (c *emptyCluster) List(_ context.Context, _ client.ObjectList, opts ...client.ListOption) error {
	c.lists++
	o := (&client.ListOptions{}).ApplyOptions(opts)
	if o.LabelSelector != nil {
		if _, err := labels.Parse(o.LabelSelector.String()); err != nil {
			return fmt.Errorf("the API server refuses selector %q: %w", o.LabelSelector, err)
		}
	}
	return nil
}

// A script pod may name any release; one that no label can carry has no Tentacle pod, and
// looking for it must not turn into an error (a 500 for the user).
func TestFactsForAReleaseNoLabelCanCarry(t *testing.T) {
	for _, release := range []string{"ghost release!", "-x", string(make([]byte, 64))} {
		c := &emptyCluster{}
		f := &Finder{Cache: c, LegacyPods: c, Live: c, MountPath: "/octopus"}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns", Annotations: map[string]string{ReleaseAnnotation: release}}}
		facts, err := f.Facts(context.Background(), pod)
		if err != nil || facts.TentaclePods != 0 || facts.Agent.Release != release {
			t.Fatalf("release %q: facts %+v, error %v", release, facts, err)
		}
		if c.lists != 0 {
			t.Fatalf("release %q: %d lists for a release no pod can carry", release, c.lists)
		}
	}
	// A valid release is looked for in both caches and, when absent, live.
	c := &emptyCluster{}
	f := &Finder{Cache: c, LegacyPods: c, Live: c, MountPath: "/octopus"}
	if _, err := f.Facts(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns",
		Annotations: map[string]string{ReleaseAnnotation: "prod"}}}); err != nil || c.lists != 3 {
		t.Fatalf("error %v after %d lists, want 3", err, c.lists)
	}
}
