package audit

import (
	"context"
	"sync"
	"time"
	"unicode/utf8"

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

	mu       sync.Mutex
	lastNode map[string]string // agent and claim -> node its script pods were last pinned to
}

// PinMovedReason is the reason of the Normal Event recorded when an agent's pins move.
const PinMovedReason = "WorkspacePinMoved"

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
	r.notePin(req, o)
	// A dry-run request must have no side effects, and an Event is one.
	if refuses(o.Decision) && o.EventTarget != nil && r.Events != nil && !isDryRun(req) {
		// The note names the cause, not the refused object, so repeated refusals for one cause
		// are isomorphic and the recorder folds them into one Event series instead of
		// flooding; each refused object's name is in the audit log and the decision log.
		action, note := EventAction(req.Kind.Kind), o.Message
		if o.Decision == reason.WouldDeny {
			action, note = WouldRefuseAction(req.Kind.Kind), WouldRefuse(o.Code, o.Message)
		}
		r.Events.Eventf(o.EventTarget, nil, corev1.EventTypeWarning, string(o.Code), action, "%s", truncateNote(note))
	}
}

// refuses is true for a refusal, enforced or only reported (warn mode).
func refuses(d reason.Decision) bool { return d == reason.Denied || d == reason.WouldDeny }

// WouldRefuse is what warn mode tells the user (admission warning) and the Event says: the
// refusal enforce mode would have made, marked so nobody takes it for one.
func WouldRefuse(code reason.Code, msg string) string {
	return "workspace webhook (warn mode) would refuse (" + string(code) + "): " + msg
}

// noteLimit is the API server's limit on an events.k8s.io Event's note, in bytes; a longer
// one makes it refuse the Event, which would be lost.
const noteLimit = 1024

func truncateNote(s string) string {
	if len(s) <= noteLimit {
		return s
	}
	const more = "..."
	cut := noteLimit - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// notePin records a Normal Event on the Tentacle pod when script pods of an agent start
// being pinned to another node than before (a rescheduled Tentacle, a moved volume). The
// memory is per replica and starts empty, so a restart never reports a move.
func (r *Recorder) notePin(req admission.Request, o Outcome) {
	if o.Webhook != MutatePod || o.Decision != reason.Mutated || o.Node == "" || isDryRun(req) {
		return
	}
	key := o.Agent + "/" + o.Claim
	r.mu.Lock()
	if r.lastNode == nil {
		r.lastNode = map[string]string{}
	}
	prev := r.lastNode[key]
	r.lastNode[key] = o.Node
	r.mu.Unlock()
	if prev == "" || prev == o.Node || o.Tentacle == nil || r.Events == nil {
		return
	}
	r.Events.Eventf(o.Tentacle, nil, corev1.EventTypeNormal, PinMovedReason, "PinScriptPods",
		"script pods of agent %s (workspace claim %s) are now pinned to node %s instead of %s: %s", o.Agent, o.Claim, o.Node, prev, o.NodeSource)
}

// EventAction is the Event action of a refusal of kind (e.g. "RefusePod").
func EventAction(kind string) string { return "Refuse" + kind }

// WouldRefuseAction is the Event action of a refusal warn mode admitted (e.g. "WouldRefusePod").
func WouldRefuseAction(kind string) string { return "WouldRefuse" + kind }

func (r *Recorder) log(req admission.Request, o Outcome) {
	kv := make([]any, 0, 30)
	kv = append(kv,
		"webhook", o.Webhook, "uid", string(req.UID), "user", req.UserInfo.Username,
		"kind", req.Kind.Kind, "namespace", req.Namespace, "name", objectName(req), "operation", string(req.Operation),
		"dryRun", isDryRun(req), "decision", string(o.Decision), "reason", string(o.Code),
	)
	// Fixed order, empty ones left out: log lines of one kind read (and diff) alike.
	for _, f := range [...]struct{ key, value string }{{"agent", o.Agent}, {"claim", o.Claim}, {"storageClass", o.StorageClass}, {"node", o.Node}} {
		if f.value != "" {
			kv = append(kv, f.key, f.value)
		}
	}
	if refuses(o.Decision) {
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
