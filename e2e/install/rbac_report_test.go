package install

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
)

// leastPrivilege is what TestLeastPrivilege observed: the rules rendered and every run.
type leastPrivilege struct {
	webhookRules, certRules int
	runs                    []*rbacRun
}

// rbacRun is one run with a set of rules: every rendered rule (all), or all but one.
type rbacRun struct {
	set, name  string
	all        bool
	worked     bool     // all: everything worked (the webhook: every capability, no "forbidden" logged)
	broke      bool     // one rule removed: what it is there for broke
	named      bool     // ... and the failure or the log named the permission
	onRequest  bool     // the webhook's rule serves a request path (not start-up), so collateral is checked
	collateral []string // ... and what else broke
	outcome    string
	asExpected bool // the run's own assertions held
}

// add starts the record of the run t makes; when t ends, it records whether t passed.
func (l *leastPrivilege) add(t *testing.T, set, name string, all bool) *rbacRun {
	r := &rbacRun{set: set, name: name, all: all}
	l.runs = append(l.runs, r)
	t.Cleanup(func() { r.asExpected = !t.Failed() })
	return r
}

// observe records a webhook run: the capabilities that worked, and, with rule i removed, what
// broke and whether anything said why.
func (r *rbacRun) observe(capabilities []capability, failures map[string]error, log string, i int, want []ruleBreaks) {
	working := len(capabilities) - len(failures)
	forbidden := strings.Contains(strings.ToLower(log), "forbidden")
	r.outcome = fmt.Sprintf("%d of %d capabilities work", working, len(capabilities))
	if i < 0 {
		r.worked = len(failures) == 0 && !forbidden
		if forbidden {
			r.outcome += `; "forbidden" in the webhook's log`
		}
		return
	}
	broken := want[i]
	var said strings.Builder
	r.broke = true
	for _, c := range broken.capabilities {
		if err := failures[c]; err == nil {
			r.broke = false
		} else {
			said.WriteString(err.Error() + "\n")
		}
	}
	r.named = true
	for _, word := range broken.because {
		r.named = r.named && strings.Contains(said.String()+log, word)
	}
	r.onRequest = broken.capabilities[0] != "ready"
	for _, c := range capabilities {
		if failures[c.name] != nil && !slices.Contains(broken.capabilities, c.name) {
			r.collateral = append(r.collateral, c.name)
		}
	}
	r.outcome += "; broke: " + strings.Join(broken.capabilities, ", ") + map[bool]string{true: "", false: " (NOT all)"}[r.broke]
	if r.onRequest {
		r.outcome += "; also broke: " + strings.Join(r.collateral, ", ")
		if len(r.collateral) == 0 {
			r.outcome += "nothing"
		}
	}
	r.outcome += "; the failure names the permission: " + map[bool]string{true: "yes", false: "no"}[r.named]
}

// result is scenario 42 of RELIABILITY.md.
func (l leastPrivilege) result() bench.Result {
	const m = "least privilege"
	const hook, certs = "webhook ClusterRole", "self-managed certificates"
	fig := func(figure, measured, target string, met bool) bench.Figure {
		return bench.Figure{Measurement: m, Figure: figure, Measured: measured, Target: target, Met: bench.Met(met)}
	}
	var raw strings.Builder
	// Counts over the runs: with every rule (the one that must work) and with one removed.
	var hookAll, certAll *rbacRun
	var removed, broke, named, onRequest, alone, startUp, certRemoved, certBroke int
	for _, r := range l.runs {
		outcome := r.outcome
		if outcome == "" {
			outcome = "no observation (the run failed before)"
		}
		fmt.Fprintf(&raw, "%s | %s | %s | as expected: %s\n", r.set, r.name, outcome, map[bool]string{true: "yes", false: "NO"}[r.asExpected])
		switch {
		case r.set == hook && r.all:
			hookAll = r
		case r.set == certs && r.all:
			certAll = r
		case r.set == hook:
			removed++
			if r.broke {
				broke++
			}
			if r.broke && r.named {
				named++
			}
			switch {
			case r.outcome == "":
			case !r.onRequest:
				startUp++
			default:
				onRequest++
				if len(r.collateral) == 0 {
					alone++
				}
			}
		default:
			certRemoved++
			if r.broke && r.named {
				certBroke++
			}
		}
	}
	ofRules := func(n, of, rules int) string {
		s := fmt.Sprintf("%d of %d", n, rules)
		if of != rules {
			s += fmt.Sprintf(" (%d removed and run)", of)
		}
		return s
	}
	withAll := func(r *rbacRun, what string) (string, bool) {
		switch {
		case r == nil:
			return "not run", false
		case !r.worked:
			return "FAILED: " + r.outcome, false
		}
		return what, true
	}
	hookMeasured, hookOK := withAll(hookAll, "")
	if hookOK {
		hookMeasured = "ready; " + hookAll.outcome + `; no "forbidden" in its log`
	}
	certMeasured, certOK := withAll(certAll, "CA in its Secret, caBundle injected")
	figures := []bench.Figure{
		{Measurement: m, Figure: "rules of the webhook's rendered ClusterRole", Measured: fmt.Sprint(l.webhookRules)},
		fig("the webhook impersonating a service account bound to exactly those rules", hookMeasured, "everything works", hookOK),
		fig("rules proven needed: without it, what it is there for breaks", ofRules(broke, removed, l.webhookRules), "all", l.webhookRules > 0 && broke == l.webhookRules),
		fig("... and the failure or the webhook's log names the permission", ofRules(named, removed, l.webhookRules), "all", l.webhookRules > 0 && named == l.webhookRules),
		fig("rules read on request paths whose removal breaks nothing else", fmt.Sprintf("%d of %d (the other %d stop start-up: nothing is served without them)", alone, onRequest, startUp),
			"all", alone == onRequest),
		{Measurement: m, Figure: "rules of the self-managed flavour's certificate Role and ClusterRole", Measured: fmt.Sprint(l.certRules)},
		fig("certificate bootstrap impersonating a service account bound to exactly those rules", certMeasured, "works", certOK),
		fig("certificate rules proven needed: without it, bootstrap fails naming the permission", ofRules(certBroke, certRemoved, l.certRules), "all", l.certRules > 0 && certBroke == l.certRules),
	}
	return bench.Result{Order: 42, Name: "least-privilege", Title: "42. Least privilege: every rendered RBAC rule proven needed",
		Config: "Promise: the webhook's credentials are least privilege, proven by an impersonated run that succeeds with exactly the rendered RBAC and fails without each rule. " +
			"How: a real kube-apiserver and etcd; the webhook binary ($WEBHOOK_BIN, the production build under make reliability, else go build ./cmd/workspace-webhook) run as its own process with a kubeconfig impersonating a service account " +
			"bound to its own copy of the rendered ClusterRole (cert-manager flavour), then once per rule with that rule removed; each run probed with AdmissionReviews " +
			"sent to its HTTPS endpoint for every capability (pin by a running Tentacle, by a claim the cache does not hold, by a VolumeAttachment, follow a moved Tentacle, " +
			"see a new node and a new class, judge a class by its volumes, check a claim's volume, record a refusal as an Event and count its series). " +
			"The self-managed flavour's certificate Role and ClusterRole alike: its certificate manager bootstrapping the CA and injecting the caBundle as that service account, " +
			"with every rule and without each one.",
		Figures: figures,
		Raw:     raw.String(),
	}
}
