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
	pod, resp, ok := decodeScriptPod(req, v.ScriptPodLabel, o)
	if !ok {
		return resp
	}
	facts, err := v.Finder.Facts(ctx, pod)
	if err != nil {
		return internalError(o, err)
	}
	res := workspace.Validate(pod, facts)
	o.Agent, o.Claim, o.Node, o.Code, o.Message = facts.Agent.String(), facts.ClaimName, res.Node, res.Code, res.Message
	if res.Denied {
		o.Decision = reason.Denied
		o.EventTarget = eventTarget(facts)
		return denied(res.Message)
	}
	if res.Mode == workspace.ModeShare && v.Claims != nil {
		verdict, err := v.Claims.Judge(ctx, facts.Claim)
		if err != nil {
			return internalError(o, err)
		}
		verdict.describe(o)
		if verdict.Denied {
			msg := "script pod refused: its workspace " + verdict.Message
			o.Decision, o.Code, o.Message = reason.Denied, verdict.Code, msg
			o.EventTarget = eventTarget(facts)
			return denied(msg)
		}
	}
	o.Decision = reason.Allowed
	return admission.Allowed(res.Message)
}
