package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	wh "github.com/octopus-agent-tools/workspace-webhook/webhook"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
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
