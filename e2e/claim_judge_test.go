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
	must(t, agent.IndexFields(ctx, c))
	for _, obj := range []client.Object{&storagev1.StorageClass{}, &corev1.PersistentVolume{}} {
		_, err := c.GetInformer(ctx, obj)
		must(t, err)
	}
	cacheCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = c.Start(cacheCtx) }()

	claim := agentClaim("octopus-agent-judge", "mystery", ptr.To("e2e-mystery"), corev1.ReadWriteMany)
	strict := &wh.ClaimJudge{Cache: c, DenyUnknown: true}
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
