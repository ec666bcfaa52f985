package install

import (
	"bytes"
	"context"
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
)

// helm install, upgrade and uninstall against a real API server, self-managed mode, as the
// README says: the namespace is created first; the webhook's first start (the real certs
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
	run("install", chartRelease, chartDir(t), "--set", "certificates.mode=self-managed")

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

	run("upgrade", chartRelease, chartDir(t), "--reuse-values", "--set", "replicas=3")
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

	run("uninstall", chartRelease)
	for _, gone := range []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{}, &admissionregistrationv1.ValidatingWebhookConfiguration{},
		&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{},
	} {
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: "octopus-workspace-webhook"}, gone); !apierrors.IsNotFound(err) {
			t.Errorf("%T octopus-workspace-webhook after helm uninstall: %v, want NotFound", gone, err)
		}
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
