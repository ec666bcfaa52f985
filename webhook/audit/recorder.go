package audit

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// Recorder writes an Outcome to every audit channel. Nil fields are skipped.
type Recorder struct {
	Log     logr.Logger
	Events  events.EventRecorder
	Metrics *Metrics
}

// Record is called exactly once per admission request, with the response about to be sent,
// and adds the audit annotations to it.
func (r *Recorder) Record(ctx context.Context, req admission.Request, o Outcome, started time.Time, resp *admission.Response) {
	resp.AuditAnnotations = o.Annotations()
	if len(o.Warnings) > 0 {
		resp.Warnings = append(resp.Warnings, o.Warnings...)
	}
	if r.Metrics != nil {
		r.Metrics.Decisions.WithLabelValues(o.Webhook, string(o.Decision), string(o.Code)).Inc()
		r.Metrics.Latency.WithLabelValues(o.Webhook).Observe(time.Since(started).Seconds())
	}
	r.log(req, o)
	// A dry-run request must have no side effects, and an Event is one.
	if o.Decision == reason.Denied && o.EventTarget != nil && r.Events != nil && !isDryRun(req) {
		// The note names the cause, not the refused object, so repeated refusals for one cause
		// are isomorphic and the recorder folds them into one Event series instead of
		// flooding; each refused object's name is in the audit log and the decision log.
		r.Events.Eventf(o.EventTarget, nil, corev1.EventTypeWarning, string(o.Code), EventAction(req.Kind.Kind),
			"%s", o.Message)
	}
}

// EventAction is the Event action of a refusal of kind (e.g. "RefusePod").
func EventAction(kind string) string { return "Refuse" + kind }

func (r *Recorder) log(req admission.Request, o Outcome) {
	kv := []any{
		"webhook", o.Webhook, "uid", string(req.UID), "user", req.UserInfo.Username,
		"kind", req.Kind.Kind, "namespace", req.Namespace, "name", objectName(req), "operation", string(req.Operation),
		"dryRun", isDryRun(req), "decision", string(o.Decision), "reason", string(o.Code),
	}
	for k, v := range map[string]string{"agent": o.Agent, "claim": o.Claim, "storageClass": o.StorageClass, "node": o.Node} {
		if v != "" {
			kv = append(kv, k, v)
		}
	}
	if o.Decision == reason.Denied {
		kv = append(kv, "message", o.Message)
	}
	r.Log.Info("admission decision", kv...)
}

func isDryRun(req admission.Request) bool { return req.DryRun != nil && *req.DryRun }

// objectName is the request's object name; pods created with generateName have none yet.
func objectName(req admission.Request) string {
	if req.Name != "" {
		return req.Name
	}
	return "(generated)"
}
