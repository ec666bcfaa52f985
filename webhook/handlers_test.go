package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// failingFinder stands for an API server that cannot be reached.
type failingFinder struct{}

func (failingFinder) Facts(context.Context, *corev1.Pod) (workspace.Facts, error) {
	return workspace.Facts{}, errors.New("connection refused")
}

// staticFinder returns fixed facts, to drive the handler without a cluster.
type staticFinder struct{ f workspace.Facts }

func (s staticFinder) Facts(_ context.Context, p *corev1.Pod) (workspace.Facts, error) {
	f := s.f
	f.Agent.Namespace = p.Namespace
	return f, nil
}

func request(t *testing.T, op admissionv1.Operation, obj runtime.Object, raw []byte) admission.Request {
	t.Helper()
	if obj != nil {
		var err error
		if raw, err = json.Marshal(obj); err != nil {
			t.Fatal(err)
		}
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "uid-1", Operation: op, Namespace: "octopus-agent-prod", Name: "octopus-script-1",
		Kind:   metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Object: runtime.RawExtension{Raw: raw},
	}}
}

func scriptPod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "octopus-script-1", Namespace: "octopus-agent-prod", Labels: map[string]string{"octopus.com/scriptTicketId": "1"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "script", Image: "busybox"}}},
	}
}

func mutator(f FactFinder) *PodMutator {
	return &PodMutator{Finder: f, Config: workspace.DefaultConfig(),
		ScriptPodLabel: "octopus.com/scriptTicketId", Recorder: &audit.Recorder{Log: logr.Discard()}}
}

func documented(c string) bool {
	for _, k := range reason.All() {
		if string(k) == c {
			return true
		}
	}
	return false
}

func TestMutatorAnswersEveryPathWithADocumentedReason(t *testing.T) {
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-prod-pvc"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}}
	unlabelled := scriptPod()
	unlabelled.Labels = nil
	cases := []struct {
		name     string
		finder   FactFinder
		req      admission.Request
		allowed  bool
		code     int32
		reason   reason.Code
		patched  bool
		decision reason.Decision
	}{
		{"undecodable object", failingFinder{}, request(t, admissionv1.Create, nil, []byte(`{"spec":`)), false, 400, reason.InvalidRequest, false, reason.Denied},
		{"facts unreadable", failingFinder{}, request(t, admissionv1.Create, scriptPod(), nil), false, 500, reason.InternalError, false, reason.Denied},
		{"not a create", failingFinder{}, request(t, admissionv1.Update, scriptPod(), nil), true, 200, reason.OutOfScope, false, reason.Allowed},
		{"no script-pod label", failingFinder{}, request(t, admissionv1.Create, unlabelled, nil), true, 200, reason.OutOfScope, false, reason.Allowed},
		{"no agent", staticFinder{}, request(t, admissionv1.Create, scriptPod(), nil), false, 403, reason.AgentNotFound, false, reason.Denied},
		{"pinned", staticFinder{workspace.Facts{TentaclePods: 1, ClaimName: pvc.Name, Claim: pvc, Node: "node-2", NodeSource: "test"}},
			request(t, admissionv1.Create, scriptPod(), nil), true, 200, reason.WorkspacePinned, true, reason.Mutated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := mutator(c.finder).Handle(context.Background(), c.req)
			if resp.Allowed != c.allowed || resp.Result.Code != c.code {
				t.Fatalf("allowed=%v code=%d (%s), want %v %d", resp.Allowed, resp.Result.Code, resp.Result.Message, c.allowed, c.code)
			}
			if got := resp.AuditAnnotations[audit.KeyReason]; got != string(c.reason) || !documented(got) {
				t.Fatalf("audit reason %q, want documented %q", got, c.reason)
			}
			if got := resp.AuditAnnotations[audit.KeyDecision]; got != string(c.decision) {
				t.Fatalf("audit decision %q, want %q", got, c.decision)
			}
			if (len(resp.Patches) > 0) != c.patched {
				t.Fatalf("patches %v, want patched=%v", resp.Patches, c.patched)
			}
			for _, p := range resp.Patches {
				if p.Operation != "add" {
					t.Fatalf("non-add operation %+v", p)
				}
			}
		})
	}
}

// Every denial Event is written in the agent's namespace, the namespace itself included (an
// ObjectReference without a namespace would put it in "default", out of the tenant's sight).
func TestDenialEventsStayInTheAgentsNamespace(t *testing.T) {
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c"}}
	for _, f := range []workspace.Facts{
		{Agent: workspace.AgentRef{Namespace: "ns"}, TentaclePod: "t"},
		{Agent: workspace.AgentRef{Namespace: "ns"}, Claim: pvc},
		{Agent: workspace.AgentRef{Namespace: "ns"}},
	} {
		if ref := eventTarget(f); ref.Namespace != "ns" {
			t.Fatalf("Event on %s %s recorded in namespace %q", ref.Kind, ref.Name, ref.Namespace)
		}
	}
}
