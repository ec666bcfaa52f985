package webhook

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// PodMutator injects the workspace and the RWO node pin into script pods, and refuses those
// whose workspace can never work (every refusal that needs facts; see DecideScriptPod).
type PodMutator struct {
	Finder FactFinder
	Config workspace.Config
	// ScriptPodLabel is the label key that marks script pods (Tentacle: octopus.com/scriptTicketId).
	ScriptPodLabel string
	// Claims judges whether a ReadWriteMany workspace claim's class can serve it.
	Claims   *ClaimJudge
	Recorder *audit.Recorder
	// Modes says where refusals are only reported (warn mode); nil: enforced everywhere.
	Modes ModeFinder
}

func (m *PodMutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	return recorded(ctx, req, audit.MutatePod, m.Recorder, m.Modes, func(o *audit.Outcome) admission.Response { return m.handle(ctx, req, o) })
}

func (m *PodMutator) handle(ctx context.Context, req admission.Request, o *audit.Outcome) admission.Response {
	pod, facts, resp, ok := scriptPodFacts(ctx, req, m.ScriptPodLabel, m.Finder, o)
	if !ok {
		return resp
	}
	d := DecideScriptPod(ctx, m.Config, m.Claims, pod, facts)
	noteResult(o, facts, d.Result)
	o.NodeSource = facts.NodeSource
	if facts.TentaclePod != "" {
		o.Tentacle = tentacleRef(facts)
	}
	if d.Claim != nil {
		d.Claim.describe(o)
	}
	if d.Denied {
		return deniedFor(o, facts, d.Message)
	}
	return admitted(o, d.Result)
}
