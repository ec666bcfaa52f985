package webhook

import (
	"context"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// ClaimValidator refuses ReadWriteMany claims on classes that cannot serve them, at once and
// with the reason, instead of a claim that stays Pending for ever.
type ClaimValidator struct {
	Decoder admission.Decoder
	Claims  *ClaimJudge
	// ExcludedNamespaces are never judged (kube-system, kube-node-lease, our own), whatever
	// the webhook configuration sends.
	ExcludedNamespaces map[string]bool
	Recorder           *audit.Recorder
	// Modes says where refusals are only reported (warn mode); nil: enforced everywhere.
	Modes ModeFinder
}

func (v *ClaimValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	return recorded(ctx, req, audit.ValidatePVC, v.Recorder, v.Modes, func(o *audit.Outcome) admission.Response { return v.handle(ctx, req, o) })
}

func (v *ClaimValidator) handle(ctx context.Context, req admission.Request, o *audit.Outcome) admission.Response {
	o.Decision, o.Code = reason.Allowed, reason.OutOfScope
	if req.Operation != admissionv1.Create || req.Kind.Kind != "PersistentVolumeClaim" || req.SubResource != "" {
		return admission.Allowed("not a claim creation")
	}
	if v.ExcludedNamespaces[req.Namespace] {
		return admission.Allowed("namespace " + req.Namespace + " is never validated")
	}
	claim := &corev1.PersistentVolumeClaim{}
	if err := v.Decoder.Decode(req, claim); err != nil {
		o.Decision, o.Code, o.Message = reason.Denied, reason.InvalidRequest, err.Error()
		return admission.Errored(http.StatusBadRequest, err)
	}
	if claim.Namespace == "" {
		claim.Namespace = req.Namespace
	}
	o.Claim = claim.Name
	listing := &volumeListing{} // one PersistentVolume listing for both checks
	verdict, err := v.Claims.judgeWith(ctx, claim, listing)
	if err != nil {
		verdict = CheckFailed(claim, err)
	}
	if !verdict.Denied {
		verdict = v.bindable(ctx, claim, verdict, listing)
	}
	verdict.describe(o)
	o.Code, o.Message = verdict.Code, verdict.Message
	if verdict.Denied {
		o.Decision = reason.Denied
		// The claim does not exist yet: the Event goes on its namespace.
		o.EventTarget = &corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: req.Namespace, Namespace: req.Namespace}
		return denied(verdict.Message)
	}
	o.Decision = reason.Allowed
	return admission.Allowed(verdict.Message)
}

// bindable adds the cannotBind finding to an admitting verdict: a warning, or a refusal with
// --deny-unbindable-claims. A failure to check it is a warning, never a refusal.
func (v *ClaimValidator) bindable(ctx context.Context, claim *corev1.PersistentVolumeClaim, verdict ClaimVerdict, listing *volumeListing) ClaimVerdict {
	why, err := v.Claims.cannotBind(ctx, claim, listing)
	switch {
	case err != nil:
		verdict.Warnings = append(verdict.Warnings, fmt.Sprintf("could not check that claim %s can bind (%v)", claimName(claim), err))
	case why == "":
	case v.Claims.DenyUnbindable:
		verdict.Code, verdict.Denied, verdict.Message = reason.ClaimCannotBind, true, why
	default:
		verdict.Code, verdict.Message = reason.ClaimCannotBind, why
		verdict.Warnings = append(verdict.Warnings, why)
	}
	return verdict
}
