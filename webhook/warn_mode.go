package webhook

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// ModeFinder says whether refusals in a namespace are enforced or only reported
// (enforcement.Namespaces: --enforcement, overridden by the namespace's label).
type ModeFinder interface {
	For(ctx context.Context, namespace string) enforcement.Mode
}

// modeOf is the namespace's mode; without a ModeFinder, enforce.
func modeOf(ctx context.Context, modes ModeFinder, namespace string) enforcement.Mode {
	if modes == nil {
		return enforcement.Enforce
	}
	return modes.For(ctx, namespace)
}

// wouldDeny is the one place a refusal becomes an admission in warn mode: the request is
// admitted unchanged (a refusing decision has no patch, and there is nothing safe to patch
// into a pod whose workspace cannot work), the refusal's message goes to the user as an
// admission warning, and the outcome is recorded as would-deny with the refusal's reason
// code, its Event target and its message, so every audit channel shows what enforce mode
// would have refused. Any refusal converts, InternalError and InvalidRequest included: warn
// mode never blocks (an unreachable webhook is still the failurePolicy's to decide).
func wouldDeny(o *audit.Outcome) admission.Response {
	o.Decision = reason.WouldDeny
	warning := audit.WouldRefuse(o.Code, o.Message)
	o.Warnings = append([]string{warning}, o.Warnings...)
	return admission.Allowed(warning)
}
