package doctor

import (
	"fmt"
	"sort"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
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
	return append(out, bindingProblems(s.PolicyBindings)...)
}

// policyMode is the mode the policy's bindings give namespaces without the enforcement label
// (the global mode the install chose: the shipped bindings and the webhook's --enforcement
// come from one switch); enforce when they give none.
func policyMode(bindings []admissionregistrationv1.ValidatingAdmissionPolicyBinding) enforcement.Mode {
	actions, _, err := enforcement.PolicyActions(bindings, nil)
	if err != nil {
		return enforcement.Enforce
	}
	if m, ok := enforcement.ModeOfActions(actions); ok {
		return m
	}
	return enforcement.Enforce
}

// bindingProblems checks what the bindings do in each kind of namespace: without the
// enforcement label (the global mode), labelled enforce, labelled warn. The shipped layout,
// in either mode, gives each exactly its mode: nothing to report but enforcement being off.
func bindingProblems(bindings []admissionregistrationv1.ValidatingAdmissionPolicyBinding) []Problem {
	const obj = "policy octopus-workspace-script-pods"
	reapply := "re-apply the manifests of this version (kubectl apply -k manifests/<flavour>, or helm upgrade)"
	var out []Problem
	actions, names, err := enforcement.PolicyActions(bindings, nil)
	if err != nil {
		return []Problem{{Error, obj, err.Error(), reapply}}
	}
	global, ok := enforcement.ModeOfActions(actions)
	switch {
	case len(names) == 0:
		out = append(out, Problem{Error, obj, "no binding selects namespaces without the " + enforcement.Label + " label, so it checks nothing there", reapply})
	case !ok:
		out = append(out, Problem{Warning, obj, fmt.Sprintf("bindings %s give namespaces without the %s label validationActions [%s]: its refusals are neither enforced nor shown to whoever creates the pod",
			strings.Join(names, ", "), enforcement.Label, joinActions(actions)), reapply})
	case global == enforcement.Warn:
		out = append(out, Problem{Warning, obj, fmt.Sprintf("enforcement is off (audit-only): in every namespace not labelled %s=%s, script pods it would refuse are admitted with a warning (binding %s, validationActions [%s]); the webhook's --enforcement=warn does the same for its own refusals",
			enforcement.Label, enforcement.Enforce, strings.Join(names, ", "), joinActions(actions)),
			`when the audit log shows no would-be refusals (docs/audit.md, "Before switching to enforce"): helm upgrade --reuse-values --set enforcement=enforce, or apply the flavour without components/audit-only`})
	}
	for _, m := range enforcement.Modes {
		actions, names, err := enforcement.PolicyActions(bindings, map[string]string{enforcement.Label: string(m)})
		if err != nil {
			return append(out, Problem{Error, obj, err.Error(), reapply})
		}
		if got, ok := enforcement.ModeOfActions(actions); !ok || got != m {
			out = append(out, Problem{Warning, obj, fmt.Sprintf("namespaces labelled %s=%s get validationActions [%s] (bindings: %s): the policy does not follow the label there, the webhook does",
				enforcement.Label, m, joinActions(actions), orNone(names)), reapply})
		}
	}
	return out
}

// namespaceProblems reports the namespaces whose label turns enforcement off where the
// install enforces, and labels that name no mode.
func namespaceProblems(s Snapshot) []Problem {
	global := enforcement.Enforce
	if s.Policy != nil && len(s.PolicyBindings) > 0 {
		global = policyMode(s.PolicyBindings)
	}
	names := make([]string, 0, len(s.EnforcementLabels))
	for n := range s.EnforcementLabels {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Problem
	for _, n := range names {
		v := s.EnforcementLabels[n]
		mode, valid := enforcement.Resolve(global, map[string]string{enforcement.Label: v})
		switch {
		case !valid:
			out = append(out, Problem{Warning, "namespace " + n, fmt.Sprintf("label %s=%q names no enforcement mode (enforce or warn): the install's mode (%s) applies", enforcement.Label, v, global),
				fmt.Sprintf("kubectl label namespace %s %s=warn --overwrite (or =enforce), or remove it: kubectl label namespace %s %s-", n, enforcement.Label, n, enforcement.Label)})
		case mode == enforcement.Warn && global == enforcement.Enforce:
			out = append(out, Problem{Warning, "namespace " + n, fmt.Sprintf("enforcement is off here (label %s=warn): script pods and claims the webhook or the policy would refuse are admitted with a warning and recorded as would-deny", enforcement.Label),
				fmt.Sprintf(`when the audit log shows no would-be refusals here (docs/audit.md, "Before switching to enforce"): kubectl label namespace %s %s-`, n, enforcement.Label)})
		}
	}
	return out
}

func joinActions(actions []admissionregistrationv1.ValidationAction) string {
	out := make([]string, len(actions))
	for i, a := range actions {
		out[i] = string(a)
	}
	return strings.Join(out, ", ")
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
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
