package certs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestMaterialRoundTrip(t *testing.T) {
	m, _ := mustPlan(t, testPolicy(), material{}, t0, time.Time{})
	data, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMaterial(data)
	if err != nil {
		t.Fatal(err)
	}
	if !sameCert(got.ca.cert, m.ca.cert) || !sameCerts(got.trusted, m.trusted) || !sameCert(got.serving.cert, m.serving.cert) ||
		!keyMatches(got.ca.cert, got.ca.key) || !keyMatches(got.serving.cert, got.serving.key) {
		t.Fatal("round trip lost something")
	}
}

// Every kind of damage decodes without panicking, reports an error, and leaves the damaged
// part zero so plan replaces it.
func TestDecodeCorruptSecret(t *testing.T) {
	m, _ := mustPlan(t, testPolicy(), material{}, t0, time.Time{})
	good, _ := m.encode()
	other, _ := mustPlan(t, testPolicy(), material{}, t0, time.Time{})
	otherData, _ := other.encode()

	with := func(k string, v []byte) map[string][]byte {
		d := map[string][]byte{}
		for kk, vv := range good {
			d[kk] = vv
		}
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
		return d
	}
	cases := []struct {
		name      string
		data      map[string][]byte
		caOK, tls bool
	}{
		{"nil data", nil, false, false},
		{"garbage ca.crt", with(keyCACert, []byte("garbage")), false, true},
		{"missing ca.key", with(keyCAKey, nil), false, true},
		{"truncated ca.key", with(keyCAKey, good[keyCAKey][:40]), false, true},
		{"ca.key of another CA", with(keyCAKey, otherData[keyCAKey]), false, true},
		{"leaf first in ca.crt", with(keyCACert, good[keyCert]), false, true},
		{"garbage tls.crt", with(keyCert, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")), true, false},
		{"tls.key of another pair", with(keyKey, otherData[keyKey]), true, false},
		{"empty tls.key", with(keyKey, []byte{}), true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeMaterial(c.data)
			if err == nil {
				t.Fatal("no error for damaged data")
			}
			if (got.ca.cert != nil) != c.caOK || (got.serving.cert != nil) != c.tls {
				t.Fatalf("ca usable=%v serving usable=%v, want %v %v (err %v)", got.ca.cert != nil, got.serving.cert != nil, c.caOK, c.tls, err)
			}
			next, why, err := testPolicy().plan(got, t0.Add(time.Hour), time.Time{})
			if err != nil || len(why) == 0 {
				t.Fatalf("plan must repair damaged data: why=%q err=%v", why, err)
			}
			if next.ca.cert == nil || next.serving.cert == nil || !keyMatches(next.serving.cert, next.serving.key) {
				t.Fatal("repaired material incomplete")
			}
		})
	}
}

func webhookConfigs(ns, svc string) []client.Object {
	hook := func(name string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: svc, Path: &name}}
	}
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"octopus.com/test": "never-matches"}}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "test-webhook", Labels: map[string]string{"owner": "helm"}}}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "test-webhook", Labels: map[string]string{"owner": "helm"}}}
	for _, n := range []string{"a.test.io", "b.test.io"} {
		mwc.Webhooks = append(mwc.Webhooks, admissionregistrationv1.MutatingWebhook{Name: n, ClientConfig: hook("/" + n), Rules: rules,
			SideEffects: &none, FailurePolicy: &fail, AdmissionReviewVersions: []string{"v1"}, ObjectSelector: sel})
		vwc.Webhooks = append(vwc.Webhooks, admissionregistrationv1.ValidatingWebhook{Name: n, ClientConfig: hook("/" + n), Rules: rules,
			SideEffects: &none, FailurePolicy: &fail, AdmissionReviewVersions: []string{"v1"}, ObjectSelector: sel})
	}
	return []client.Object{mwc, vwc}
}

func testOptions(dir string, clk *clocktesting.FakeClock) Options {
	return Options{
		Namespace: "octopus", SecretName: "workspace-webhook-certs", ServiceName: "workspace-webhook",
		MutatingWebhookConfigName: "test-webhook", ValidatingWebhookConfigName: "test-webhook",
		CertDir: dir, Clock: clk, Logger: logr.Discard(),
	}
}

// A corrupt Secret is logged as an error and repaired in place; the pass succeeds.
func TestEnsureRepairsCorruptSecret(t *testing.T) {
	corrupt := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "octopus", Name: "workspace-webhook-certs"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{keyCert: []byte("not a cert"), keyKey: []byte("not a key"), keyCACert: {0xff}},
	}
	c := fake.NewClientBuilder().WithObjects(append(webhookConfigs("octopus", "workspace-webhook"), corrupt)...).Build()
	logs := &logSink{}
	opts := testOptions(t.TempDir(), clocktesting.NewFakeClock(time.Now()))
	opts.Logger = logs.logger()
	m, err := NewManager(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !logs.contains("unusable certificate data") {
		t.Fatal("corruption not logged")
	}
	sec := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(corrupt), sec); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeMaterial(sec.Data); err != nil {
		t.Fatalf("Secret still unusable: %v", err)
	}
	onDisk, err := os.ReadFile(filepath.Join(opts.CertDir, "tls.crt"))
	if err != nil || !bytes.Equal(onDisk, sec.Data[keyCert]) {
		t.Fatalf("files not written from the repaired Secret: %v", err)
	}
	if err := m.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// An installer may create the Secret empty (type kubernetes.io/tls needs both keys): that
// is filled in without an error.
func TestEnsureFillsPlaceholderSecret(t *testing.T) {
	placeholder := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "octopus", Name: "workspace-webhook-certs"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{keyCert: {}, keyKey: {}},
	}
	c := fake.NewClientBuilder().WithObjects(append(webhookConfigs("octopus", "workspace-webhook"), placeholder)...).Build()
	logs := &logSink{}
	opts := testOptions(t.TempDir(), clocktesting.NewFakeClock(time.Now()))
	opts.Logger = logs.logger()
	m, err := NewManager(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if logs.contains("unusable") || !logs.contains("no certificates yet") {
		t.Fatal("a placeholder is not an error")
	}
	sec := &corev1.Secret{}
	_ = c.Get(context.Background(), client.ObjectKeyFromObject(placeholder), sec)
	if _, err := decodeMaterial(sec.Data); err != nil {
		t.Fatalf("placeholder not filled: %v", err)
	}
}

func TestNewManagerRejectsBadOptions(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	ok := testOptions("/tmp/x", clocktesting.NewFakeClock(t0))
	for name, mut := range map[string]func(*Options){
		"no namespace":           func(o *Options) { o.Namespace = "" },
		"no cert dir":            func(o *Options) { o.CertDir = "" },
		"CA shorter than leaf":   func(o *Options) { o.CAValidity = day; o.ServingValidity = 2 * day },
		"percentage out of band": func(o *Options) { o.RenewBeforePercentage = 100 },
		"cert and key same file": func(o *Options) { o.KeyName = "tls.crt" },
	} {
		o := ok
		mut(&o)
		if _, err := NewManager(c, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewManager(c, ok); err != nil {
		t.Fatal(err)
	}
}
