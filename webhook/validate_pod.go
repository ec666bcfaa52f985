package webhook

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// PodValidator refuses script pods whose workspace can never work, judged on the final pod
// after every mutating webhook.
type PodValidator struct {
	Finder         FactFinder
	ScriptPodLabel string
	// Claims judges whether a ReadWriteMany workspace claim's class can serve it.
	Claims   *ClaimJudge
	Recorder *audit.Recorder
}

func (v *PodValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	return recorded(ctx, req, audit.ValidatePod, v.Recorder, func(o *audit.Outcome) admission.Response { return v.handle(ctx, req, o) })
}

func (v *PodValidator) handle(ctx context.Context, req admission.Request, o *audit.Outcome) admission.Response {
	pod, facts, resp, ok := scriptPodFacts(ctx, req, v.ScriptPodLabel, v.Finder, o)
	if !ok {
		return resp
	}
	res := workspace.Validate(pod, facts)
	noteResult(o, facts, res)
	if res.Denied {
		return deniedFor(o, facts, res.Message)
	}
	if res.Mode == workspace.ModeShare && v.Claims != nil {
		verdict, err := v.Claims.Judge(ctx, facts.Claim)
		if err != nil {
			verdict = CheckFailed(facts.Claim, err)
			o.Code, o.Message = verdict.Code, verdict.Message
		}
		verdict.describe(o)
		if verdict.Denied {
			msg := "script pod refused: its workspace " + verdict.Message
			o.Code, o.Message = verdict.Code, msg
			return deniedFor(o, facts, msg)
		}
	}
	o.Decision = reason.Allowed
	return admission.Allowed(res.Message)
}
