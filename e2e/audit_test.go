package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

const mutatingPrefix = "script-pod-workspace.workspace-webhook.io/"

type auditEvent struct {
	Stage     string                    `json:"stage"`
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef struct {
		Resource, Namespace, Name string
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	Annotations map[string]string `json:"annotations"`
}

// findAudit returns the ResponseComplete audit event of the creation of namespace/name.
func findAudit(t *testing.T, resource, namespace, name string) auditEvent {
	t.Helper()
	var found *auditEvent
	eventually(t, ctxFor(t, 30*time.Second), "audit event for "+namespace+"/"+name, func() (bool, string) {
		f, err := os.Open(auditLogPath)
		if err != nil {
			return false, err.Error()
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev auditEvent
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			if ev.Stage == "ResponseComplete" && ev.Verb == "create" && ev.ObjectRef.Resource == resource &&
				ev.ObjectRef.Namespace == namespace && ev.ObjectRef.Name == name {
				found = &ev
				return true, ""
			}
		}
		return false, "not in the audit log yet"
	})
	return *found
}

func wantAnnotations(t *testing.T, ev auditEvent, prefix string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := ev.Annotations[prefix+k]; got != v {
			t.Errorf("audit annotation %s%s = %q, want %q (all: %v)", prefix, k, got, v, ev.Annotations)
		}
	}
}

// An auditor can find, from the API server's own audit log, Events and metrics, which script
// pods were refused and why, and which were pinned where.
func TestAuditTrailOfPinAndRefusal(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	pinned := tentacle.Agent{Namespace: "octopus-agent-audit", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-1")}
	refused := tentacle.Agent{Namespace: "octopus-agent-audit-rwop", Release: "prod", AccessModes: rwop, NodeSelector: onNode("node-3")}
	installAgent(t, ctx, pinned, true)
	tentaclePod := func() string { return waitTentacleRunning(t, ctx, refused).Name }
	installAgent(t, ctx, refused, true)
	refusedTentacle := tentaclePod()

	before := decisions(t)
	okPod := pinned.ScriptPod("audit01", tentacle.StyleV2)
	must(t, createScriptPod(t, ctx, okPod))
	badPod := refused.ScriptPod("audit02", tentacle.StyleV2)
	refusal := cp.Client.Create(ctx, badPod)
	if refusal == nil {
		t.Fatal("ReadWriteOncePod script pod admitted")
	}

	// Metrics move by exactly the decisions made.
	after := decisions(t)
	delta := func(k string) float64 { return after[k] - before[k] }
	for k, want := range map[string]float64{
		"mutate-pod/mutated/" + string(reason.WorkspacePinned):          1,
		"mutate-pod/denied/" + string(reason.ReadWriteOncePodWorkspace): 1,
	} {
		if got := delta(k); got != want {
			t.Errorf("metric %s moved by %v, want %v", k, got, want)
		}
	}
	if got := total(after) - total(before); got != 2 {
		t.Errorf("decisions moved by %v in all, want 2 (one webhook call per script pod): before %v after %v", got, before, after)
	}

	// The API server's audit log holds both decisions with our annotations.
	okEv := findAudit(t, "pods", okPod.Namespace, okPod.Name)
	wantAnnotations(t, okEv, mutatingPrefix, map[string]string{
		"decision": "mutated", "reason": string(reason.WorkspacePinned), "agent": "octopus-agent-audit/prod",
		"claim": pinned.ClaimName(), "node": "node-1",
	})
	badEv := findAudit(t, "pods", badPod.Namespace, badPod.Name)
	if badEv.ResponseStatus.Code != 403 {
		t.Errorf("refused pod audit status %d, want 403", badEv.ResponseStatus.Code)
	}
	wantAnnotations(t, badEv, mutatingPrefix, map[string]string{
		"decision": "denied", "reason": string(reason.ReadWriteOncePodWorkspace), "claim": refused.ClaimName(),
	})
	if badEv.User.Username == "" {
		t.Error("audit event names no user")
	}

	// The refusal is an Event on the Tentacle pod, with the reason code and the message the user saw.
	event := func() (*eventsv1.Event, int) {
		var list eventsv1.EventList
		must(t, cp.Client.List(ctx, &list, client.InNamespace(refused.Namespace)))
		var match []eventsv1.Event
		for _, e := range list.Items {
			if e.Reason == string(reason.ReadWriteOncePodWorkspace) && e.Regarding.Name == refusedTentacle {
				match = append(match, e)
			}
		}
		if len(match) == 0 {
			return nil, 0
		}
		return &match[0], len(match)
	}
	eventually(t, ctx, "refusal Event", func() (bool, string) { e, _ := event(); return e != nil, "" })
	ev, _ := event()
	if ev.Type != "Warning" || !strings.Contains(refusal.Error(), ev.Note) || ev.Action != "RefusePod" {
		t.Errorf("Event %+v does not carry the refusal the user saw: %v", ev, refusal)
	}
	// A repeated refusal for the same cause aggregates into the same Event.
	must(t, func() error {
		if err := cp.Client.Create(ctx, refused.ScriptPod("audit03", tentacle.StyleV2)); err == nil {
			t.Fatal("second ReadWriteOncePod script pod admitted")
		}
		return nil
	}())
	eventually(t, ctx, "Event series of the repeated refusal", func() (bool, string) {
		e, n := event()
		if n != 1 {
			t.Fatalf("repeated refusal flooded: %d Events", n)
		}
		return e.Series != nil && e.Series.Count >= 2, "no series yet"
	})

	// One structured log line per decision, with request UID, user, object, decision and reason.
	var line map[string]any
	for _, l := range strings.Split(webhookLog.String(), "\n") {
		if strings.Contains(l, `"name":"`+badPod.Name+`"`) && strings.Contains(l, `"webhook":"mutate-pod"`) {
			must(t, json.Unmarshal([]byte(l), &line))
		}
	}
	if line == nil {
		t.Fatalf("no decision log line for %s", badPod.Name)
	}
	for _, k := range []string{"uid", "user", "namespace", "name", "decision", "reason", "message"} {
		if v, _ := line[k].(string); v == "" {
			t.Errorf("log line lacks %q: %v", k, line)
		}
	}
	if line["reason"] != string(reason.ReadWriteOncePodWorkspace) {
		t.Errorf("log line reason %v", line["reason"])
	}
}
