package webhook

// What the pod handlers share: decoding a pod creation, gathering its facts, recording the
// outcome once, and refusing with an Event on an object of the agent.

import (
	"context"
	"fmt"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// FactFinder gathers the facts about a script pod's agent.
type FactFinder interface {
	Facts(ctx context.Context, pod *corev1.Pod) (workspace.Facts, error)
}

// recorded runs handle, turns a refusal into an admission where the namespace is in warn
// mode (wouldDeny), and writes the outcome to every audit channel exactly once.
func recorded(ctx context.Context, req admission.Request, webhook string, r *audit.Recorder, modes ModeFinder, handle func(*audit.Outcome) admission.Response) admission.Response {
	started := time.Now()
	o := audit.Outcome{Webhook: webhook, Agent: req.Namespace}
	resp := handle(&o)
	if o.Decision == reason.Denied && modeOf(ctx, modes, req.Namespace) == enforcement.Warn {
		resp = wouldDeny(&o)
	}
	r.Record(ctx, req, o, started, &resp)
	return resp
}

// scriptPodFacts decodes a script pod CREATE and gathers the facts about its agent; when ok
// is false, resp already answers the request.
func scriptPodFacts(ctx context.Context, req admission.Request, label string, finder FactFinder, o *audit.Outcome) (*corev1.Pod, workspace.Facts, admission.Response, bool) {
	pod, resp, ok := decodeScriptPod(req, label, o)
	if !ok {
		return nil, workspace.Facts{}, resp, false
	}
	facts, err := finder.Facts(ctx, pod)
	if err != nil {
		return nil, workspace.Facts{}, internalError(o, err), false
	}
	return pod, facts, admission.Response{}, true
}

// noteResult records a workspace decision and the agent it concerns in the outcome.
func noteResult(o *audit.Outcome, f workspace.Facts, res workspace.Result) {
	o.Agent, o.Claim, o.Node, o.Code, o.Message = f.Agent.String(), f.ClaimName, res.Node, res.Code, res.Message
}

// admitted answers an admitting decision: its patch when it has one, its warnings always.
func admitted(o *audit.Outcome, res workspace.Result) admission.Response {
	o.Warnings = append(o.Warnings, res.Warnings...)
	if len(res.Patch) == 0 {
		o.Decision = reason.Allowed
		return admission.Allowed(res.Message)
	}
	o.Decision = reason.Mutated
	return admission.Patched(res.Message, res.Patch...)
}

// deniedFor refuses with msg; the denial's Event goes to an object of the agent.
func deniedFor(o *audit.Outcome, f workspace.Facts, msg string) admission.Response {
	o.Decision, o.EventTarget = reason.Denied, eventTarget(f)
	return denied(msg)
}

// decodeScriptPod decodes a script pod CREATE; anything else is let through untouched (the
// webhook configuration should not even send it).
func decodeScriptPod(req admission.Request, label string, o *audit.Outcome) (*corev1.Pod, admission.Response, bool) {
	pod, resp, ok := decodePodCreate(req, o)
	if !ok {
		return nil, resp, false
	}
	if _, ok := pod.Labels[label]; !ok {
		return nil, admission.Allowed("not a script pod"), false
	}
	return pod, admission.Response{}, true
}

// decodePodCreate decodes a pod CREATE, its namespace filled in from the request.
func decodePodCreate(req admission.Request, o *audit.Outcome) (*corev1.Pod, admission.Response, bool) {
	o.Decision, o.Code = reason.Allowed, reason.OutOfScope
	if req.Operation != admissionv1.Create || req.Kind.Kind != "Pod" || req.SubResource != "" {
		return nil, admission.Allowed("not a pod creation"), false
	}
	pod, err := decodePod(req)
	if err != nil {
		o.Decision, o.Code, o.Message = reason.Denied, reason.InvalidRequest, err.Error()
		return nil, admission.Errored(http.StatusBadRequest, err), false
	}
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	return pod, admission.Response{}, true
}

// decodePod returns the pod ReviewServer decoded with the review, or decodes the raw one
// with the API server's own JSON rules (case-sensitive, integers preserved).
func decodePod(req admission.Request) (*corev1.Pod, error) {
	if pod, ok := req.Object.Object.(*corev1.Pod); ok && pod != nil {
		return pod, nil
	}
	if len(req.Object.Raw) == 0 {
		return nil, fmt.Errorf("the request carries no pod")
	}
	pod := &corev1.Pod{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, pod); err != nil {
		return nil, fmt.Errorf("decoding pod: %w", err)
	}
	return pod, nil
}

// internalError refuses: the facts are unknown, so admitting could let a pod run where it
// hits a Multi-Attach error. The failurePolicy in the webhook configuration decides what the
// API server does when the webhook cannot answer at all. In warn mode it admits, unchanged,
// with a warning (wouldDeny).
func internalError(o *audit.Outcome, err error) admission.Response {
	o.Decision, o.Code, o.Message = reason.Denied, reason.InternalError, err.Error()
	return admission.Errored(http.StatusInternalServerError, err)
}

func denied(msg string) admission.Response {
	r := admission.Denied(msg)
	r.Result.Reason = metav1.StatusReasonForbidden
	return r
}

// eventTarget picks an existing object for a denial Event: the Tentacle pod, else the
// agent's claim, else the namespace. The Event is written in the agent's namespace, where
// its users look and may read it (an Event about a cluster-scoped Namespace would otherwise
// land in "default").
func eventTarget(f workspace.Facts) *corev1.ObjectReference {
	switch {
	case f.TentaclePod != "":
		return tentacleRef(f)
	case f.Claim != nil:
		return &corev1.ObjectReference{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: f.Agent.Namespace, Name: f.Claim.Name, UID: f.Claim.UID}
	default:
		return &corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: f.Agent.Namespace, Namespace: f.Agent.Namespace}
	}
}

func tentacleRef(f workspace.Facts) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: f.Agent.Namespace, Name: f.TentaclePod}
}
