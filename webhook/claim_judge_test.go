package webhook

import (
	"context"
	"errors"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/go-logr/logr"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// classReader answers for StorageClasses and Nodes the way the informer cache would, and
// counts what is asked of it; listErr makes every list of PersistentVolumes fail (the live
// reader of an overloaded or throttling API server).
type classReader struct {
	classes []storagev1.StorageClass
	nodes   int
	listErr error
	pvLists int
}

func (r *classReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if sc, ok := obj.(*storagev1.StorageClass); ok {
		for _, c := range r.classes {
			if c.Name == key.Name {
				*sc = c
				return nil
			}
		}
	}
	return apierrors.NewNotFound(schema.GroupResource{Resource: "storageclasses"}, key.Name)
}

func (r *classReader) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	switch l := list.(type) {
	case *storagev1.StorageClassList:
		l.Items = r.classes
	case *corev1.NodeList:
		l.Items = make([]corev1.Node, r.nodes)
	case *corev1.PersistentVolumeList:
		r.pvLists++
		if r.listErr != nil {
			return r.listErr
		}
		l.Items = nil
	}
	return nil
}

func rwxClaim(class *string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-prod-pvc", Namespace: "octopus-agent-prod"},
		Spec:       corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, StorageClassName: class},
	}
}

func storageClass(name, provisioner string, isDefault bool) storagev1.StorageClass {
	c := storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner}
	if isDefault {
		c.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
	}
	return c
}

func TestClaimJudgeBoundAndStaticClaims(t *testing.T) {
	ebsDefault := storageClass("gp2", "ebs.csi.aws.com", true)
	cases := []struct {
		name  string
		claim func() *corev1.PersistentVolumeClaim
		want  reason.Code
		deny  bool
	}{
		{"class-less claim Bound before the EBS default existed: the volume decides", func() *corev1.PersistentVolumeClaim {
			c := rwxClaim(nil)
			c.Spec.VolumeName, c.Status.Phase, c.Status.AccessModes = "nfs-static", corev1.ClaimBound, c.Spec.AccessModes
			return c
		}, reason.ReadWriteManyBound, false},
		{"Bound claim whose class was deleted", func() *corev1.PersistentVolumeClaim {
			c := rwxClaim(ptr.To("gone"))
			c.Spec.VolumeName, c.Status.Phase, c.Status.AccessModes = "pv-1", corev1.ClaimBound, c.Spec.AccessModes
			return c
		}, reason.ReadWriteManyBound, false},
		{"Bound claim of an existing EBS class: that class made the volume and is judged", func() *corev1.PersistentVolumeClaim {
			c := rwxClaim(ptr.To("gp2"))
			c.Spec.VolumeName, c.Status.Phase, c.Status.AccessModes = "pv-2", corev1.ClaimBound, c.Spec.AccessModes
			return c
		}, reason.ReadWriteManyUnsupported, true},
		{"unbound class-less claim: judged by today's default (claim time)", func() *corev1.PersistentVolumeClaim { return rwxClaim(nil) },
			reason.ReadWriteManyUnsupported, true},
		{"the chart's NFS claim: volumeName and a class that does not exist", func() *corev1.PersistentVolumeClaim {
			c := rwxClaim(ptr.To("octopus-agent-nfs-prod-csi"))
			c.Spec.VolumeName = "octopus-agent-nfs-prod-pv-10gi"
			return c
		}, reason.StaticallyBound, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache := &classReader{classes: []storagev1.StorageClass{ebsDefault}, nodes: 3}
			live := &classReader{}
			j := &ClaimJudge{Cache: cache, Live: live}
			v, err := j.Judge(context.Background(), c.claim())
			if err != nil {
				t.Fatal(err)
			}
			if v.Code != c.want || v.Denied != c.deny {
				t.Fatalf("got %s denied=%v (%s), want %s denied=%v", v.Code, v.Denied, v.Message, c.want, c.deny)
			}
			if len(v.Warnings) > 0 && !c.deny {
				t.Fatalf("false warning: %v", v.Warnings)
			}
			if live.pvLists != 0 {
				t.Fatalf("%d live listings of PersistentVolumes; the table or the binding decides here", live.pvLists)
			}
		})
	}
}

// The claim webhooks are failurePolicy Ignore: our own trouble reading facts (throttling, a
// 5xx, a listing past its bound) admits with a warning and is recorded, never refuses.
func TestClaimCheckFailuresAdmitWithAWarning(t *testing.T) {
	for name, listErr := range map[string]error{
		"throttled":    apierrors.NewTooManyRequests("slow down", 1),
		"server error": apierrors.NewInternalError(errors.New("etcdserver: request timed out")),
	} {
		t.Run(name, func(t *testing.T) {
			live := &classReader{listErr: listErr}
			cache := &classReader{classes: []storagev1.StorageClass{storageClass("mystery", "csi.example.com", false)}, nodes: 3}
			v := &ClaimValidator{Decoder: admission.NewDecoder(runtime.NewScheme()),
				Claims:   &ClaimJudge{Cache: cache, Live: live, DenyUnknown: true},
				Recorder: &audit.Recorder{Log: logr.Discard()}}
			claim := rwxClaim(ptr.To("mystery"))
			req := request(t, admissionv1.Create, claim, nil)
			req.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}
			resp := v.Handle(context.Background(), req)
			if !resp.Allowed {
				t.Fatalf("refused on our own failure: %s", resp.Result.Message)
			}
			if got := resp.AuditAnnotations[audit.KeyReason]; got != string(reason.CapabilityCheckFailed) {
				t.Fatalf("audit reason %q, want %s", got, reason.CapabilityCheckFailed)
			}
			if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "admitted unchecked") {
				t.Fatalf("warnings %v", resp.Warnings)
			}
			if live.pvLists != 1 {
				t.Fatalf("%d PersistentVolume listings, want exactly 1 (the refusal's alternatives reuse it)", live.pvLists)
			}
		})
	}
}

// Cluster evidence is read in one bounded listing for the claim and every alternative class.
func TestClaimEvidenceIsListedOnce(t *testing.T) {
	live := &classReader{}
	classes := []storagev1.StorageClass{storageClass("mystery", "csi.example.com", false), storageClass("other", "csi.other.example", false),
		storageClass("third", "csi.third.example", false)}
	j := &ClaimJudge{Cache: &classReader{classes: classes, nodes: 3}, Live: live, DenyUnknown: true}
	v, err := j.Judge(context.Background(), rwxClaim(ptr.To("mystery")))
	if err != nil || !v.Denied || v.Code != reason.ReadWriteManyUnknown {
		t.Fatalf("got %+v, %v", v, err)
	}
	if live.pvLists != 1 {
		t.Fatalf("%d listings for 3 unknown classes, want 1", live.pvLists)
	}
}

// A claim of a no-provisioner class needs the volumes twice, for cluster evidence and for
// "can it bind?": one listing serves both.
func TestClaimValidatorListsVolumesOnce(t *testing.T) {
	live := &classReader{}
	cache := &classReader{classes: []storagev1.StorageClass{storageClass("static", "kubernetes.io/no-provisioner", false)}, nodes: 3}
	v := &ClaimValidator{Decoder: admission.NewDecoder(runtime.NewScheme()), Claims: &ClaimJudge{Cache: cache, Live: live},
		Recorder: &audit.Recorder{Log: logr.Discard()}}
	claim := rwxClaim(ptr.To("static"))
	claim.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}
	req := request(t, admissionv1.Create, claim, nil)
	req.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}
	resp := v.Handle(context.Background(), req)
	if !resp.Allowed || resp.AuditAnnotations[audit.KeyReason] != string(reason.ClaimCannotBind) {
		t.Fatalf("allowed=%v reason %q: %s", resp.Allowed, resp.AuditAnnotations[audit.KeyReason], resp.Result.Message)
	}
	if live.pvLists != 1 {
		t.Fatalf("%d PersistentVolume listings, want 1", live.pvLists)
	}
}
