package webhook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// namespaceModes is the mode of each namespace, enforce for any other (what
// enforcement.Namespaces reads from the namespace cache).
type namespaceModes map[string]enforcement.Mode

func (m namespaceModes) For(_ context.Context, ns string) enforcement.Mode {
	if mode, ok := m[ns]; ok {
		return mode
	}
	return enforcement.Enforce
}

// recording is a Recorder whose Events and metrics the test reads.
func recording(t *testing.T) (*audit.Recorder, *events.FakeRecorder) {
	t.Helper()
	m, err := audit.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ev := events.NewFakeRecorder(10)
	return &audit.Recorder{Log: logr.Discard(), Events: ev, Metrics: m}, ev
}

// In warn mode every refusal of the script-pod webhook is admitted unchanged, with the
// refusal's message as a marked warning and would-deny with the refusal's reason code in the
// audit annotations, the metric and a Warning Event; what enforce mode admits is answered
// exactly as in enforce mode, patch included.
func TestWarnModeAdmitsWhatEnforceModeRefuses(t *testing.T) {
	rwop := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-prod-pvc", UID: "claim-uid"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}}}
	rwo := rwop.DeepCopy()
	rwo.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	cases := []struct {
		name   string
		finder FactFinder
		raw    []byte // the request's object; nil: a script pod
		code   reason.Code
		event  bool // enforce mode records an Event for it
	}{
		{"undecodable object", failingFinder{}, []byte(`{"spec":`), reason.InvalidRequest, false},
		{"facts unreadable", failingFinder{}, nil, reason.InternalError, false},
		{"no agent", staticFinder{}, nil, reason.AgentNotFound, true},
		{"ReadWriteOncePod claim", staticFinder{workspace.Facts{TentaclePods: 1, TentaclePod: "tentacle-0", ClaimName: rwop.Name, Claim: rwop}},
			nil, reason.ReadWriteOncePodWorkspace, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := func() admission.Request {
				if c.raw != nil {
					return request(t, admissionv1.Create, nil, c.raw)
				}
				return request(t, admissionv1.Create, scriptPod(), nil)
			}
			enforced := mutator(c.finder).Handle(context.Background(), req())
			if enforced.Allowed || enforced.AuditAnnotations[audit.KeyDecision] != string(reason.Denied) {
				t.Fatalf("enforce mode: allowed=%v %v; the case must be a refusal", enforced.Allowed, enforced.AuditAnnotations)
			}

			m := mutator(c.finder)
			rec, ev := recording(t)
			m.Recorder, m.Modes = rec, namespaceModes{"octopus-agent-prod": enforcement.Warn}
			resp := m.Handle(context.Background(), req())
			if !resp.Allowed || resp.Result.Code != 200 || len(resp.Patches) != 0 {
				t.Fatalf("warn mode: allowed=%v code=%d patches=%v, want admitted unchanged", resp.Allowed, resp.Result.Code, resp.Patches)
			}
			if got := resp.AuditAnnotations[audit.KeyDecision]; got != string(reason.WouldDeny) {
				t.Errorf("audit decision %q, want would-deny", got)
			}
			if got := resp.AuditAnnotations[audit.KeyReason]; got != string(c.code) || !documented(got) {
				t.Errorf("audit reason %q, want %s", got, c.code)
			}
			want := "workspace webhook (warn mode) would refuse (" + string(c.code) + "): "
			if len(resp.Warnings) == 0 || !strings.HasPrefix(resp.Warnings[0], want) ||
				!strings.Contains(resp.Warnings[0], enforced.Result.Message) {
				t.Errorf("warnings %q, want the refusal %q marked %q", resp.Warnings, enforced.Result.Message, want)
			}
			if n := counted(t, rec.Metrics.Decisions.WithLabelValues(audit.MutatePod, string(reason.WouldDeny), string(c.code))); n != 1 {
				t.Errorf("metric decision=would-deny reason=%s counted %v, want 1", c.code, n)
			}
			got := drainEvents(ev)
			if !c.event {
				if len(got) != 0 {
					t.Errorf("Events %v; enforce mode records none here", got)
				}
				return
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], "Warning "+string(c.code)+" "+want) {
				t.Errorf("Events %v, want one Warning %s with the marked message", got, c.code)
			}
		})
	}

	t.Run("admitted pods are patched as in enforce mode", func(t *testing.T) {
		f := staticFinder{workspace.Facts{TentaclePods: 1, ClaimName: rwo.Name, Claim: rwo, Node: "node-2", NodeSource: "test"}}
		enforced := mutator(f).Handle(context.Background(), request(t, admissionv1.Create, scriptPod(), nil))
		m := mutator(f)
		m.Modes = namespaceModes{"octopus-agent-prod": enforcement.Warn}
		warned := m.Handle(context.Background(), request(t, admissionv1.Create, scriptPod(), nil))
		a, _ := json.Marshal(enforced.Patches)
		b, _ := json.Marshal(warned.Patches)
		if !warned.Allowed || len(warned.Patches) == 0 || string(a) != string(b) || len(warned.Warnings) != 0 ||
			warned.AuditAnnotations[audit.KeyDecision] != string(reason.Mutated) {
			t.Fatalf("warn mode changed an admission: %+v\nenforce: %s\nwarn:    %s", warned.AuditAnnotations, a, b)
		}
	})

	t.Run("another namespace is still enforced", func(t *testing.T) {
		m := mutator(staticFinder{})
		m.Modes = namespaceModes{"team-warn": enforcement.Warn}
		if resp := m.Handle(context.Background(), request(t, admissionv1.Create, scriptPod(), nil)); resp.Allowed {
			t.Fatal("a namespace in enforce mode admitted a refusal")
		}
	})
}

// The claim webhook's refusal converts the same way; its Event stays on the namespace.
func TestWarnModeAdmitsARefusedClaim(t *testing.T) {
	rec, ev := recording(t)
	cache := &classReader{classes: []storagev1.StorageClass{storageClass("gp2", "ebs.csi.aws.com", false)}, nodes: 3}
	v := &ClaimValidator{Decoder: admission.NewDecoder(runtime.NewScheme()), Claims: &ClaimJudge{Cache: cache, Live: &classReader{}},
		Recorder: rec, Modes: namespaceModes{"octopus-agent-prod": enforcement.Warn}}
	req := request(t, admissionv1.Create, rwxClaim(ptr.To("gp2")), nil)
	req.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}
	resp := v.Handle(context.Background(), req)
	if !resp.Allowed || resp.AuditAnnotations[audit.KeyDecision] != string(reason.WouldDeny) ||
		resp.AuditAnnotations[audit.KeyReason] != string(reason.ReadWriteManyUnsupported) {
		t.Fatalf("allowed=%v %v", resp.Allowed, resp.AuditAnnotations)
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "would refuse (ReadWriteManyUnsupported): PersistentVolumeClaim octopus-agent-prod/octopus-agent-prod-pvc asks for ReadWriteMany") {
		t.Fatalf("warnings %q", resp.Warnings)
	}
	if n := counted(t, rec.Metrics.Decisions.WithLabelValues(audit.ValidatePVC, "would-deny", string(reason.ReadWriteManyUnsupported))); n != 1 {
		t.Fatalf("metric counted %v, want 1", n)
	}
	if got := drainEvents(ev); len(got) != 1 || !strings.HasPrefix(got[0], "Warning ReadWriteManyUnsupported workspace webhook (warn mode) would refuse") {
		t.Fatalf("Events %v", got)
	}

	// Dry-run: admitted the same, no Event (a dry run has no side effects).
	dry := req
	dry.DryRun = ptr.To(true)
	if resp := v.Handle(context.Background(), dry); !resp.Allowed || len(drainEvents(ev)) != 0 {
		t.Fatalf("dry run: allowed=%v or an Event recorded", resp.Allowed)
	}
}

func drainEvents(r *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		case <-time.After(20 * time.Millisecond):
			return out
		}
	}
}

// counted is a counter's value.
func counted(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
