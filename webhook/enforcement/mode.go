// Package enforcement says whether the webhook's refusals are enforced or only reported
// (audit-only, "warn" mode): globally by --enforcement, per namespace by the label
// workspace-webhook.io/enforcement that a cluster admin sets. In warn mode nothing is
// refused: every refusal becomes an admission warning, a Warning Event, the metric and the
// audit annotation with the decision would-deny (package webhook converts it, in one place).
// The final-state ValidatingAdmissionPolicy follows the same modes through two bindings
// selected by the same label (PolicyActions).
package enforcement

import "fmt"

// Label is the namespace label that overrides the global mode for one namespace. Only who
// may update the Namespace object can set it (a cluster-scoped object: namespace admins bound
// to the built-in admin or edit roles cannot); README "Install", "Rolling out".
const Label = "workspace-webhook.io/enforcement"

// Mode is what happens to a request the webhook would refuse.
type Mode string

const (
	// Enforce refuses it.
	Enforce Mode = "enforce"
	// Warn admits it unchanged, with a warning, and records it as would-deny.
	Warn Mode = "warn"
)

// Modes are the valid modes, for flags, schemas and messages.
var Modes = []Mode{Enforce, Warn}

// Parse reads a mode as written in --enforcement or the label.
func Parse(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Enforce, Warn:
		return m, nil
	}
	return "", fmt.Errorf("enforcement mode must be %q or %q, got %q", Enforce, Warn, s)
}

// Resolve is the mode of a namespace with these labels: the label's value when it names a
// mode, else the global mode. valid is false when the label is set to something that is not
// a mode ("Warn", "off", ""): the global mode applies, so a typo never weakens enforcement
// beyond what the admin chose for the cluster, and the policy bindings' selectors (NotIn the
// other mode) treat it the same way.
func Resolve(global Mode, labels map[string]string) (mode Mode, valid bool) {
	v, ok := labels[Label]
	if !ok {
		return global, true
	}
	m, err := Parse(v)
	if err != nil {
		return global, false
	}
	return m, true
}
