package certs

import (
	"bytes"
	"context"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// caBundles returns every webhook's caBundle of both configurations, and the configurations
// with caBundle cleared (to compare everything else).
func caBundles(t *testing.T, c client.Client, name string) ([][]byte, []client.Object) {
	t.Helper()
	ctx := context.Background()
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, mwc); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, vwc); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := range mwc.Webhooks {
		out = append(out, mwc.Webhooks[i].ClientConfig.CABundle)
		mwc.Webhooks[i].ClientConfig.CABundle = nil
	}
	for i := range vwc.Webhooks {
		out = append(out, vwc.Webhooks[i].ClientConfig.CABundle)
		vwc.Webhooks[i].ClientConfig.CABundle = nil
	}
	for _, o := range []client.Object{mwc, vwc} {
		o.SetResourceVersion("")
		o.SetGeneration(0)
		o.SetManagedFields(nil)
	}
	return out, []client.Object{mwc, vwc}
}

func TestEnsureInjectsOnlyCABundleAndRestoresIt(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithObjects(webhookConfigs("octopus", "workspace-webhook")...).Build()
	_, before := caBundles(t, c, "test-webhook")
	m, err := NewManager(c, testOptions(t.TempDir(), clocktesting.NewFakeClock(time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "octopus", Name: "workspace-webhook-certs"}, sec); err != nil {
		t.Fatal(err)
	}
	bundles, after := caBundles(t, c, "test-webhook")
	if len(bundles) != 4 {
		t.Fatalf("want 4 webhooks, got %d", len(bundles))
	}
	for i, b := range bundles {
		if !bytes.Equal(b, sec.Data[keyCACert]) {
			t.Fatalf("webhook %d: caBundle is not the Secret's ca.crt", i)
		}
	}
	for i := range before {
		if !equality.Semantic.DeepEqual(before[i], after[i]) {
			t.Fatalf("something besides caBundle changed:\nbefore %+v\nafter  %+v", before[i], after[i])
		}
	}

	// Someone wipes one caBundle: the next pass puts it back.
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	_ = c.Get(ctx, client.ObjectKey{Name: "test-webhook"}, vwc)
	vwc.Webhooks[1].ClientConfig.CABundle = nil
	if err := c.Update(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	bundles, _ = caBundles(t, c, "test-webhook")
	if !bytes.Equal(bundles[3], sec.Data[keyCACert]) {
		t.Fatal("wiped caBundle not restored")
	}
}

// A missing webhook configuration fails the pass (so it is retried soon) but the files are
// still written: the server can start and serve once the configuration appears.
func TestEnsureWritesFilesEvenWithoutWebhookConfigurations(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	m, err := NewManager(c, testOptions(t.TempDir(), clocktesting.NewFakeClock(time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(context.Background()); err == nil {
		t.Fatal("want an error for missing webhook configurations")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal("files not published")
	}
	if !m.trustedSinceFor(nil).IsZero() || m.trustedCA != nil {
		t.Fatal("CA must not count as trusted when injection failed")
	}
}
