package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// What a script pod's creator (Tentacle) sees, sorted into the outcomes the report counts.
const (
	kindPinned        = "pinned"         // admitted, pinned to Node
	kindShared        = "shared"         // admitted with the workspace, no pin (ReadWriteMany)
	kindUnmutated     = "admitted as-is" // admitted without the webhook's mutation
	kindRefused       = "refused"        // the webhook refused it (Reason)
	kindWebhookFailed = "webhook call failed"
	kindPolicyRefused = "refused by the final-state policy"
	kindError         = "other error"
)

// outcome is one creation, as the API server answered it.
type outcome struct {
	Kind   string
	Node   string // kindPinned: the node of the pin
	Source string // kindPinned: why that node holds the volume (the webhook's record)
	Reason string // kindRefused: which refusal (reason code where the message tells it)
	Err    string
	Start  time.Time // the create call began
	End    time.Time // and returned
}

func (o outcome) String() string {
	switch o.Kind {
	case kindPinned:
		return "pinned to " + o.Node
	case kindRefused:
		return "refused: " + o.Reason
	default:
		return o.Kind
	}
}

// refusals names the webhook's refusals by a phrase of their message (webhook/workspace).
var refusals = []struct{ phrase, code string }{
	{"no node holds it yet", "WorkspaceNodeUnknown"},
	{"does not exist; reinstall or repair agent", "WorkspaceClaimNotFound"},
	{"is being deleted (since", "WorkspaceClaimTerminating"},
	{"exists in namespace", "AgentNotFound"},
	{"but that node no longer exists", "WorkspaceNodeGone"},
	{agent.CannotReadCurrentState, "InternalError"},
}

// classify sorts the answer to one script pod creation.
func classify(pod *corev1.Pod, err error) outcome {
	if err == nil {
		if node := pod.Annotations[workspace.NodeMark]; node != "" {
			var r workspace.Record
			_ = json.Unmarshal([]byte(pod.Annotations[workspace.RecordAnnotation]), &r)
			return outcome{Kind: kindPinned, Node: node, Source: r.NodeSource}
		}
		if _, ok := pod.Annotations[workspace.VolumeMark]; ok {
			return outcome{Kind: kindShared}
		}
		return outcome{Kind: kindUnmutated}
	}
	msg := err.Error()
	o := outcome{Err: msg}
	switch {
	case strings.Contains(msg, "failed calling webhook"):
		o.Kind = kindWebhookFailed
	case strings.Contains(msg, "ValidatingAdmissionPolicy"):
		o.Kind = kindPolicyRefused
	case strings.Contains(msg, "admission webhook") && strings.Contains(msg, "denied the request"):
		o.Kind, o.Reason = kindRefused, "other"
		for _, r := range refusals {
			if strings.Contains(msg, r.phrase) {
				o.Reason = r.code
				break
			}
		}
		// The webhook answers 500 when it could not read its facts (reason InternalError).
		if se := (*apierrors.StatusError)(nil); o.Reason == "other" && errors.As(err, &se) && se.ErrStatus.Code == http.StatusInternalServerError {
			o.Reason = "InternalError"
		}
	default:
		o.Kind = kindError
	}
	return o
}

// createScriptPod creates a script pod of a through the API server (dry-run: every webhook and
// the policy run, nothing is stored or scheduled) and sorts the answer.
func createScriptPod(ctx context.Context, a tentacle.Agent, ticket string) outcome {
	pod := a.ScriptPod(ticket, a.NormalStyle())
	start := time.Now()
	err := cp.Client.Create(ctx, pod, client.DryRunAll)
	o := classify(pod, err)
	o.Start, o.End = start, time.Now()
	return o
}

// tally counts outcomes by their String.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
	total  int
	// examples keeps the first error message of each outcome.
	examples map[string]string
}

func newTally() *tally { return &tally{counts: map[string]int{}, examples: map[string]string{}} }

func (t *tally) add(o outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := o.String()
	t.counts[k]++
	t.total++
	if _, ok := t.examples[k]; !ok && o.Err != "" {
		t.examples[k] = portless(o.Err)
	}
}

func (t *tally) count(k string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[k]
}

// String is "12 pinned to node-1, 3 refused: WorkspaceNodeUnknown" (largest first).
func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total == 0 {
		return "none"
	}
	keys := make([]string, 0, len(t.counts))
	for k := range t.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if t.counts[keys[i]] != t.counts[keys[j]] {
			return t.counts[keys[i]] > t.counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", t.counts[k], k)
	}
	return strings.Join(parts, ", ")
}

// Examples lists the first error message of each failing outcome.
func (t *tally) Examples() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	keys := make([]string, 0, len(t.examples))
	for k := range t.examples {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s, first message: %s\n", k, t.examples[k])
	}
	return b.String()
}

// load creates script pods of a from workers goroutines, each one after the other, until stop
// is closed or ctx ends; every outcome goes to record. Bounded: it stops by itself at ctx's end.
func load(ctx context.Context, workers int, a tentacle.Agent, prefix string, stop <-chan struct{}, record func(outcome)) *sync.WaitGroup {
	var wg sync.WaitGroup
	var seq sync.Mutex
	n := 0
	next := func() string {
		seq.Lock()
		defer seq.Unlock()
		n++
		return fmt.Sprintf("%s%06d", prefix, n)
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				record(createScriptPod(ctx, a, next()))
			}
		}()
	}
	return &wg
}
