package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// answer is how a case of the hostile-input catalogue was answered, as observed (not as the
// case expects: the test checks that).
type answer int

const (
	answerNone          answer = iota // the case failed before an answer came
	answerHTTPError                   // an HTTP 4xx, or an AdmissionReview error with a 4xx code
	answerDenied                      // the webhook denied it, saying why
	answerRefusedByAPI                // the API server refused it, as it does the same pod without the webhook
	answerPatched                     // admitted, with the webhook's patch applied by the API server
	answerUnchanged                   // admitted as it was (a claim: with any warnings)
	answerNotSent                     // admitted without the webhook ever seeing it
	answerServerError                 // a 5xx: HTTP status, AdmissionReview code or the API server's
	answerPatchRejected               // the API server refused a pod it accepts without the webhook
)

func (a answer) String() string {
	return [...]string{"no answer", "clear HTTP error", "denied by the webhook", "refused by the API server itself",
		"admitted, patched", "admitted unchanged", "not sent to the webhook", "5xx", "patch rejected by the API server"}[a]
}

// caseRow is one case of the catalogue.
type caseRow struct {
	level, name string
	answer      answer
	detail      string
	asExpected  bool // the case's own assertions held
}

// catalogue collects every case's row, in order.
type catalogue struct{ rows []*caseRow }

// add starts the row of the case t runs; when t ends, the row records whether it passed.
func (c *catalogue) add(t *testing.T, level, name string) *caseRow {
	r := &caseRow{level: level, name: name}
	c.rows = append(c.rows, r)
	t.Cleanup(func() { r.asExpected = !t.Failed() })
	return r
}

// endpointAnswer classifies what the webhook's HTTPS endpoint answered: its HTTP status and,
// on 200, the review's response.
func (r *caseRow) endpointAnswer(status int, resp *admissionv1.AdmissionResponse) {
	r.detail = fmt.Sprintf("HTTP %d", status)
	switch {
	case status >= 500:
		r.answer = answerServerError
	case status >= 400:
		r.answer = answerHTTPError
	case status != http.StatusOK || resp == nil || resp.Result == nil:
		r.answer = answerNone
	default:
		r.detail = fmt.Sprintf("review %d: %s", resp.Result.Code, firstLine(resp.Result.Message, 160))
		switch code := resp.Result.Code; {
		case code >= 500:
			r.answer = answerServerError
		case !resp.Allowed && code == http.StatusForbidden:
			r.answer = answerDenied
		case !resp.Allowed && code >= 400:
			r.answer = answerHTTPError
		case !resp.Allowed:
			r.answer = answerNone
		case len(resp.Patch) > 0:
			r.answer = answerPatched
		default:
			r.answer = answerUnchanged
		}
	}
}

// apiAnswer classifies what kube-apiserver answered a create: err, the pod as stored (nil for
// a claim or a raw body), whether the same pod without the script label was tried and what the
// API server answered it, and whether the webhook recorded a decision meanwhile.
func (r *caseRow) apiAnswer(err error, stored *corev1.Pod, twinTried bool, twin error, sent bool) {
	if err != nil {
		r.detail = fmt.Sprintf("HTTP %d: %s", statusCode(err), firstLine(err.Error(), 160))
	}
	switch {
	case statusCode(err) >= 500:
		r.answer = answerServerError
	case deniedByWebhook(err):
		r.answer = answerDenied
		r.detail = fmt.Sprintf("HTTP %d: %s", statusCode(err), afterWebhookName(err))
	case err != nil && twinTried && (twin == nil || statusCode(twin) != statusCode(err)):
		r.answer = answerPatchRejected
	case err != nil:
		r.answer = answerRefusedByAPI
	case stored != nil && stored.Annotations[workspace.RecordAnnotation] != "":
		r.answer = answerPatched
		r.detail = "record " + stored.Annotations[workspace.RecordAnnotation]
	case !sent:
		r.answer = answerNotSent
	default:
		r.answer = answerUnchanged
	}
}

func deniedByWebhook(err error) bool {
	return err != nil && strings.Contains(err.Error(), `admission webhook "`) && strings.Contains(err.Error(), "denied the request")
}

// internalErrors is how many InternalError decisions the webhook counted between two reads.
func internalErrors(before, after map[string]float64) float64 {
	n := 0.0
	for k, v := range after {
		if strings.HasSuffix(k, "/InternalError") {
			n += v - before[k]
		}
	}
	return n
}

// panicLines counts the lines of a webhook log that mention a panic.
func panicLines(log string) int {
	n := 0
	for _, l := range strings.Split(strings.ToLower(log), "\n") {
		if strings.Contains(l, "panic") {
			n++
		}
	}
	return n
}

// result is scenario 40 of RELIABILITY.md: every count from the rows as observed.
func (c *catalogue) result(internal float64, panics int) bench.Result {
	levels, answers := map[string]int{}, map[answer]int{}
	asExpected := 0
	var raw strings.Builder
	fmt.Fprintf(&raw, "%-8s | %-34s | %-11s | %s\n", "level", "answer", "as expected", "case: detail")
	for _, r := range c.rows {
		levels[r.level]++
		answers[r.answer]++
		ok := "yes"
		if r.asExpected {
			asExpected++
		} else {
			ok = "NO"
		}
		fmt.Fprintf(&raw, "%-8s | %-34s | %-11s | %s: %s\n", r.level, r.answer, ok, r.name, r.detail)
	}
	n := len(c.rows)
	const m = "hostile input"
	zero := func(figure string, v int) bench.Figure {
		return bench.Figure{Measurement: m, Figure: figure, Measured: fmt.Sprint(v), Target: "0", Met: bench.Met(v == 0)}
	}
	count := func(figure string, a answer) bench.Figure {
		return bench.Figure{Measurement: m, Figure: figure, Measured: fmt.Sprint(answers[a])}
	}
	figures := []bench.Figure{
		{Measurement: m, Figure: "cases run", Measured: fmt.Sprintf("%d: %d raw requests to the webhook's HTTPS endpoint, %d pods and %d claims created through kube-apiserver",
			n, levels["endpoint"], levels["pod"], levels["claim"])},
		{Measurement: m, Figure: "cases answered as the catalogue expects (each case's own assertions)", Measured: fmt.Sprintf("%d of %d", asExpected, n),
			Target: "all", Met: bench.Met(n > 0 && asExpected == n)},
		count("answered with a clear HTTP error (HTTP 4xx, or an AdmissionReview error with a 4xx code and a message)", answerHTTPError),
		count("denied by the webhook, saying what is wrong and what to do", answerDenied),
		count("refused by the API server itself, as it refuses the same pod without the webhook", answerRefusedByAPI),
		count("admitted with the webhook's patch, applied by the API server", answerPatched),
		count("admitted unchanged (not a script pod: a Tentacle pod; claims, with a warning when they would stay Pending)", answerUnchanged),
		count("not sent to the webhook (a pod of its own namespace)", answerNotSent),
		zero("5xx answers (the webhook's HTTP status or AdmissionReview code, or the API server's)", answers[answerServerError]),
		zero("patches the API server rejected (a pod refused that it accepts without the webhook)", answers[answerPatchRejected]),
		{Measurement: m, Figure: "InternalError decisions counted by the webhook", Measured: fmt.Sprintf("%.0f", internal), Target: "0", Met: bench.Met(internal == 0)},
		zero("lines of the webhook's log mentioning a panic", panics),
	}
	if answers[answerNone] > 0 {
		figures = append(figures, bench.Figure{Measurement: m, Figure: "cases without an answer (the request failed)", Measured: fmt.Sprint(answers[answerNone]), Target: "0", Met: bench.Met(false)})
	}
	return bench.Result{Order: 40, Name: "hostile-input", Title: "40. Hostile input: malformed requests and hostile objects",
		Config: fmt.Sprintf("Promise: every malformed or hostile request gets a clear HTTP error or a clear denial (or, for a pod the webhook can serve, admission with a patch the API server applies), "+
			"never a panic and never a patch that the API server rejects. "+
			"How: the catalogue of e2e/hostile_test.go (%d cases) against the webhook running in the test process (app.NewManager, as cmd/workspace-webhook builds it) "+
			"on a real kube-apiserver, etcd, scheduler, controller manager and 3 kwok nodes, registered from manifests/base/webhooks.yaml with the final-state policy. "+
			"Raw requests POSTed to its HTTPS endpoint: empty, not JSON, wrong content type, kind or version, no UID, no request, 8 MiB, nested 10,001 deep, not a pod, a claim, an unknown path, plaintext to the TLS port. "+
			"Pods and claims created through kube-apiserver: 5,000 containers, 253-character names, another volume at the workspace path, claims of other namespaces, "+
			"releases that do not exist, forged records, 100 node-selector terms, 3 MiB bodies, a dry run, and more. "+
			"Each answer is classified from what came back; a refusal by the API server counts as its own only when the same pod without the script label "+
			"(which the webhook never sees) is refused alike, else it is a rejected patch; the webhook's decision metrics and its log are read before and after.", n),
		Figures: figures,
		Raw:     raw.String(),
	}
}
