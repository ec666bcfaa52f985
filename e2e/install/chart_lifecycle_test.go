package install

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/certs"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/helm"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
)

// helm install, upgrade and uninstall against a real API server, self-managed mode, as the
// README says: the namespace is created first; installed audit-only (enforcement=warn) and
// switched to enforce by the upgrade, the policy's bindings following; the webhook's first start (the real certs
// package, as the webhook's ServiceAccount with the chart's RBAC) creates its Secret and injects
// the CA; an upgrade keeps every caBundle (neither the chart nor the injector's field is in the
// release's manifests); uninstall removes both webhook configurations, so no failing webhook is
// left behind, and leaves the namespace and the Secret the release never owned.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	bin := helm.Require(t)
	cp := start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(args ...string) {
		t.Helper()
		out, err := helm.Run(bin, append(args, "--kubeconfig", cp.KubeconfigPath, "--namespace", webhookNS)...)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := bytes.Cut(bytes.TrimSpace(out), []byte("\n"))
		t.Logf("helm %s: %s", args[0], first)
	}

	var ns corev1.Namespace
	find(t, render(t, "self-managed", false), "Namespace", webhookNS, &ns)
	must(t, cp.Client.Create(ctx, &ns))
	// As the README rolls out: installed audit-only, switched to enforce by an upgrade.
	run("install", chartRelease, chartDir(t), "--set", "certificates.mode=self-managed,enforcement=warn")
	wantPolicyMode(ctx, t, cp.Client, enforcement.Warn)

	c, err := client.New(asServiceAccount(cp.Config), client.Options{})
	must(t, err)
	m, err := certs.NewManager(c, certs.Options{Namespace: webhookNS, SecretName: "workspace-webhook-tls", ServiceName: "workspace-webhook",
		MutatingWebhookConfigName: "octopus-workspace-webhook", ValidatingWebhookConfigName: "octopus-workspace-webhook", CertDir: t.TempDir()})
	must(t, err)
	must(t, m.Ensure(ctx))
	injected := caBundles(ctx, t, cp.Client)
	for name, b := range injected {
		if len(b) == 0 {
			t.Fatalf("%s: no caBundle after the webhook's first start", name)
		}
	}

	run("upgrade", chartRelease, chartDir(t), "--reuse-values", "--set", "replicas=3,enforcement=enforce")
	wantPolicyMode(ctx, t, cp.Client, enforcement.Enforce)
	upgraded := caBundles(ctx, t, cp.Client)
	if len(upgraded) != len(injected) {
		t.Errorf("%d webhooks after the upgrade, %d before", len(upgraded), len(injected))
	}
	for name, b := range upgraded {
		if !bytes.Equal(b, injected[name]) {
			t.Errorf("%s: helm upgrade changed the injected caBundle (%d bytes, was %d)", name, len(b), len(injected[name]))
		}
	}
	var d appsv1.Deployment
	must(t, cp.Client.Get(ctx, client.ObjectKey{Namespace: webhookNS, Name: "workspace-webhook"}, &d))
	if *d.Spec.Replicas != 3 {
		t.Errorf("after helm upgrade --set replicas=3: %d replicas", *d.Spec.Replicas)
	}
	if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--enforcement=enforce") {
		t.Errorf("after helm upgrade --set enforcement=enforce: args %v", args)
	}

	run("uninstall", chartRelease)
	for _, gone := range []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{}, &admissionregistrationv1.ValidatingWebhookConfiguration{},
		&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{},
	} {
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: "octopus-workspace-webhook"}, gone); !apierrors.IsNotFound(err) {
			t.Errorf("%T octopus-workspace-webhook after helm uninstall: %v, want NotFound", gone, err)
		}
	}
	var bindings admissionregistrationv1.ValidatingAdmissionPolicyBindingList
	must(t, cp.Client.List(ctx, &bindings))
	if len(bindings.Items) != 0 {
		t.Errorf("%d policy bindings after helm uninstall, want none", len(bindings.Items))
	}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: webhookNS, Name: "workspace-webhook"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment after helm uninstall: %v, want NotFound", err)
	}
	var secret corev1.Secret
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: webhookNS, Name: "workspace-webhook-tls"}, &secret); err != nil {
		t.Errorf("the self-managed Secret should outlive the release (README: remove it by hand): %v", err)
	} else if len(secret.OwnerReferences) > 0 {
		t.Errorf("the self-managed Secret has owners %v; the README says it has none", secret.OwnerReferences)
	}
	must(t, cp.Client.Get(ctx, client.ObjectKey{Name: webhookNS}, &corev1.Namespace{}))
}

// wantPolicyMode checks, on the cluster, that the policy's bindings give a namespace without
// the enforcement label exactly one binding, of mode want.
func wantPolicyMode(ctx context.Context, t *testing.T, c client.Client, want enforcement.Mode) {
	t.Helper()
	var list admissionregistrationv1.ValidatingAdmissionPolicyBindingList
	must(t, c.List(ctx, &list))
	actions, names, err := enforcement.PolicyActions(list.Items, nil)
	must(t, err)
	if got, ok := enforcement.ModeOfActions(actions); len(names) != 1 || !ok || got != want {
		t.Errorf("bindings %v give an unlabelled namespace %v (%s), want %s", names, actions, got, want)
	}
}

// caBundles are the caBundles of every webhook of both configurations, by webhook name.
func caBundles(ctx context.Context, t *testing.T, c client.Client) map[string][]byte {
	t.Helper()
	var m admissionregistrationv1.MutatingWebhookConfiguration
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	must(t, c.Get(ctx, client.ObjectKey{Name: "octopus-workspace-webhook"}, &m))
	must(t, c.Get(ctx, client.ObjectKey{Name: "octopus-workspace-webhook"}, &v))
	out := map[string][]byte{}
	for _, w := range m.Webhooks {
		out[w.Name] = w.ClientConfig.CABundle
	}
	for _, w := range v.Webhooks {
		out[w.Name] = w.ClientConfig.CABundle
	}
	if len(out) == 0 {
		t.Fatal("no webhooks installed")
	}
	return out
}
