package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// seen records what a handler was given.
type seen struct {
	req    admission.Request
	called bool
}

func (s *seen) Handle(_ context.Context, req admission.Request) admission.Response {
	s.req, s.called = req, true
	return admission.Allowed("ok")
}

func serve(t *testing.T, h admission.Handler, decodePod bool, contentType string, body []byte) admissionv1.AdmissionReview {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	NewReviewServer(h, decodePod, logr.Discard()).ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("HTTP %d; the API server expects 200 with the verdict inside", w.Code)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("not an AdmissionReview response (%v): %s", err, w.Body)
	}
	return out
}

func review(apiVersion, kind, object string) []byte {
	return []byte(`{"apiVersion":"` + apiVersion + `","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"` + kind +
		`"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"ns","operation":"CREATE","userInfo":{"username":"tentacle"},"object":` + object + `}}`)
}

const podJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"octopus.com/scriptTicketId":"1"}},` +
	`"spec":{"containers":[{"name":"script","image":"busybox","env":[{"name":"A","value":"1"}],"volumeMounts":[{"name":"w","mountPath":"/octopus"}]}]}}`

func TestReviewServerDecodesThePodInTheSamePass(t *testing.T) {
	h := &seen{}
	out := serve(t, h, true, "application/json", review("admission.k8s.io/v1", "Pod", podJSON))
	if !out.Response.Allowed || out.Response.UID != "u-1" || out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" {
		t.Fatalf("response %+v %+v", out.TypeMeta, out.Response)
	}
	pod, ok := h.req.Object.Object.(*corev1.Pod)
	if !ok || pod.Name != "p" || pod.Labels["octopus.com/scriptTicketId"] != "1" || len(pod.Spec.Containers) != 1 ||
		pod.Spec.Containers[0].VolumeMounts[0].MountPath != "/octopus" {
		t.Fatalf("handler got %#v", h.req.Object.Object)
	}
	if pod.Spec.Containers[0].Env != nil {
		t.Fatal("fields no decision reads were decoded")
	}
	if h.req.UserInfo.Username != "tentacle" || h.req.Namespace != "ns" || h.req.Operation != admissionv1.Create {
		t.Fatalf("request fields lost: %+v", h.req.AdmissionRequest)
	}
}

func TestReviewServerLeavesOtherObjectsRaw(t *testing.T) {
	for name, c := range map[string]struct {
		kind, object string
		decodePod    bool
	}{
		"not a pod":               {"Deployment", `{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":"three"}}`, true},
		"a pod that won't decode": {"Pod", `{"apiVersion":"v1","kind":"Pod","spec":{"containers":"none"}}`, true},
		"pods not asked for":      {"Pod", podJSON, false},
	} {
		t.Run(name, func(t *testing.T) {
			h := &seen{}
			serve(t, h, c.decodePod, "application/json", review("admission.k8s.io/v1", c.kind, c.object))
			if !h.called || h.req.Object.Object != nil || string(h.req.Object.Raw) != c.object {
				t.Fatalf("handler should get the raw object; got object %v raw %s", h.req.Object.Object, h.req.Object.Raw)
			}
		})
	}
}

// A pod that does not decode reaches the mutator raw and is refused as an invalid request,
// not with a transport error.
func TestReviewServerUndecodablePodIsAnInvalidRequest(t *testing.T) {
	out := serve(t, mutator(failingFinder{}), true, "application/json",
		review("admission.k8s.io/v1", "Pod", `{"apiVersion":"v1","kind":"Pod","spec":{"containers":"none"}}`))
	if out.Response.Allowed || out.Response.Result == nil || out.Response.Result.Code != http.StatusBadRequest ||
		!strings.Contains(out.Response.Result.Message, "decoding pod") {
		t.Fatalf("response %+v", out.Response.Result)
	}
}

func TestReviewServerAnswersInTheRequestsVersion(t *testing.T) {
	out := serve(t, &seen{}, true, "application/json", review("admission.k8s.io/v1beta1", "Pod", podJSON))
	if out.APIVersion != "admission.k8s.io/v1beta1" || !out.Response.Allowed {
		t.Fatalf("got %+v", out.TypeMeta)
	}
}

func TestReviewServerRefusesBadRequests(t *testing.T) {
	big := append(review("admission.k8s.io/v1", "Pod", `{"metadata":{"annotations":{"x":"`), bytes.Repeat([]byte("a"), maxReviewBytes)...)
	for name, c := range map[string]struct {
		contentType string
		body        []byte
		code        int32
		message     string
	}{
		"empty body":         {"application/json", nil, 400, "empty"},
		"wrong content type": {"text/plain", review("admission.k8s.io/v1", "Pod", podJSON), 400, "contentType=text/plain"},
		"not JSON":           {"application/json", []byte("{"), 400, "decoding the AdmissionReview"},
		"unknown version":    {"application/json", review("admission.k8s.io/v2", "Pod", podJSON), 400, `apiVersion "admission.k8s.io/v2"`},
		"no request":         {"application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), 400, "no request"},
		"no uid":             {"application/json", bytes.Replace(review("admission.k8s.io/v1", "Pod", podJSON), []byte(`"uid":"u-1",`), nil, 1), 400, "no uid"},
		"too large":          {"application/json", big, 413, "too large"},
	} {
		t.Run(name, func(t *testing.T) {
			h := &seen{}
			out := serve(t, h, true, c.contentType, c.body)
			if h.called {
				t.Fatal("handler called on a bad request")
			}
			if out.Response.Allowed || out.Response.Result == nil || out.Response.Result.Code != c.code || !strings.Contains(out.Response.Result.Message, c.message) {
				t.Fatalf("want %d %q, got %+v", c.code, c.message, out.Response.Result)
			}
		})
	}
}

// The handler runs inside controller-runtime's admission.Webhook.Handle: a panic is an
// error answer for that request, not a crashed server.
func TestReviewServerRecoversFromPanics(t *testing.T) {
	boom := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { panic("boom") })
	out := serve(t, boom, true, "application/json", review("admission.k8s.io/v1", "Pod", podJSON))
	if out.Response.Allowed || out.Response.UID != "u-1" || out.Response.Result.Code != http.StatusInternalServerError {
		t.Fatalf("got %+v", out.Response)
	}
}

// A handler gets 80% of the API server's timeout for the call, so that its own answer (a
// refusal that says what failed) arrives before the API server gives up.
func TestAnswerBudget(t *testing.T) {
	for _, c := range []struct {
		url  string
		want time.Duration
	}{
		{"/mutate-script-pod?timeout=5s", 4 * time.Second},
		{"/mutate-script-pod?timeout=30s", 24 * time.Second},
		{"/mutate-script-pod?timeout=1s", 800 * time.Millisecond},
		{"/mutate-script-pod", 4 * time.Second},
		{"/mutate-script-pod?timeout=soon", 4 * time.Second},
		{"/mutate-script-pod?timeout=-1s", 4 * time.Second},
	} {
		r := httptest.NewRequest(http.MethodPost, c.url, nil)
		if got := answerBudget(r); got != c.want {
			t.Errorf("%s: %s, want %s", c.url, got, c.want)
		}
	}
}

// The handler's context ends within the budget.
func TestReviewServerBoundsTheHandler(t *testing.T) {
	var deadline time.Time
	h := admission.HandlerFunc(func(ctx context.Context, _ admission.Request) admission.Response {
		deadline, _ = ctx.Deadline()
		return admission.Allowed("")
	})
	srv := NewReviewServer(h, false, logr.Discard())
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"version":"v1","kind":"ConfigMap"},"resource":{"version":"v1","resource":"configmaps"},"operation":"CREATE","object":{}}}`
	r := httptest.NewRequest(http.MethodPost, "/x?timeout=2s", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	began := time.Now()
	srv.ServeHTTP(httptest.NewRecorder(), r)
	if deadline.IsZero() || deadline.Sub(began) > 1600*time.Millisecond+100*time.Millisecond || deadline.Sub(began) < 1500*time.Millisecond {
		t.Fatalf("handler deadline %v after the request, want 1.6 s", deadline.Sub(began))
	}
}
