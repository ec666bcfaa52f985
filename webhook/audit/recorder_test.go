package audit

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

func req(dryRun bool) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "u", Namespace: "ns", Name: "p",
		Kind: metav1.GroupVersionKind{Kind: "Pod"}, Operation: admissionv1.Create, DryRun: ptr.To(dryRun)}}
}

func drain(ch chan string) []string {
	var out []string
	for {
		select {
		case e := <-ch:
			out = append(out, e)
		case <-time.After(20 * time.Millisecond):
			return out
		}
	}
}

func TestRecorderEventsDenialsAndPinMoves(t *testing.T) {
	fake := events.NewFakeRecorder(10)
	r := &Recorder{Log: logr.Discard(), Events: fake}
	tentacle := &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "tentacle"}
	pin := func(node string, dry bool) admission.Response {
		var resp admission.Response
		r.Record(context.Background(), req(dry), Outcome{Webhook: MutatePod, Decision: reason.Mutated, Code: reason.WorkspacePinned,
			Agent: "ns/prod", Claim: "pvc", Node: node, NodeSource: "Tentacle pod ns/tentacle is running there", Tentacle: tentacle}, time.Now(), &resp)
		return resp
	}

	resp := pin("node-1", false)
	if resp.AuditAnnotations[KeyNode] != "node-1" || resp.AuditAnnotations[KeyDecision] != "mutated" {
		t.Fatalf("audit annotations %v", resp.AuditAnnotations)
	}
	pin("node-1", false)
	pin("node-3", true) // dry-run: no Event, and no memory of it
	if got := drain(fake.Events); len(got) != 0 {
		t.Fatalf("no move yet, got Events %v", got)
	}
	pin("node-2", false)
	got := drain(fake.Events)
	if len(got) != 1 || !strings.Contains(got[0], "Normal "+PinMovedReason) || !strings.Contains(got[0], "node node-2 instead of node-1") {
		t.Fatalf("want one pin-moved Event from node-1 to node-2, got %v", got)
	}

	deny := func(dry bool) {
		var resp admission.Response
		r.Record(context.Background(), req(dry), Outcome{Webhook: MutatePod, Decision: reason.Denied, Code: reason.WorkspaceNodeUnknown,
			Message: "no node holds it yet", EventTarget: tentacle, Warnings: []string{"w"}}, time.Now(), &resp)
		if resp.AuditAnnotations[KeyReason] != string(reason.WorkspaceNodeUnknown) || len(resp.Warnings) != 1 {
			t.Fatalf("denial response %+v", resp)
		}
	}
	deny(true)
	if got := drain(fake.Events); len(got) != 0 {
		t.Fatalf("dry-run denial recorded Events %v", got)
	}
	deny(false)
	got = drain(fake.Events)
	if len(got) != 1 || !strings.Contains(got[0], "Warning WorkspaceNodeUnknown") || !strings.Contains(got[0], "no node holds it yet") {
		t.Fatalf("want one Warning Event with the reason code and message, got %v", got)
	}
}

// A would-deny (warn mode) is recorded as a refusal would be, marked in the Event and the
// log line; an Event note longer than the API server takes is cut, not lost.
func TestRecorderWouldDeny(t *testing.T) {
	fake := events.NewFakeRecorder(10)
	r := &Recorder{Log: logr.Discard(), Events: fake}
	ns := &corev1.ObjectReference{Kind: "Namespace", Name: "ns"}
	var resp admission.Response
	r.Record(context.Background(), req(false), Outcome{Webhook: ValidatePVC, Decision: reason.WouldDeny, Code: reason.ReadWriteManyUnsupported,
		Message: strings.Repeat("é", 600), EventTarget: ns}, time.Now(), &resp)
	if resp.AuditAnnotations[KeyDecision] != "would-deny" || resp.AuditAnnotations[KeyReason] != string(reason.ReadWriteManyUnsupported) {
		t.Fatalf("audit annotations %v", resp.AuditAnnotations)
	}
	got := drain(fake.Events)
	if len(got) != 1 || !strings.HasPrefix(got[0], "Warning ReadWriteManyUnsupported workspace webhook (warn mode) would refuse (ReadWriteManyUnsupported): éé") {
		t.Fatalf("want one marked Warning Event, got %v", got)
	}
	note := strings.TrimPrefix(got[0], "Warning ReadWriteManyUnsupported ")
	if len(note) > noteLimit || !strings.HasSuffix(note, "é...") || !utf8.ValidString(note) {
		t.Fatalf("note of %d bytes, want at most %d, cut at a rune: %q", len(note), noteLimit, note[len(note)-10:])
	}
}
