package install

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/octopus-agent-tools/workspace-webhook/manifests/base"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/doctor"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
)

// `workspace-webhook doctor` compares the cluster's webhook configurations with the ones the
// binary ships (manifests/base): a Helm install with default values, in any certificate mode,
// gives it nothing to report; a non-default failure policy, extra excluded namespaces or
// another release namespace are warnings naming the webhook and the field, never errors (so
// `doctor --fail-on error`, the default, still passes).
func TestDoctorOnAHelmInstall(t *testing.T) {
	shippedM, shippedV, err := base.WebhookConfigurations()
	if err != nil {
		t.Fatal(err)
	}
	caBundle := testCABundle(t)
	const (
		scriptMutating = "webhook script-pod-workspace.workspace-webhook.io"
		tentacle       = "webhook tentacle-pod-placement.workspace-webhook.io"
		claims         = "webhook agent-claim-access-modes.workspace-webhook.io"
		optedIn        = "webhook opted-in-claim-access-modes.workspace-webhook.io"
		policy         = "policy octopus-workspace-script-pods"
	)
	everyWebhook := []string{scriptMutating, tentacle, claims, optedIn}
	selectorDiffers := func() []string {
		out := []string{"warning " + policy + ": differs from the shipped manifests in matchConstraints"}
		for _, w := range everyWebhook {
			out = append(out, "warning "+w+": differs from the shipped manifests in namespaceSelector")
		}
		return out
	}
	shippedPolicy, _, err := base.ScriptPodPolicy()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		namespace string
		flags     []string
		want      []string // "severity object: problem"
	}{
		{"defaults", webhookNS, nil, nil},
		{"self-managed", webhookNS, []string{"--set", "certificates.mode=self-managed"}, nil},
		{"service-ca", webhookNS, []string{"--set", "certificates.mode=service-ca"}, nil},
		{"script pods Ignore", webhookNS, []string{"--set", "failurePolicy.scriptPods=Ignore"}, []string{
			"warning " + scriptMutating + ": failurePolicy Ignore, shipped Fail", "warning " + policy + ": differs from the shipped manifests in failurePolicy"}},
		{"Tentacle pods Fail", webhookNS, []string{"--set", "failurePolicy.tentaclePods=Fail"}, []string{"warning " + tentacle + ": failurePolicy Fail, shipped Ignore"}},
		{"claims Fail", webhookNS, []string{"--set", "failurePolicy.claims=Fail"}, []string{
			"warning " + claims + ": failurePolicy Fail, shipped Ignore", "warning " + optedIn + ": failurePolicy Fail, shipped Ignore"}},
		{"excluded namespaces", webhookNS, []string{"--set", "excludedNamespaces={team-a}"}, selectorDiffers()},
		{"another namespace", "platform-webhooks", nil, selectorDiffers()},
		// Audit-only: both bindings are the shipped ones turned around, not "differs"; the
		// doctor says enforcement is off.
		{"audit-only", webhookNS, []string{"--set", "enforcement=warn"}, []string{"warning " + policy + ": enforcement is off (audit-only): in every namespace not labelled workspace-webhook.io/enforcement=enforce, " +
			"script pods it would refuse are admitted with a warning (binding octopus-workspace-script-pods-warn, validationActions [Warn, Audit]); the webhook's --enforcement=warn does the same for its own refusals"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			objs := renderChart(t, c.namespace, c.flags...)
			m, v := webhookConfigs(t, objs)
			var p admissionregistrationv1.ValidatingAdmissionPolicy
			find(t, objs, "ValidatingAdmissionPolicy", "", &p)
			bindings := policyBindings(t, objs)
			for i := range m.Webhooks {
				m.Webhooks[i].ClientConfig.CABundle = caBundle // as the CA injector leaves them
			}
			for i := range v.Webhooks {
				v.Webhooks[i].ClientConfig.CABundle = caBundle
			}
			r := doctor.Diagnose(doctor.Snapshot{Mutating: m, Validating: v, ShippedMutating: shippedM, ShippedValidating: shippedV,
				Policy: &p, ShippedPolicy: shippedPolicy, PolicyBindings: bindings, Now: time.Now()},
				storage.Judge{}, "/octopus")
			var got []string
			for _, p := range r.Problems {
				if strings.HasPrefix(p.Object, "webhook") || strings.HasPrefix(p.Object, "policy") || strings.HasPrefix(p.Object, "binding") {
					got = append(got, string(p.Severity)+" "+p.Object+": "+p.Problem)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(c.want))
			if !slices.Equal(got, want) {
				t.Errorf("doctor reports\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// policyBindings are every ValidatingAdmissionPolicyBinding rendered (one per enforcement mode).
func policyBindings(t *testing.T, objs []*unstructured.Unstructured) []admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	t.Helper()
	var out []admissionregistrationv1.ValidatingAdmissionPolicyBinding
	for _, o := range objs {
		if o.GetKind() == "ValidatingAdmissionPolicyBinding" {
			var b admissionregistrationv1.ValidatingAdmissionPolicyBinding
			must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b))
			out = append(out, b)
		}
	}
	if len(out) != 2 {
		t.Fatalf("%d policy bindings rendered, want 2 (enforce's and warn's)", len(out))
	}
	return out
}

// testCABundle is a valid CA certificate, PEM, valid for a year.
func testCABundle(t *testing.T) []byte {
	t.Helper()
	key, err := pki.GenerateECPrivateKey(pki.ECCurve256)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "doctor-test-ca"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	pemBytes, _, err := pki.SignCertificate(tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBytes
}
