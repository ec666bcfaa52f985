package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
)

const defaultClassAnnotation = "storageclass.kubernetes.io/is-default-class"

// withoutDefaultClass makes no StorageClass the default for the rest of the test, restoring
// any it changes afterwards.
func withoutDefaultClass(t *testing.T, ctx context.Context) {
	t.Helper()
	var list storagev1.StorageClassList
	must(t, cp.Client.List(ctx, &list))
	for i := range list.Items {
		c := &list.Items[i]
		if c.Annotations[defaultClassAnnotation] != "true" {
			continue
		}
		name := c.Name
		must(t, cp.Client.Patch(ctx, c, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"`+defaultClassAnnotation+`":"false"}}}`))))
		t.Cleanup(func() {
			c := &storagev1.StorageClass{}
			c.Name = name
			_ = cp.Client.Patch(context.Background(), c, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"`+defaultClassAnnotation+`":"true"}}}`)))
		})
	}
}

// A class-less claim bound to a static ReadWriteMany volume before any default class existed
// keeps working once an EBS class becomes the default: Kubernetes never re-classes a bound
// claim, and the webhook judges it by what it is bound to.
func TestBoundClaimIsJudgedByItsVolumeNotTodaysDefault(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	withoutDefaultClass(t, ctx)
	a := tentacle.Agent{Namespace: "octopus-agent-bound-rwx", Release: "bound", Generation: 2, Storage: tentacle.StorageDefaultClass,
		AccessModes: rwx, NodeSelector: onNode("node-2")}
	installAgent(t, ctx, a, true)
	claim := a.Claim()
	eventually(t, ctx, "claim Bound with no class", func() (bool, string) {
		must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(claim), claim))
		return claim.Status.Phase == corev1.ClaimBound, string(claim.Status.Phase)
	})
	if claim.Spec.StorageClassName != nil && *claim.Spec.StorageClassName != "" {
		t.Fatalf("fixture: claim got class %q", *claim.Spec.StorageClassName)
	}

	late := class("e2e-late-default-gp2", "ebs.csi.aws.com", map[string]string{defaultClassAnnotation: "true"})
	createClasses(t, ctx, late)
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), late) })

	before := decisions(t)
	pod := a.ScriptPod("bound01", tentacle.StyleV2)
	must(t, createScriptPod(t, ctx, pod))
	if after := decisions(t); after["validate-pod/allowed/WorkspaceValid"] != before["validate-pod/allowed/WorkspaceValid"]+1 {
		t.Fatalf("validating decision not recorded as WorkspaceValid: %v", after)
	}
	must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(claim), claim))
	if claim.Spec.StorageClassName != nil && *claim.Spec.StorageClassName != "" {
		t.Fatalf("the Bound claim was re-classed to %q", *claim.Spec.StorageClassName)
	}
}

// The chart's NFS claim (volumeName set, a class that does not exist) is judged by the volume
// it names: no "stays Pending" warning, nothing listed. Seen where claims are validated: a
// namespace opted in to validation of all its claims.
func TestNFSStaticClaimGetsNoFalseWarning(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-nfs-optin", Release: "nfs-optin", Generation: 2, Storage: tentacle.StorageNFS}
	ns, err := cp.CreateNamespace(ctx, a.Namespace)
	must(t, err)
	ns.Labels["workspace-webhook.io/validate-claims"] = "all"
	must(t, cp.Client.Update(ctx, ns))
	must(t, cp.Client.Create(ctx, a.Volume(a.NFSClassName())))

	c, warns := clientWithWarnings(t)
	before := decisions(t)
	must(t, c.Create(ctx, a.Claim()))
	if w := warns.all(); w != "" {
		t.Fatalf("false warning on the chart's NFS claim: %s", w)
	}
	if after := decisions(t); after["validate-pvc/allowed/StaticallyBound"] != before["validate-pvc/allowed/StaticallyBound"]+1 {
		t.Fatalf("claim not recorded as StaticallyBound: %v", after)
	}
	eventually(t, ctx, "NFS claim Bound", func() (bool, string) {
		claim := a.Claim()
		must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(claim), claim))
		return claim.Status.Phase == corev1.ClaimBound, string(claim.Status.Phase)
	})
}
