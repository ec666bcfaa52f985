package enforcement

import (
	"fmt"
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// PolicyActions are the validationActions the API server takes on a refusal of the
// final-state policy in a namespace with nsLabels: the union over the bindings whose
// namespaceSelector selects it (no selector: every namespace), in the order the manifests
// write them (Deny, Warn, Audit), and those bindings' names. The shipped layout
// (manifests/base/script-pod-policy.yaml) has two bindings, [Deny, Audit] and [Warn, Audit],
// selected by Label so that each namespace gets exactly one, the one of its mode.
func PolicyActions(bindings []admissionregistrationv1.ValidatingAdmissionPolicyBinding, nsLabels map[string]string) ([]admissionregistrationv1.ValidationAction, []string, error) {
	var actions []admissionregistrationv1.ValidationAction
	var names []string
	for _, b := range bindings {
		sel := labels.Everything()
		if mr := b.Spec.MatchResources; mr != nil && mr.NamespaceSelector != nil {
			var err error
			if sel, err = metav1.LabelSelectorAsSelector(mr.NamespaceSelector); err != nil {
				return nil, nil, fmt.Errorf("binding %s: namespaceSelector: %w", b.Name, err)
			}
		}
		if !sel.Matches(labels.Set(nsLabels)) {
			continue
		}
		names = append(names, b.Name)
		for _, a := range b.Spec.ValidationActions {
			if !slices.Contains(actions, a) {
				actions = append(actions, a)
			}
		}
	}
	order := []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Warn, admissionregistrationv1.Audit}
	slices.SortFunc(actions, func(a, b admissionregistrationv1.ValidationAction) int {
		return slices.Index(order, a) - slices.Index(order, b)
	})
	return actions, names, nil
}

// ModeOfActions is the mode a set of validationActions amounts to: Enforce with Deny, Warn
// with Warn and no Deny; ok is false when neither (no binding, or Audit alone: nobody is told).
func ModeOfActions(actions []admissionregistrationv1.ValidationAction) (mode Mode, ok bool) {
	switch {
	case slices.Contains(actions, admissionregistrationv1.Deny):
		return Enforce, true
	case slices.Contains(actions, admissionregistrationv1.Warn):
		return Warn, true
	}
	return "", false
}
