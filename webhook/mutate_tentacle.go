package webhook

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// TentacleFactFinder gathers the facts about the agent of a Tentacle pod being created.
type TentacleFactFinder interface {
	TentacleFacts(ctx context.Context, pod *corev1.Pod) (workspace.Facts, error)
}

// TentacleMutator keeps a new Tentacle pod (agent upgrade, rollout restart) on the node that
// holds its ReadWriteOnce workspace. It never refuses: a failure admits the pod unchanged.
type TentacleMutator struct {
	Finder    TentacleFactFinder
	MountPath string
	Recorder  *audit.Recorder
	// Modes says where refusals are only reported (warn mode); nil: enforced everywhere.
	Modes ModeFinder
}

func (m *TentacleMutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	return recorded(ctx, req, audit.MutateTentacle, m.Recorder, m.Modes, func(o *audit.Outcome) admission.Response { return m.handle(ctx, req, o) })
}

func (m *TentacleMutator) handle(ctx context.Context, req admission.Request, o *audit.Outcome) admission.Response {
	pod, resp, ok := decodePodCreate(req, o)
	if !ok {
		if !resp.Allowed { // undecodable: the pod is not refused for our trouble
			o.Decision = reason.Allowed
			return admission.Allowed("not placed: " + o.Message)
		}
		return resp
	}
	if !agent.IsTentacle(pod, m.MountPath) {
		return admission.Allowed("not a Tentacle pod")
	}
	facts, err := m.Finder.TentacleFacts(ctx, pod)
	if err != nil {
		o.Decision, o.Code, o.Message = reason.Allowed, reason.InternalError, err.Error()
		o.Warnings = append(o.Warnings, "workspace webhook could not check where the Tentacle pod's ReadWriteOnce volume is ("+err.Error()+"); not pinned")
		return admission.Allowed("not placed: " + err.Error())
	}
	res := workspace.PlaceTentacle(pod, facts)
	o.Agent, o.Claim, o.Node, o.Code, o.Message = facts.Agent.String(), facts.ClaimName, res.Node, res.Code, res.Message
	return admitted(o, res)
}
