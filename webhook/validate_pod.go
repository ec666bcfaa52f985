package webhook

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// FinalStateValidator answers /validate-script-pod with the final-state check
// (workspace.CheckFinalState), which needs no facts. No configuration we ship calls it any
// more: the ValidatingAdmissionPolicy runs the same check inside the API server. It stays so
// that a validating configuration of an earlier release, still installed during an upgrade
// or after a rollback, gets an answer instead of a 404 its failurePolicy Fail would turn into
// refused script pods.
type FinalStateValidator struct {
	ScriptPodLabel string
	Recorder       *audit.Recorder
	// Modes says where refusals are only reported (warn mode); nil: enforced everywhere.
	Modes ModeFinder
}

func (v *FinalStateValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	return recorded(ctx, req, audit.ValidatePod, v.Recorder, v.Modes, func(o *audit.Outcome) admission.Response { return v.handle(req, o) })
}

func (v *FinalStateValidator) handle(req admission.Request, o *audit.Outcome) admission.Response {
	pod, resp, ok := decodeScriptPod(req, v.ScriptPodLabel, o)
	if !ok {
		return resp
	}
	res := workspace.CheckFinalState(pod)
	o.Code, o.Message, o.Node = res.Code, res.Message, res.Node
	if res.Denied {
		o.Decision = reason.Denied // no Event: without facts there is no agent object to put it on
		return denied(res.Message)
	}
	o.Decision = reason.Allowed
	return admission.Allowed(res.Message)
}
