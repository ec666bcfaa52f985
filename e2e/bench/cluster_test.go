package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
	wh "github.com/octopus-agent-tools/workspace-webhook/webhook"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

// Cluster set-up for TestAPIServer: room on the kwok nodes, the webhook configurations, the
// agents, the no-op webhook server, and clearing script pods between phases.

// startNoopServer serves the no-op handler at our webhook paths with controller-runtime's
// webhook server and our review server, configured as app.NewManager configures ours (TLS
// 1.3, HTTP/1.1): the same stack, deciding nothing.
func startNoopServer(t testing.TB, certDir string) string {
	t.Helper()
	_, port := webhookprocess.FreeAddr(t)
	srv := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir, TLSOpts: []func(*tls.Config){func(c *tls.Config) {
		c.MinVersion, c.NextProtos = tls.VersionTLS13, []string{"http/1.1"}
	}}})
	srv.Register(app.MutatePodPath, wh.NewReviewServer(noop, false, discardLogger()))
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
// the CA of the harness's serving certificate; and the final-state policy, bound to ours.
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
	policy, bindings, err := manifests.ScriptPodPolicy()
	if err != nil {
		return err
	}
	// Both bindings (one per enforcement mode, each selecting by the namespace label) keep
	// their selection and add ours.
	for _, b := range bindings {
		if b.Spec.MatchResources == nil {
			b.Spec.MatchResources = &admissionregistrationv1.MatchResources{}
		}
		if b.Spec.MatchResources.NamespaceSelector == nil {
			b.Spec.MatchResources.NamespaceSelector = &metav1.LabelSelector{}
		}
		sel := b.Spec.MatchResources.NamespaceSelector
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{Key: sideLabel, Operator: metav1.LabelSelectorOpDoesNotExist})
	}
	return cp.InstallPolicy(ctx, policy, bindings...)
}

// installAgent installs an agent as its chart does (Deployment, claim on a pre-bound volume)
// in a namespace labelled sideLabel=label (unless ""), and waits for its Tentacle pod to run.
func installAgent(ctx context.Context, cp *controlplane.ControlPlane, a tentacle.Agent, label string) error {
	ns := Namespace(a.Namespace)
	if label != "" {
		ns.Labels = map[string]string{sideLabel: label}
	}
	if err := cp.Client.Create(ctx, ns); err != nil {
		return err
	}
	if _, err := cp.CreateNamespace(ctx, a.Namespace); err != nil { // waits for the default ServiceAccount
		return err
	}
	for _, o := range []client.Object{a.ServiceAccounts()[0], a.ServiceAccounts()[1], a.Volume(a.StorageClass), a.Claim(), a.Deployment()} {
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
