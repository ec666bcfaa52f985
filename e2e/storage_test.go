package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
)

// warnings collects the admission warnings the API server returns, as kubectl prints them.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.msgs, "\n")
}

func clientWithWarnings(t *testing.T) (client.Client, *warnings) {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(cp.Config)
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{})
	must(t, err)
	return c, w
}

func class(name, provisioner string, annotations map[string]string) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}, Provisioner: provisioner,
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)}
}

// agentClaim is the chart's claim (its labels select it for validation) asking for modes.
func withParams(c *storagev1.StorageClass, kv ...string) *storagev1.StorageClass {
	c.Parameters = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Parameters[kv[i]] = kv[i+1]
	}
	return c
}

func agentClaim(ns, release string, className *string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	a := tentacle.Agent{Namespace: ns, Release: release, AccessModes: modes}
	c := a.Claim()
	c.Spec.StorageClassName = className
	c.Spec.VolumeName = ""
	return c
}

func createClasses(t *testing.T, ctx context.Context, classes ...*storagev1.StorageClass) {
	t.Helper()
	for _, c := range classes {
		if err := cp.Client.Create(ctx, c); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond) // the webhook's StorageClass informer
}

func TestReadWriteManyClaims(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	createClasses(t, ctx,
		class("e2e-gp2", "ebs.csi.aws.com", nil),
		withParams(class("e2e-efs", "efs.csi.aws.com", nil), "provisioningMode", "efs-ap"),
		class("e2e-gp2-declared", "ebs.csi.aws.com", map[string]string{storage.AnnotationAccessModes: `["ReadWriteOnce","ReadWriteMany"]`}),
		class("e2e-mystery", "csi.example.com", nil),
	)
	ns := "octopus-agent-claims"
	_, err := cp.CreateNamespace(ctx, ns)
	must(t, err)
	c, warned := clientWithWarnings(t)

	t.Run("EBS-like class refuses RWX at once, naming what to use instead", func(t *testing.T) {
		err := c.Create(ctx, agentClaim(ns, "ebs", ptr.To("e2e-gp2"), corev1.ReadWriteMany))
		if err == nil {
			t.Fatal("RWX claim on an EBS class admitted")
		}
		if !apierrors.IsForbidden(err) {
			t.Errorf("want Forbidden, got %v", err)
		}
		for _, want := range []string{
			`admission webhook "agent-claim-access-modes.workspace-webhook.io" denied the request`,
			"PersistentVolumeClaim octopus-agent-claims/octopus-agent-ebs-pvc asks for ReadWriteMany",
			`StorageClass "e2e-gp2" (provisioner ebs.csi.aws.com) cannot serve it`,
			"It would stay Pending for ever",
			"e2e-efs", "e2e-gp2-declared", // the RWX-capable classes of this cluster
			"ReadWriteOnce",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal lacks %q:\n%v", want, err)
			}
		}
		t.Logf("kubectl shows: Error from server (Forbidden): error when creating \"pvc.yaml\": %v", err)
	})
	t.Run("EFS-like class admits RWX", func(t *testing.T) {
		must(t, c.Create(ctx, agentClaim(ns, "efs", ptr.To("e2e-efs"), corev1.ReadWriteMany)))
	})
	t.Run("annotation on the class overrides the table", func(t *testing.T) {
		must(t, c.Create(ctx, agentClaim(ns, "declared", ptr.To("e2e-gp2-declared"), corev1.ReadWriteMany)))
	})
	t.Run("RWO on an EBS class is not judged", func(t *testing.T) {
		must(t, c.Create(ctx, agentClaim(ns, "rwo", ptr.To("e2e-gp2"), corev1.ReadWriteOnce)))
	})
	t.Run("unknown provisioner is admitted with a warning kubectl shows", func(t *testing.T) {
		must(t, c.Create(ctx, agentClaim(ns, "mystery", ptr.To("e2e-mystery"), corev1.ReadWriteMany)))
		if w := warned.all(); !strings.Contains(w, `cannot tell whether StorageClass "e2e-mystery" (provisioner csi.example.com) can serve ReadWriteMany`) ||
			!strings.Contains(w, "kubectl annotate storageclass e2e-mystery") {
			t.Errorf("no usable warning, got: %q", w)
		}
	})
	t.Run("dry-run is judged the same and has no side effects", func(t *testing.T) {
		eventsBefore := eventCount(t, ctx, ns, string(reason.ReadWriteManyUnsupported))
		claim := agentClaim(ns, "dryrun", ptr.To("e2e-gp2"), corev1.ReadWriteMany)
		err := c.Create(ctx, claim, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "cannot serve it") {
			t.Fatalf("dry-run not refused the same way: %v", err)
		}
		must(t, c.Create(ctx, agentClaim(ns, "dryrun-ok", ptr.To("e2e-efs"), corev1.ReadWriteMany), client.DryRunAll))
		var got corev1.PersistentVolumeClaim
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "octopus-agent-dryrun-ok-pvc"}, &got); !apierrors.IsNotFound(err) {
			t.Errorf("dry-run created the claim: %v", err)
		}
		time.Sleep(2 * time.Second) // Events are sent asynchronously; give a wrong one time to appear
		if after := eventCount(t, ctx, ns, string(reason.ReadWriteManyUnsupported)); after != eventsBefore {
			t.Errorf("dry-run refusal recorded an Event (%d -> %d)", eventsBefore, after)
		}
	})
	t.Run("the refusal is an Event on the namespace", func(t *testing.T) {
		eventually(t, ctx, "claim refusal Event", func() (bool, string) {
			return eventCount(t, ctx, ns, string(reason.ReadWriteManyUnsupported)) > 0, ""
		})
	})
}

func eventCount(t *testing.T, ctx context.Context, ns, reasonCode string) int {
	t.Helper()
	var list eventsv1.EventList
	must(t, cp.Client.List(ctx, &list, client.InNamespace(ns)))
	n := 0
	for _, e := range list.Items {
		if e.Reason == reasonCode {
			n++
		}
	}
	return n
}

// The class is resolved as Kubernetes resolves it: the default class when none is named,
// none at all for "".
func TestClaimClassResolution(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	createClasses(t, ctx, class("e2e-default-gp2", "ebs.csi.aws.com", map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}))
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), class("e2e-default-gp2", "", nil)) })
	ns := "octopus-agent-default-class"
	_, err := cp.CreateNamespace(ctx, ns)
	must(t, err)
	err = cp.Client.Create(ctx, agentClaim(ns, "nil", nil, corev1.ReadWriteMany))
	if err == nil || !strings.Contains(err.Error(), `StorageClass "e2e-default-gp2"`) {
		t.Fatalf("claim with no class must be judged on the default class, got %v", err)
	}
	must(t, cp.Client.Create(ctx, agentClaim(ns, "static", ptr.To(""), corev1.ReadWriteMany)))
}

// Scope: the agent's claims everywhere, every claim in opted-in namespaces, never kube-system.
func TestClaimValidationScope(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	createClasses(t, ctx, class("e2e-gp2", "ebs.csi.aws.com", nil))
	plain := func(ns string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "app-data", Namespace: ns},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: rwx, StorageClassName: ptr.To("e2e-gp2"),
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	}
	_, err := cp.CreateNamespace(ctx, "unrelated-app")
	must(t, err)
	must(t, cp.Client.Create(ctx, plain("unrelated-app"))) // not an agent claim, namespace not opted in

	optedIn, err := cp.CreateNamespace(ctx, "opted-in-app")
	must(t, err)
	optedIn.Labels["workspace-webhook.io/validate-claims"] = "all"
	must(t, cp.Client.Update(ctx, optedIn))
	if err := cp.Client.Create(ctx, plain("opted-in-app")); err == nil || !strings.Contains(err.Error(), "opted-in-claim-access-modes.workspace-webhook.io") {
		t.Fatalf("opted-in namespace: RWX claim on EBS not refused: %v", err)
	}
	// A nameOverride install's claim (app.kubernetes.io/name=<override>) is the agent chart's
	// all the same (helm.sh/chart=kubernetes-agent-...): judged and refused.
	_, err = cp.CreateNamespace(ctx, "octopus-agent-override")
	must(t, err)
	override := tentacle.Agent{Namespace: "octopus-agent-override", Release: "second", NameOverride: "build-agent", Storage: tentacle.StorageClass,
		StorageClass: "e2e-gp2", AccessModes: rwx, Generation: 2}.Claim()
	if override.Labels["app.kubernetes.io/name"] != "build-agent" {
		t.Fatalf("fixture: %v", override.Labels)
	}
	if err := cp.Client.Create(ctx, override); err == nil || !strings.Contains(err.Error(), "agent-claim-access-modes.workspace-webhook.io") {
		t.Fatalf("nameOverride claim: RWX on EBS not refused: %v", err)
	}
	// Another chart's claim in the same namespace is not ours to judge.
	other := plain("octopus-agent-override")
	other.Labels = map[string]string{"helm.sh/chart": "postgresql-16.4.1", "app.kubernetes.io/name": "postgresql"}
	must(t, cp.Client.Create(ctx, other))
	// kube-system is never judged, even for a claim that looks like the agent's.
	must(t, cp.Client.Create(ctx, agentClaim("kube-system", "sys", ptr.To("e2e-gp2"), corev1.ReadWriteMany)))
}

// A script pod whose workspace is an RWX claim on a class that cannot serve it is refused.
func TestScriptPodOnUnsupportedRWXClassIsRefused(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	createClasses(t, ctx, class("e2e-gp2", "ebs.csi.aws.com", nil))
	// Installed before the webhook existed: the claim is not the chart's (no labels), so the
	// claim webhook let it through, and a volume was bound to it by hand.
	a := tentacle.Agent{Namespace: "octopus-agent-legacy-rwx", Release: "prod", AccessModes: rwx, StorageClass: "e2e-gp2", NodeSelector: onNode("node-1")}
	_, err := cp.CreateNamespace(ctx, a.Namespace)
	must(t, err)
	for _, sa := range a.ServiceAccounts() {
		must(t, cp.Client.Create(ctx, sa))
	}
	claim := a.Claim()
	claim.Labels = nil
	must(t, cp.Client.Create(ctx, a.Volume(a.StorageClass)))
	must(t, cp.Client.Create(ctx, claim))
	must(t, cp.Client.Create(ctx, a.Deployment()))
	waitTentacleRunning(t, ctx, a)

	err = createScriptPod(t, ctx, a.ScriptPod("legacy01", tentacle.StyleV2))
	if err == nil {
		t.Fatal("script pod on an RWX claim of an EBS class admitted")
	}
	for _, want := range []string{`admission webhook "script-pod-workspace.workspace-webhook.io" denied the request`,
		"script pod refused: its workspace PersistentVolumeClaim octopus-agent-legacy-rwx/octopus-agent-prod-pvc asks for ReadWriteMany",
		`"e2e-gp2" (provisioner ebs.csi.aws.com) cannot serve it`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}
	// The refusal moved from the validating webhook to the mutating one with its audit trail:
	// the mutating webhook's audit annotations name the code, the class and its provisioner.
	ev := findAudit(t, "pods", a.Namespace, a.ScriptPod("legacy01", tentacle.StyleV2).Name)
	wantAnnotations(t, ev, mutatingPrefix, map[string]string{"decision": "denied", "reason": "ReadWriteManyUnsupported",
		"storage-class": "e2e-gp2", "provisioner": "ebs.csi.aws.com", "claim": a.ClaimName()})
}
