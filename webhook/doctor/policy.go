package doctor

import (
	"fmt"
	"sort"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// policyProblems compares the cluster's script-pod policy and its bindings with the shipped
// ones: without them nothing catches a later mutating webhook that undoes the workspace.
func policyProblems(s Snapshot) []Problem {
	if s.ShippedPolicy == nil {
		return nil
	}
	name := s.ShippedPolicy.Name
	obj := "policy " + name
	if s.Policy == nil {
		return []Problem{{Error, obj, "the ValidatingAdmissionPolicy that checks each script pod's final state is not installed: a mutating webhook running after ours could remove the workspace mount or the pin unnoticed",
			"re-apply the manifests of this version (kubectl apply -k manifests/cert-manager, or helm upgrade)"}}
	}
	var out []Problem
	have, want := s.Policy.Spec, s.ShippedPolicy.Spec
	var differ []string
	for field, pair := range map[string][2]any{
		"failurePolicy": {have.FailurePolicy, want.FailurePolicy}, "matchConstraints": {have.MatchConstraints, want.MatchConstraints},
		"matchConditions": {have.MatchConditions, want.MatchConditions}, "variables": {have.Variables, want.Variables},
		"validations": {have.Validations, want.Validations}, "auditAnnotations": {have.AuditAnnotations, want.AuditAnnotations},
		"paramKind": {have.ParamKind, want.ParamKind},
	} {
		if !equalJSON(pair[0], pair[1]) {
			differ = append(differ, field)
		}
	}
	if len(differ) > 0 {
		sort.Strings(differ)
		out = append(out, Problem{Warning, obj, "differs from the shipped manifests in " + strings.Join(differ, ", "),
			"re-apply the manifests of this version (an older install, or an edit, changes what the policy checks)"})
	}
	if len(s.PolicyBindings) == 0 {
		return append(out, Problem{Error, obj, "has no ValidatingAdmissionPolicyBinding, so it checks nothing",
			"re-apply the manifests of this version"})
	}
	for _, b := range s.PolicyBindings {
		actions := make([]string, len(b.Spec.ValidationActions))
		deny := false
		for i, a := range b.Spec.ValidationActions {
			actions[i] = string(a)
			deny = deny || a == admissionregistrationv1.Deny
		}
		if !deny {
			out = append(out, Problem{Warning, "binding " + b.Name, fmt.Sprintf("validationActions [%s]: script pods the policy refuses are admitted with a warning (audit-only)", strings.Join(actions, ", ")),
				"when the audit log shows no would-be refusals, switch it to [Deny, Audit]"})
		}
	}
	return out
}

// unshippedEntries are webhook entries in our configurations that the shipped manifests do
// not have: an earlier release's (the script-pod validating webhook before the policy), or a
// local addition. Each is a call the API server makes for nothing we ship.
func unshippedEntries(have, want map[string]string) []Problem {
	var names []string
	for n := range have {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []Problem
	for _, n := range names {
		out = append(out, Problem{Warning, "webhook " + n, "in the " + have[n] + " configuration but not in the shipped manifests (an earlier release's entry, or a local addition): the API server still calls it",
			"re-apply the manifests of this version, or remove the entry if nobody added it on purpose"})
	}
	return out
}
