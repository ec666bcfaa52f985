package e2e

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	wh "github.com/octopus-agent-tools/workspace-webhook/webhook"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
)

// The admin's choices: deny unknown classes, and an override file, judged over a real
// informer cache of the e2e API server (the same cache setup the webhook uses).
func TestClaimJudgeAdminChoices(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	createClasses(t, ctx, class("e2e-mystery", "csi.example.com", nil), class("e2e-gp2", "ebs.csi.aws.com", nil))

	c, err := cache.New(cp.Config, cache.Options{ByObject: agent.CacheByObject()})
	must(t, err)
	_, err = c.GetInformer(ctx, &storagev1.StorageClass{})
	must(t, err)
	cacheCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = c.Start(cacheCtx) }()

	claim := agentClaim("octopus-agent-judge", "mystery", ptr.To("e2e-mystery"), corev1.ReadWriteMany)
	strict := &wh.ClaimJudge{Cache: c, Live: cp.Client, DenyUnknown: true}
	eventually(t, ctx, "cache synced", func() (bool, string) { return c.WaitForCacheSync(ctx), "" })

	v, err := strict.Judge(ctx, claim)
	must(t, err)
	if !v.Denied || v.Code != reason.ReadWriteManyUnknown || !strings.Contains(v.Message, "unknown capability") {
		t.Fatalf("deny-unknown: got %+v", v)
	}

	overrides, err := storage.ParseOverrides([]byte("overrides:\n  - provisioner: csi.example.com\n    readWriteMany: {filesystem: true}\n    reason: our NAS serves every node\n"), "test-overrides.yaml")
	must(t, err)
	strict.Overrides = func() *storage.Overrides { return overrides }
	v, err = strict.Judge(ctx, claim)
	must(t, err)
	if v.Denied || v.Code != reason.ReadWriteManySupported || v.Answer.Source != storage.SourceOverride {
		t.Fatalf("override file: got %+v", v)
	}
	// A provisioner the override file does not name is still judged by the built-in table.
	gp2 := agentClaim("octopus-agent-judge", "gp2", ptr.To("e2e-gp2"), corev1.ReadWriteMany)
	v, err = strict.Judge(ctx, gp2)
	must(t, err)
	if !v.Denied || v.Code != reason.ReadWriteManyUnsupported || v.Answer.Source != storage.SourceTable {
		t.Fatalf("table: got %+v", v)
	}
}

// A Bound ReadWriteMany volume of a class proves the class can serve it: the evidence is read
// live (volumes are not cached) and decides where nothing else does.
func TestBoundRWXVolumeIsEvidence(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	createClasses(t, ctx, class("e2e-evidence", "csi.unknown-nas.example", nil))
	a := tentacle.Agent{Namespace: "app-with-nas", Release: "nas", AccessModes: rwx, StorageClass: "e2e-evidence"}
	_, err := cp.CreateNamespace(ctx, a.Namespace)
	must(t, err)
	claim := a.Claim()
	claim.Labels = nil // an application's claim, not the agent's: not validated
	must(t, cp.Client.Create(ctx, a.Volume(a.StorageClass)))
	must(t, cp.Client.Create(ctx, claim))
	eventually(t, ctx, "volume Bound", func() (bool, string) {
		pv := a.Volume(a.StorageClass)
		must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(pv), pv))
		return pv.Status.Phase == corev1.VolumeBound, string(pv.Status.Phase)
	})
	judge := &wh.ClaimJudge{Cache: cp.Client, Live: cp.Client}
	v, err := judge.Judge(ctx, agentClaim("octopus-agent-nas", "prod", ptr.To("e2e-evidence"), corev1.ReadWriteMany))
	must(t, err)
	if v.Denied || v.Code != reason.ReadWriteManySupported || v.Answer.Source != storage.SourceEvidence ||
		!strings.Contains(v.Answer.Reference, a.VolumeName()) {
		t.Fatalf("want Supported from ClusterEvidence citing %s, got %+v", a.VolumeName(), v)
	}
}

// The claim webhooks are failurePolicy Ignore, and so is the webhook about its own failures:
// a second webhook process whose identity may not list PersistentVolumes (the real API server
// answers its evidence listing with 403) and that refuses unknown classes admits an agent's
// RWX claim on an unknown class with a warning saying it is unchecked, and records it.
func TestClaimCheckFailureAdmitsWithAWarning(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	const user = "e2e-webhook-without-pv-list"
	const ns = "octopus-agent-check-fails"
	_, err := cp.CreateNamespace(ctx, ns)
	must(t, err)
	createClasses(t, ctx, class("e2e-mystery-nas", "csi.mystery-nas.example", nil))
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "persistentvolumeclaims", "nodes"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"events.k8s.io", ""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: user},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}}}
	for _, o := range []client.Object{role, binding} {
		must(t, cp.Client.Create(ctx, o))
		t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), o) })
	}

	wio := cp.WebhookInstallOptions
	addr := freeAddr()
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	_, v := manifestWebhooks(t)
	var entry admissionregistrationv1.ValidatingWebhook
	for _, w := range v.Webhooks {
		if w.Name == "agent-claim-access-modes.workspace-webhook.io" {
			entry = w
		}
	}
	url := fmt.Sprintf("https://%s:%d%s", wio.LocalServingHost, port, *entry.ClientConfig.Service.Path)
	entry.Name = "no-pv-list-claim-access-modes.workspace-webhook.io"
	entry.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: wio.LocalServingCAData}
	entry.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "e2e-no-pv-list"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{entry}}
	must(t, cp.Client.Create(ctx, cfg))
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), cfg) })

	opts := app.DefaultOptions()
	opts.Host, opts.Port, opts.CertDir = wio.LocalServingHost, port, wio.LocalServingCertDir
	opts.MetricsAddr, opts.ProbeAddr = "0", freeAddr()
	opts.DenyUnknownCapability = true
	restricted := rest.CopyConfig(cp.Config)
	restricted.Impersonate = rest.ImpersonationConfig{UserName: user}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	log := &syncBuffer{}
	go func() { done <- app.Run(runCtx, restricted, opts, zap.New(zap.WriteTo(log))) }()
	t.Cleanup(func() { stop(); <-done })
	must(t, controlplane.WaitOK(ctx, "http://"+opts.ProbeAddr+"/readyz", 60*time.Second))

	c, warns := clientWithWarnings(t)
	claim := agentClaim(ns, "nas", ptr.To("e2e-mystery-nas"), corev1.ReadWriteMany)
	eventually(t, ctx, "the restricted webhook answers", func() (bool, string) {
		if err := c.Create(ctx, claim.DeepCopy(), client.DryRunAll); err != nil {
			t.Fatalf("refused on the webhook's own failure: %v", err)
		}
		return strings.Contains(warns.all(), "admitted unchecked"), warns.all()
	})
	must(t, c.Create(ctx, claim))
	if w := warns.all(); !strings.Contains(w, "forbidden") || !strings.Contains(w, "PersistentVolumes") {
		t.Fatalf("the warning does not say what failed: %s", w)
	}
	if !strings.Contains(log.String(), string(reason.CapabilityCheckFailed)) {
		t.Fatalf("CapabilityCheckFailed not in the restricted webhook's decision log:\n%s", log.String())
	}
}
