package bench

import (
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

// 1. In-process: the whole admission path for a realistic Tentacle script pod, through the
// webhook server's own mux (controller-runtime's metrics wrapper, webhook.ReviewServer: the
// review and the pod's decision fields decoded in one pass, admission.Webhook.Handle, our
// handler: facts from the warm informer cache, decide, patch, audit log line and metrics;
// the response encoded), against the floor: the same mux and review server with a no-op
// handler (the review decoded, its pod skipped), on the same AdmissionReview; and, for
// context, controller-runtime's admission.Webhook.ServeHTTP with the no-op handler.
// benchstat compares each handler= column with handler=floor (run.sh: benchstat -col /handler).

func BenchmarkMutate(b *testing.B) {
	w := inProcessWebhook(b)
	benchPair(b, w, app.MutatePodPath, w.mutateBody)
}

func benchPair(b *testing.B, w *inProcess, path string, body []byte) {
	for _, c := range []struct{ name, path string }{{"floor", noopPath}, {"controller-runtime-floor", controllerRuntimeNoopPath}, {"webhook", path}} {
		b.Run("handler="+c.name, func(b *testing.B) {
			r := newRequest(c.path, body)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				w.mux.ServeHTTP(rec, r.next())
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: HTTP %d: %s", c.path, rec.Code, rec.Body)
				}
			}
		})
	}
}

// TestInProcess is the smoke run of BenchmarkMutate: a few hundred reviews on each path,
// asserting correct answers and non-zero cost, no timing thresholds.
func TestInProcess(t *testing.T) {
	w := inProcessWebhook(t)
	for _, c := range []struct {
		name, path string
		body       []byte
		wantPatch  bool
	}{
		{"mutate/floor", noopPath, w.mutateBody, false},
		{"mutate/controller-runtime-floor", controllerRuntimeNoopPath, w.mutateBody, false},
		{"mutate/webhook", app.MutatePodPath, w.mutateBody, true},
	} {
		r := newRequest(c.path, c.body)
		var last *httptest.ResponseRecorder
		run := func() {
			last = httptest.NewRecorder()
			w.mux.ServeHTTP(last, r.next())
		}
		start := time.Now()
		allocs := testing.AllocsPerRun(200, run)
		perOp := time.Since(start) / 201
		resp, err := webhookprocess.DecodeResponse(last.Body.Bytes())
		if err != nil || last.Code != http.StatusOK || !resp.Allowed || (len(resp.Patch) > 0) != c.wantPatch {
			t.Fatalf("%s: HTTP %d, err %v, response %+v", c.name, last.Code, err, resp)
		}
		if allocs <= 0 || perOp <= 0 {
			t.Fatalf("%s: implausible cost: %v allocs, %s per review", c.name, allocs, perOp)
		}
		t.Logf("%-32s %8s/review %5.0f allocs/review", c.name, perOp.Round(100*time.Nanosecond), allocs)
	}
}
