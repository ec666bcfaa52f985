package webhook

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// ScriptPodDecision is the mutating webhook's whole decision on a script pod, every refusal
// that needs facts included: the workspace (volume, mounts, pin: workspace.Mutate), then,
// for a ReadWriteMany claim, whether its class can serve it. What the pod must still look
// like after later webhooks is the final-state policy's (workspace.CheckFinalState).
type ScriptPodDecision struct {
	workspace.Result
	// Claim is the class judgement, nil when the claim is not ReadWriteMany (or not reached).
	Claim *ClaimVerdict
}

// DecideScriptPod is that decision, for the mutating webhook and explain alike. A failed
// class check admits, with the patch and CapabilityCheckFailed, never refuses; claims may be
// nil (no class check).
func DecideScriptPod(ctx context.Context, cfg workspace.Config, claims *ClaimJudge, pod *corev1.Pod, f workspace.Facts) ScriptPodDecision {
	d := ScriptPodDecision{Result: workspace.Mutate(cfg, pod, f)}
	if d.Denied || d.Mode != workspace.ModeShare || claims == nil {
		return d
	}
	cv, err := claims.Judge(ctx, f.Claim)
	switch {
	case err != nil:
		cv = CheckFailed(f.Claim, err)
		d.Code, d.Message = cv.Code, cv.Message
	case cv.Denied:
		d.Result = workspace.Result{Code: cv.Code, Denied: true, Message: "script pod refused: its workspace " + cv.Message, Mode: d.Mode, Claim: d.Result.Claim}
	}
	d.Claim = &cv
	return d
}
