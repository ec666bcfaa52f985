package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
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
	if after := decisions(t); after["mutate-pod/mutated/WorkspaceShared"] != before["mutate-pod/mutated/WorkspaceShared"]+1 {
		t.Fatalf("the script pod's decision (class judged by the bound volume) not recorded as WorkspaceShared: %v", after)
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

// The agent chart's migration off NFS onto an existing volume through a class with no
// provisioner: with persistence.size unlike the volume's capacity the re-created claim could
// never bind; the claim webhook says so at creation, with the size to set. With the size set,
// it binds and no warning is shown.
func TestMigrationClaimThatCanNeverBindIsWarned(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	nas := class("e2e-static-nas", "kubernetes.io/no-provisioner", map[string]string{
		"workspace-webhook.io/supported-access-modes": `["ReadWriteOnce","ReadWriteMany"]`})
	nas.VolumeBindingMode = ptr.To(storagev1.VolumeBindingImmediate)
	createClasses(t, ctx, nas)
	pv := tentacle.Agent{Namespace: "octopus-agent-migrated", Release: "migrated", Generation: 3, StorageClass: "e2e-static-nas", AccessModes: rwx}.Volume("e2e-static-nas")
	pv.Name, pv.Spec.ClaimRef = "e2e-nas-share-8gi", nil
	pv.Spec.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")}
	must(t, cp.Client.Create(ctx, pv))

	a := tentacle.Agent{Namespace: "octopus-agent-migrated", Release: "migrated", Generation: 3, Storage: tentacle.StorageClass,
		StorageClass: "e2e-static-nas", AccessModes: rwx}
	_, err := cp.CreateNamespace(ctx, a.Namespace)
	must(t, err)
	c, warns := clientWithWarnings(t)
	before := decisions(t)
	must(t, c.Create(ctx, a.Claim(), client.DryRunAll)) // helm upgrade as the chart renders it: 10Gi
	w := warns.all()
	for _, want := range []string{"can only bind to an existing volume", "e2e-nas-share-8gi (8Gi", "--set persistence.size=8Gi"} {
		if !strings.Contains(w, want) {
			t.Fatalf("warning lacks %q: %q", want, w)
		}
	}
	if after := decisions(t); after["validate-pvc/allowed/ClaimCannotBind"] != before["validate-pvc/allowed/ClaimCannotBind"]+1 {
		t.Fatalf("not recorded as ClaimCannotBind: %v", after)
	}

	// --set persistence.size=8Gi: no warning, and it binds.
	c, warns = clientWithWarnings(t)
	claim := a.Claim()
	claim.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("8Gi")
	must(t, c.Create(ctx, claim))
	if w := warns.all(); w != "" {
		t.Fatalf("warning on a claim that binds: %s", w)
	}
	eventually(t, ctx, "claim Bound to the static volume", func() (bool, string) {
		must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(claim), claim))
		return claim.Status.Phase == corev1.ClaimBound && claim.Spec.VolumeName == pv.Name, string(claim.Status.Phase)
	})
}
