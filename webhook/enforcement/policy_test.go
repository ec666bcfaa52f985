package enforcement

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/octopus-agent-tools/workspace-webhook/manifests/base"
)

// NamespaceStates are the kinds of namespace the bindings must tell apart: no label, each
// mode, and a value that names no mode.
var namespaceStates = []map[string]string{nil, {Label: "enforce"}, {Label: "warn"}, {Label: "Warn"}, {"other": "warn"}}

// The shipped bindings (the enforce install) give every kind of namespace exactly one
// binding, of the mode the webhook resolves for it with --enforcement=enforce.
func TestShippedBindingsFollowTheWebhooksMode(t *testing.T) {
	_, shipped, err := base.ScriptPodPolicy()
	if err != nil {
		t.Fatal(err)
	}
	var bindings []admissionregistrationv1.ValidatingAdmissionPolicyBinding
	for _, b := range shipped {
		bindings = append(bindings, *b)
	}
	for _, ns := range namespaceStates {
		actions, names, err := PolicyActions(bindings, ns)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ModeOfActions(actions)
		want, _ := Resolve(Enforce, ns)
		if len(names) != 1 || !ok || got != want {
			t.Errorf("namespace labels %v: bindings %v give %v (%s), the webhook %s", ns, names, actions, got, want)
		}
	}
}

func TestModeOfActions(t *testing.T) {
	const deny, warn, audit = admissionregistrationv1.Deny, admissionregistrationv1.Warn, admissionregistrationv1.Audit
	for _, c := range []struct {
		actions []admissionregistrationv1.ValidationAction
		want    Mode
		ok      bool
	}{
		{[]admissionregistrationv1.ValidationAction{deny, audit}, Enforce, true},
		{[]admissionregistrationv1.ValidationAction{deny, warn, audit}, Enforce, true},
		{[]admissionregistrationv1.ValidationAction{warn, audit}, Warn, true},
		{[]admissionregistrationv1.ValidationAction{audit}, "", false},
		{nil, "", false},
	} {
		if got, ok := ModeOfActions(c.actions); got != c.want || ok != c.ok {
			t.Errorf("%v: %q %v, want %q %v", c.actions, got, ok, c.want, c.ok)
		}
	}
}
