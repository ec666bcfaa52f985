// Package explain answers "what would the webhook do with this object?" offline, like
// istioctl kube-inject or kyverno apply: the decision, its reason code and message, the
// warnings, the patch and the admitted object. It calls the very decision code the webhook
// serves (webhook.DecideScriptPod, workspace.CheckFinalState, workspace.PlaceTentacle,
// ClaimJudge.Judge);
// only where the facts come from differs: a cluster (the webhook's own Finder over a live
// client) or flags (Offline), so it runs in CI with no cluster at all.
package explain

import (
	"context"
	"encoding/json"
	"fmt"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"

	wh "github.com/octopus-agent-tools/workspace-webhook/webhook"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// Report is what the webhook would answer for one object.
type Report struct {
	Kind     string                `json:"kind"`
	Name     string                `json:"name"`
	Webhook  string                `json:"webhook"`
	Decision reason.Decision       `json:"decision"`
	Code     reason.Code           `json:"reason"`
	Message  string                `json:"message"`
	Warnings []string              `json:"warnings,omitempty"`
	Patch    []jsonpatch.Operation `json:"patch,omitempty"`
	// Validation is the final-state policy's verdict on the admitted script pod (its Go twin,
	// workspace.CheckFinalState; the API server runs the policy after every mutating webhook).
	Validation *Verdict `json:"validation,omitempty"`
	// Admitted is the object as it would be stored (nil when refused).
	Admitted json.RawMessage `json:"admitted,omitempty"`
}

// Verdict is a validating decision.
type Verdict struct {
	Decision reason.Decision `json:"decision"`
	Code     reason.Code     `json:"reason"`
	Message  string          `json:"message"`
}

// Facts gathers the facts about a pod's agent: agent.Finder against a cluster, or Offline.
type Facts interface {
	wh.FactFinder
	wh.TentacleFactFinder
}

// Explainer explains objects with the webhook's configuration.
type Explainer struct {
	Config         workspace.Config
	ScriptPodLabel string
	Facts          Facts
	Claims         *wh.ClaimJudge
}

// Pod explains a pod manifest (JSON): a script pod (mutating, then the final-state policy
// on the result), a Tentacle pod (placement), or a pod the webhook never sees.
func (e *Explainer) Pod(ctx context.Context, raw []byte) (Report, error) {
	pod := &corev1.Pod{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, pod); err != nil {
		return Report{}, fmt.Errorf("decoding pod: %w", err)
	}
	rep := Report{Kind: "Pod", Name: pod.Name}
	if rep.Name == "" {
		rep.Name = pod.GenerateName + "*"
	}
	switch {
	case hasLabel(pod, e.ScriptPodLabel):
		rep.Webhook = audit.MutatePod
		f, err := e.Facts.Facts(ctx, pod)
		if err != nil {
			return rep, err
		}
		d := wh.DecideScriptPod(ctx, e.Config, e.Claims, pod, f)
		err = rep.take(raw, d.Result)
		if d.Claim != nil {
			rep.Warnings = append(rep.Warnings, d.Claim.Warnings...)
		}
		if err != nil || d.Denied {
			return rep, err
		}
		admitted := &corev1.Pod{}
		if err := json.Unmarshal(rep.Admitted, admitted); err != nil {
			return rep, err
		}
		v := workspace.CheckFinalState(admitted)
		rep.Validation = &Verdict{Decision: decision(v), Code: v.Code, Message: v.Message}
	case agent.IsTentacle(pod, e.Config.MountPath):
		rep.Webhook = audit.MutateTentacle
		f, err := e.Facts.TentacleFacts(ctx, pod)
		if err != nil {
			return rep, err
		}
		return rep, rep.take(raw, workspace.PlaceTentacle(pod, f))
	default:
		rep.Decision, rep.Code = reason.Allowed, reason.OutOfScope
		rep.Message = fmt.Sprintf("neither a script pod (label %s) nor a Tentacle pod: the webhook never sees it", e.ScriptPodLabel)
		rep.Admitted = raw
	}
	return rep, nil
}

// take fills the report from a mutating decision, applying its patch to raw.
func (r *Report) take(raw []byte, res workspace.Result) error {
	r.Decision, r.Code, r.Message, r.Warnings, r.Patch = decision(res), res.Code, res.Message, res.Warnings, res.Patch
	if res.Denied {
		return nil
	}
	if len(res.Patch) == 0 {
		r.Admitted = raw
		return nil
	}
	ops, err := json.Marshal(res.Patch)
	if err != nil {
		return err
	}
	p, err := jsonpatchapply.DecodePatch(ops)
	if err != nil {
		return err
	}
	r.Admitted, err = p.Apply(raw)
	return err
}

// Claim explains a PersistentVolumeClaim manifest (JSON) as the claim webhook judges it.
func (e *Explainer) Claim(ctx context.Context, raw []byte) (Report, error) {
	claim := &corev1.PersistentVolumeClaim{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, claim); err != nil {
		return Report{}, fmt.Errorf("decoding claim: %w", err)
	}
	rep := Report{Kind: "PersistentVolumeClaim", Name: claim.Name, Webhook: audit.ValidatePVC}
	v, err := e.Claims.Judge(ctx, claim)
	if err != nil {
		v = wh.CheckFailed(claim, err)
	}
	rep.Code, rep.Message, rep.Warnings = v.Code, v.Message, v.Warnings
	rep.Decision = reason.Allowed
	if v.Denied {
		rep.Decision = reason.Denied
		return rep, nil
	}
	rep.Admitted = raw
	return rep, nil
}

func decision(r workspace.Result) reason.Decision {
	switch {
	case r.Denied:
		return reason.Denied
	case len(r.Patch) > 0:
		return reason.Mutated
	}
	return reason.Allowed
}

func hasLabel(p *corev1.Pod, key string) bool {
	_, ok := p.Labels[key]
	return ok
}
