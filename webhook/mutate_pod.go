package webhook

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// PodMutator injects the workspace and the RWO node pin into script pods.
type PodMutator struct {
	Finder FactFinder
	Config workspace.Config
	// ScriptPodLabel is the label key that marks script pods (Tentacle: octopus.com/scriptTicketId).
	ScriptPodLabel string
	Recorder       *audit.Recorder
}

func (m *PodMutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	return recorded(ctx, req, audit.MutatePod, m.Recorder, func(o *audit.Outcome) admission.Response { return m.handle(ctx, req, o) })
}

func (m *PodMutator) handle(ctx context.Context, req admission.Request, o *audit.Outcome) admission.Response {
	pod, facts, resp, ok := scriptPodFacts(ctx, req, m.ScriptPodLabel, m.Finder, o)
	if !ok {
		return resp
	}
	res := workspace.Mutate(m.Config, pod, facts)
	noteResult(o, facts, res)
	o.NodeSource = facts.NodeSource
	if facts.TentaclePod != "" {
		o.Tentacle = tentacleRef(facts)
	}
	if res.Denied {
		return deniedFor(o, facts, res.Message)
	}
	return admitted(o, res)
}
