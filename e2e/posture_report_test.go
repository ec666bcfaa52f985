package e2e

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
)

// posture is what TestPosture observed; a field left nil or empty was not reached (its check
// failed before) and shows as such.
type posture struct {
	listeners         *listeners
	plaintext         []plainGet
	plainToTLS        string
	plainToTLSRefused bool
	defaultTLS        *tls.ConnectionState // a client offering TLS 1.2-1.3, h2 and http/1.1
	defaultRefusals   []tlsRefusal         // TLS 1.2-only, 1.1-only
	tls12             *tls.ConnectionState // a TLS 1.2-only client, --tls-min-version=1.2
	http2Enabled      *tls.ConnectionState // TLS 1.2-1.3 offering h2, --enable-http2
	min12Refusals     []tlsRefusal         // TLS 1.1-only, 1.0-only with --tls-min-version=1.2
	podSecurity       []podSecurityVerdict
}

type listeners struct {
	p          *webhookprocess.Process
	tcp, other []string
	enumerated bool
	want       []string
}

type plainGet struct {
	url       string
	got, want int
}

type tlsRefusal struct {
	version uint16
	refused bool
	what    string
}

// podSecurityVerdict is one kustomization's: the Pod Security library's objection to its
// Deployment's pod at "restricted" ("" when it passes) and its Namespace's enforce label.
type podSecurityVerdict struct {
	flavour, deployment, enforce string
}

// podSecurityOf renders flavour and judges its Deployment and Namespace.
func podSecurityOf(t *testing.T, flavour string) podSecurityVerdict {
	t.Helper()
	y, err := manifests.Render(flavour, false)
	must(t, err)
	v := podSecurityVerdict{flavour: flavour}
	var d *appsv1.Deployment
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(y), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		switch u.GetKind() {
		case "Namespace":
			v.enforce = u.GetLabels()[api.EnforceLevelLabel]
		case "Deployment":
			d = &appsv1.Deployment{}
			must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d))
		}
	}
	if d == nil {
		t.Fatalf("%s renders no Deployment", flavour)
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	must(t, err)
	tmpl := &d.Spec.Template
	results := evaluator.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &tmpl.ObjectMeta, &tmpl.Spec)
	if agg := policy.AggregateCheckResults(results); !agg.Allowed {
		v.deployment = agg.ForbiddenReason() + ": " + agg.ForbiddenDetail()
	}
	return v
}

// result is scenario 41 of RELIABILITY.md.
func (s posture) result() bench.Result {
	const m = "security posture"
	const notReached = "not measured (an earlier check failed)"
	fig := func(figure, measured, target string, met bool) bench.Figure {
		return bench.Figure{Measurement: m, Figure: figure, Measured: measured, Target: target, Met: bench.Met(met)}
	}
	var figures []bench.Figure
	var raw strings.Builder

	// What listens, named by role.
	if l := s.listeners; l == nil {
		figures = append(figures, fig("sockets the process listens on (the kernel's socket tables)", notReached, "the TLS webhook port, metrics and probes only", false))
	} else if !l.enumerated {
		figures = append(figures, bench.Figure{Measurement: m, Figure: "sockets the process listens on (the kernel's socket tables)", Measured: "not enumerated (no /proc socket tables here)"})
	} else {
		var named []string
		for _, r := range []struct{ role, addr string }{{"webhook (TLS)", l.p.Addr}, {"metrics", l.p.Metrics}, {"probes", l.p.Probe}} {
			if slices.Contains(l.tcp, r.addr) {
				named = append(named, r.role+" "+r.addr)
			}
		}
		for _, a := range l.tcp {
			if !slices.Contains(l.want, a) {
				named = append(named, "unexpected "+a)
			}
		}
		measured := fmt.Sprintf("%d TCP: %s; other sockets: %d", len(l.tcp), strings.Join(named, ", "), len(l.other))
		if len(l.other) > 0 {
			measured += " (" + strings.Join(l.other, ", ") + ")"
		}
		figures = append(figures, fig("sockets the process listens on (the kernel's socket tables)", measured,
			"the TLS webhook port, metrics and probes only", slices.Equal(l.tcp, l.want) && len(l.other) == 0))
		fmt.Fprintf(&raw, "listening (pid %d): TCP %v, other %v\n", l.p.Pid(), l.tcp, l.other)
	}

	// Plaintext: which ports answer HTTP without TLS, and with what.
	var served []string
	wrongPaths, wrongPathsRefused := 0, 0
	for _, g := range s.plaintext {
		fmt.Fprintf(&raw, "plaintext GET %s: HTTP %d (want %d)\n", g.url, g.got, g.want)
		path := g.url
		if u, err := url.Parse(g.url); err == nil {
			path = u.Path
		}
		if g.want == 200 {
			served = append(served, fmt.Sprintf("%s %d", path, g.got))
		} else {
			wrongPaths++
			if g.got == g.want {
				wrongPathsRefused++
			}
		}
	}
	fmt.Fprintf(&raw, "plaintext to the webhook port: %s\n", s.plainToTLS)
	if s.plainToTLS == "" {
		figures = append(figures, fig("plaintext listeners", notReached, "probes and metrics only", false))
	} else {
		onlyThose := s.listeners != nil && s.listeners.enumerated && slices.Equal(s.listeners.tcp, s.listeners.want) && len(s.listeners.other) == 0
		measured := "metrics and probes (" + strings.Join(served, ", ") + "); the webhook port refuses plaintext"
		if !s.plainToTLSRefused {
			measured = "the webhook port answers plaintext: " + s.plainToTLS
		}
		figures = append(figures,
			fig("plaintext listeners", measured, "probes and metrics only", onlyThose && s.plainToTLSRefused),
			fig("plaintext HTTP to the webhook's TLS port", s.plainToTLS, "refused by the TLS server", s.plainToTLSRefused),
			fig("webhook paths and /debug/pprof/ on the plaintext ports", fmt.Sprintf("HTTP 404 for %d of %d", wrongPathsRefused, wrongPaths), "404 for all", wrongPaths > 0 && wrongPathsRefused == wrongPaths))
	}

	// TLS versions and ALPN.
	if c := s.defaultTLS; c == nil {
		figures = append(figures, fig("TLS a client offering 1.2 to 1.3 gets (defaults)", notReached, "TLS 1.3", false))
	} else {
		figures = append(figures, fig("TLS a client offering 1.2 to 1.3 gets (defaults)", tls.VersionName(c.Version), "TLS 1.3", c.Version == tls.VersionTLS13))
		fmt.Fprintf(&raw, "defaults: a client offering TLS 1.2-1.3 and ALPN h2, http/1.1 got %s, ALPN %q\n", tls.VersionName(c.Version), c.NegotiatedProtocol)
	}
	refusals := func(figure string, rs []tlsRefusal, want int) {
		if len(rs) < want {
			figures = append(figures, fig(figure, notReached, "refused", false))
			return
		}
		var what []string
		all := true
		for _, r := range rs {
			what = append(what, tls.VersionName(r.version)+"-only: "+r.what)
			all = all && r.refused
		}
		figures = append(figures, fig(figure, strings.Join(what, "; "), "refused", all))
	}
	refusals("clients offering only a version below the default minimum (TLS 1.3)", s.defaultRefusals, 2)
	if c := s.tls12; c == nil {
		figures = append(figures, fig("with --tls-min-version=1.2: a TLS 1.2-only client", notReached, "served at TLS 1.2", false))
	} else {
		figures = append(figures, fig("with --tls-min-version=1.2: a TLS 1.2-only client", "served at "+tls.VersionName(c.Version), "served at TLS 1.2", c.Version == tls.VersionTLS12))
	}
	refusals("with --tls-min-version=1.2: clients offering only TLS 1.1 or 1.0", s.min12Refusals, 2)
	if c := s.defaultTLS; c == nil {
		figures = append(figures, fig("HTTP/2 offered by default (ALPN h2 to a client asking for it)", notReached, "no", false))
	} else {
		measured := fmt.Sprintf("no (ALPN %q)", c.NegotiatedProtocol)
		if c.NegotiatedProtocol == "h2" {
			measured = "yes (ALPN h2)"
		}
		figures = append(figures, fig("HTTP/2 offered by default (ALPN h2 to a client asking for it)", measured, "no", c.NegotiatedProtocol != "h2"))
	}
	if c := s.http2Enabled; c == nil {
		figures = append(figures, fig("HTTP/2 with --enable-http2 (the control: its absence above is the server's choice)", notReached, "yes", false))
	} else {
		figures = append(figures, fig("HTTP/2 with --enable-http2 (the control: its absence above is the server's choice)",
			fmt.Sprintf("%s (ALPN %q)", map[bool]string{true: "yes", false: "no"}[c.NegotiatedProtocol == "h2"], c.NegotiatedProtocol), "yes", c.NegotiatedProtocol == "h2"))
	}

	// Pod Security.
	var pass, fail, enforced []string
	for _, v := range s.podSecurity {
		if v.deployment == "" {
			pass = append(pass, v.flavour)
		} else {
			fail = append(fail, v.flavour+" ("+v.deployment+")")
		}
		enforced = append(enforced, v.flavour+" "+v.enforce)
		fmt.Fprintf(&raw, "Pod Security, %s: Deployment %s; namespace enforce=%s\n", v.flavour, map[bool]string{true: "passes restricted", false: "fails: " + v.deployment}[v.deployment == ""], v.enforce)
	}
	if len(s.podSecurity) == 0 {
		figures = append(figures, fig("the webhook's Deployment under Pod Security restricted", notReached, "pass", false))
	} else {
		measured := "pass: " + strings.Join(pass, ", ")
		if len(fail) > 0 {
			measured = "FAIL: " + strings.Join(fail, "; ") + "; pass: " + strings.Join(pass, ", ")
		}
		allEnforced := true
		for _, v := range s.podSecurity {
			allEnforced = allEnforced && v.enforce == "restricted"
		}
		figures = append(figures,
			fig("the webhook's Deployment under Pod Security restricted (each kustomization)", measured, "pass", len(fail) == 0 && len(pass) == len(manifests.Flavours)),
			fig("the level its namespace enforces (pod-security.kubernetes.io/enforce)", strings.Join(enforced, ", "), "restricted", allEnforced))
	}

	return bench.Result{Order: 41, Name: "posture", Title: "41. Security posture: TLS, HTTP/2, listeners, Pod Security",
		Config: "Promise: TLS below the minimum (1.3 by default, 1.2 when asked) is refused; HTTP/2 is off by default; nothing listens in plaintext but the probes and the metrics, " +
			"which serve their own paths and nothing of the webhook; the webhook's Deployment passes Pod Security restricted, which its namespace enforces. " +
			"How: the webhook binary ($WEBHOOK_BIN, the production build under make reliability, else go build ./cmd/workspace-webhook) run as its own process against a real kube-apiserver with a serving certificate, " +
			"its listening sockets read from the kernel's tables (/proc/<pid>/net: TCP in LISTEN, unconnected UDP, listening unix sockets), " +
			"TLS handshakes from clients offering one version each and from one offering TLS 1.2 to 1.3 with ALPN h2 and http/1.1, plaintext GETs to each port; " +
			"then again with --tls-min-version=1.2 --enable-http2; each kustomization (" + strings.Join(manifests.Flavours, ", ") + ") rendered, " +
			"its Deployment's pod judged by the Pod Security library the API server uses (k8s.io/pod-security-admission, restricted, latest) and its Namespace's enforce label read.",
		Figures: figures,
		Raw:     raw.String(),
	}
}
