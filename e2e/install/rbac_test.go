package install

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/octopus-agent-tools/workspace-webhook/certs"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// applyRBAC creates, for real, the namespace, service account and RBAC objects of a flavour.
func applyRBAC(t *testing.T, ctx context.Context, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			if err := c.Create(ctx, o.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
	}
}

func webhookConfigs(t *testing.T, objs []*unstructured.Unstructured) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	t.Helper()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	find(t, objs, "MutatingWebhookConfiguration", "", m)
	find(t, objs, "ValidatingWebhookConfiguration", "", v)
	return m, v
}

// The webhook runs with only the rendered RBAC: it becomes ready, pins a script pod, reads
// claims, volumes and attachments live, records Events, follows a namespace's enforcement
// label; a request outside the grant is refused.
func TestRenderedRBACIsSufficientAndLeast(t *testing.T) {
	objs := render(t, "cert-manager", false)
	m, v := webhookConfigs(t, objs)
	cp := start(t, controlplane.Options{WebhookInstallOptions: envtest.WebhookInstallOptions{
		MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{m}, ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{v}}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	applyRBAC(t, ctx, cp.Client, objs)

	wio := cp.WebhookInstallOptions
	opts := app.DefaultOptions()
	opts.Host, opts.Port, opts.CertDir, opts.Namespace = wio.LocalServingHost, wio.LocalServingPort, wio.LocalServingCertDir, webhookNS
	opts.MetricsAddr, opts.ProbeAddr = "0", freeAddr(t)
	log := &logBuffer{}
	mgr, err := app.NewManager(asServiceAccount(cp.Config), opts, zap.New(zap.WriteTo(log)))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
	// Ready as the kubelet sees it: /readyz (informer caches synced, webhook server up, the
	// served certificate valid) answers 200.
	waitFor(t, ctx, "webhook /readyz with the rendered RBAC", func() bool {
		resp, err := http.Get("http://" + opts.ProbeAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// An agent whose Tentacle runs on node-a (no kubelet here: the status is set by hand).
	a := tentacle.Agent{Namespace: "octopus-agent-rbac", Release: "prod", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}
	must(t, cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.Namespace}}))
	must(t, cp.Client.Create(ctx, a.Claim()))
	tp := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-tentacle-0", Namespace: a.Namespace, Labels: a.TentacleLabels()},
		Spec: a.Deployment().Spec.Template.Spec}
	tp.Spec.NodeName = "node-a"
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{"kubernetes.io/hostname": "node-a", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}}}
	must(t, cp.Client.Create(ctx, node))
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}
	must(t, cp.Client.Status().Update(ctx, node))
	must(t, cp.Client.Create(ctx, tp))
	tp.Status.Phase = corev1.PodRunning
	must(t, cp.Client.Status().Update(ctx, tp))

	var pod *corev1.Pod
	var last error
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last script pod creation error: %v", last)
		}
	})
	waitFor(t, ctx, "script pod admitted and pinned", func() bool {
		pod = a.ScriptPod("rbac01", tentacle.StyleV2)
		last = cp.Client.Create(ctx, pod)
		return last == nil
	})
	if !workspace.IsPinned(pod, "node-a") {
		t.Fatalf("not pinned with the rendered RBAC: %+v", pod.Spec.Affinity)
	}

	// A claim the cache does not hold (no chart label) is read live; with no Tentacle
	// running, attachments are listed live; the refusal is recorded as an Event.
	b := tentacle.Agent{Namespace: "octopus-agent-rbac2", Release: "prod", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}
	must(t, cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.Namespace}}))
	claim := b.Claim()
	claim.Labels = nil
	must(t, cp.Client.Create(ctx, claim))
	if err := cp.Client.Create(ctx, b.ScriptPod("rbac02", tentacle.StyleV2)); err == nil || !strings.Contains(err.Error(), "no node holds it yet") {
		t.Fatalf("want the no-node refusal (after a live claim GET and attachment LIST), got %v", err)
	}

	// RWX on a class nobody knows: StorageClasses from the cache, volumes listed live.
	must(t, cp.Client.Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "mystery"}, Provisioner: "csi.example.com"}))
	time.Sleep(500 * time.Millisecond)
	rwx := a.Claim()
	rwx.Name, rwx.Spec.AccessModes, rwx.Spec.StorageClassName, rwx.Spec.VolumeName = "rwx-claim", []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, ptr.To("mystery"), ""
	must(t, cp.Client.Create(ctx, rwx))

	waitFor(t, ctx, "denial Event recorded by the webhook's identity", func() bool {
		var list eventsv1.EventList
		must(t, cp.Client.List(ctx, &list, client.InNamespace(b.Namespace)))
		for _, e := range list.Items {
			if e.ReportingController == "workspace-webhook" {
				return true
			}
		}
		return false
	})
	// The namespace's enforcement label, read from the metadata-only namespace cache: labelled
	// warn by a cluster admin, the same refused pod is admitted.
	must(t, cp.Client.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.Namespace}},
		client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"workspace-webhook.io/enforcement":"warn"}}}`))))
	waitFor(t, ctx, "the refused pod admitted in warn mode", func() bool {
		last = cp.Client.Create(ctx, b.ScriptPod("rbac03", tentacle.StyleV2))
		return last == nil
	})
	if strings.Contains(strings.ToLower(log.String()), "forbidden") {
		t.Fatalf("the webhook hit a permission error with the rendered RBAC:\n%s", log.String())
	}

	// Least privilege: outside the grant is refused.
	sa, err := client.New(asServiceAccount(cp.Config), client.Options{})
	must(t, err)
	for what, err := range map[string]error{
		"list secrets cluster-wide":    sa.List(ctx, &corev1.SecretList{}),
		"get the webhook's own secret": sa.Get(ctx, client.ObjectKey{Namespace: webhookNS, Name: "workspace-webhook-tls"}, &corev1.Secret{}),
		"cordon a node":                sa.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"unschedulable":true}}`))),
		"delete a volume":              sa.Delete(ctx, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-x"}}),
		"delete an event":              sa.DeleteAllOf(ctx, &eventsv1.Event{}, client.InNamespace(b.Namespace)),
		"get another secret":           sa.Get(ctx, client.ObjectKey{Namespace: "default", Name: "x"}, &corev1.Secret{}),
		"create a pod":                 sa.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: a.Namespace}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}),
		"update a claim":               sa.Update(ctx, a.Claim()),
		"read a configmap":             sa.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kube-root-ca.crt"}, &corev1.ConfigMap{}),
		"patch webhook conf":           sa.Patch(ctx, m.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"x":"y"}}}`))),
		// Namespaces: list/watch for the enforcement label's cache, nothing else.
		"get a namespace": sa.Get(ctx, client.ObjectKey{Name: a.Namespace}, &corev1.Namespace{}),
		"label a namespace": sa.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.Namespace}},
			client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"workspace-webhook.io/enforcement":"warn"}}}`))),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: want Forbidden, got %v", what, err)
		}
	}
}

// The self-managed flavour's extra RBAC is enough to bootstrap the CA and inject it, and no
// more: other Secrets and other webhook configurations are out of reach.
func TestSelfManagedRBACIsSufficientAndLeast(t *testing.T) {
	objs := render(t, "self-managed", false)
	cp := start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	applyRBAC(t, ctx, cp.Client, objs)
	m, v := webhookConfigs(t, objs)
	must(t, cp.Client.Create(ctx, m)) // no pods are created here, so the unreachable Service is harmless
	must(t, cp.Client.Create(ctx, v))

	sa, err := client.New(asServiceAccount(cp.Config), client.Options{})
	must(t, err)
	cm, err := certs.NewManager(sa, certs.Options{Namespace: webhookNS, SecretName: "workspace-webhook-tls", ServiceName: "workspace-webhook",
		MutatingWebhookConfigName: m.Name, ValidatingWebhookConfigName: v.Name, CertDir: t.TempDir()})
	must(t, err)
	if err := cm.Ensure(ctx); err != nil {
		t.Fatalf("self-managed certificates with the rendered RBAC: %v", err)
	}
	must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(m), m))
	for _, w := range m.Webhooks {
		if len(w.ClientConfig.CABundle) == 0 {
			t.Fatalf("caBundle not injected into %s", w.Name)
		}
	}

	other := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses"}}
	must(t, cp.Client.Create(ctx, other))
	for what, err := range map[string]error{
		"get another secret":    sa.Get(ctx, client.ObjectKey{Namespace: webhookNS, Name: "other"}, &corev1.Secret{}),
		"list secrets":          sa.List(ctx, &corev1.SecretList{}, client.InNamespace(webhookNS)),
		"create a secret there": sa.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}}),
		"patch another webhook": sa.Patch(ctx, other, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"x":"y"}}}`))),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: want Forbidden, got %v", what, err)
		}
	}
}

// freeAddr is a loopback address nothing listens on, for the probe endpoint.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
