package webhook

import (
	"context"

	corev1 "k8s.io/api/core/v1"
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
	verdict := ValidateScriptPod(ctx, v.Claims, pod, facts)
	noteResult(o, facts, verdict.Result)
	if verdict.Claim != nil {
		verdict.Claim.describe(o)
	}
	if verdict.Denied {
		return deniedFor(o, facts, verdict.Message)
	}
	o.Decision = reason.Allowed
	return admission.Allowed(verdict.Message)
}

// ScriptPodVerdict is the validating decision on a script pod as stored: the workspace checks,
// then, for a ReadWriteMany claim, whether its class can serve it.
type ScriptPodVerdict struct {
	workspace.Result
	// Claim is the class judgement, nil when the claim is not ReadWriteMany (or not reached).
	Claim *ClaimVerdict
}

// ValidateScriptPod is that decision, for the validating webhook and explain alike. A failed
// class check admits with CapabilityCheckFailed, never refuses; claims may be nil (no check).
func ValidateScriptPod(ctx context.Context, claims *ClaimJudge, pod *corev1.Pod, f workspace.Facts) ScriptPodVerdict {
	v := ScriptPodVerdict{Result: workspace.Validate(pod, f)}
	if v.Denied || v.Mode != workspace.ModeShare || claims == nil {
		return v
	}
	cv, err := claims.Judge(ctx, f.Claim)
	switch {
	case err != nil:
		cv = CheckFailed(f.Claim, err)
		v.Code, v.Message = cv.Code, cv.Message
	case cv.Denied:
		v.Denied, v.Code, v.Message = true, cv.Code, "script pod refused: its workspace "+cv.Message
	}
	v.Claim = &cv
	return v
}
