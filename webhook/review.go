package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// maxReviewBytes is controller-runtime's limit: two objects of at most 3 MB plus the request.
const maxReviewBytes = 7 << 20

// ReviewServer serves AdmissionReviews over HTTP for one webhook path. It stands in for
// admission.Webhook's ServeHTTP, whose universal deserializer reads the whole review twice
// (once with encoding/json only to learn apiVersion and kind) and leaves the pod to be
// decoded a third time: together two thirds of the admission path (make bench, figure 1).
// Here the review is decoded once with the API server's own JSON rules (sigs.k8s.io/json:
// case-sensitive, integers preserved), a pod request's pod in the same pass and only as far
// as the decisions read it. Everything after decoding is still controller-runtime's:
// admission.Webhook.Handle runs the handler with panic recovery and completes the response,
// and the webhook server's Register adds its metrics.
type ReviewServer struct {
	Webhook *admission.Webhook
	// DecodePod decodes the object of core/v1 Pod requests in the same pass as the review,
	// only the fields the decisions read (workspace.ScriptPod), into Request.Object.Object as
	// a *corev1.Pod; the pod handlers read it from there. Object.Raw is then left empty.
	DecodePod bool
	Log       logr.Logger
}

// NewReviewServer serves h, decoding pods in the same pass when decodePod is set. The
// per-request logger carries only the request's UID: every decision is logged once, with
// its object and user, by the audit recorder.
func NewReviewServer(h admission.Handler, decodePod bool, log logr.Logger) *ReviewServer {
	return &ReviewServer{
		Webhook: &admission.Webhook{Handler: h, LogConstructor: func(base logr.Logger, req *admission.Request) logr.Logger {
			if req == nil {
				return base
			}
			return base.WithValues("requestID", req.UID)
		}},
		DecodePod: decodePod,
		Log:       log,
	}
}

func (s *ReviewServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, status, err := readReview(r)
	if err != nil {
		s.Log.Error(err, "unreadable admission request")
		s.write(w, reviewV1, admission.Errored(int32(status), err))
		return
	}
	version, req, err := s.decode(body)
	if err != nil {
		s.Log.Error(err, "undecodable admission request")
		s.write(w, reviewV1, admission.Errored(http.StatusBadRequest, err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), answerBudget(r))
	defer cancel()
	s.write(w, version, s.Webhook.Handle(ctx, req))
}

// answerBudget is how long a handler may take: 80% of the timeout the API server gives the
// call (it appends ?timeout=5s, from the configuration's timeoutSeconds), so that a handler
// whose live read hangs (the network to the API server dropped mid-request) still answers
// with its own, clear refusal before the API server gives up on the call.
func answerBudget(r *http.Request) time.Duration {
	const defaultTimeout = 5 * time.Second // webhooks.yaml
	timeout, err := time.ParseDuration(r.URL.Query().Get("timeout"))
	if err != nil || timeout <= 0 {
		timeout = defaultTimeout
	}
	return timeout * 4 / 5
}

var (
	reviewV1      = metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"}
	reviewV1beta1 = metav1.TypeMeta{APIVersion: admissionv1beta1.SchemeGroupVersion.String(), Kind: "AdmissionReview"}
)

func readReview(r *http.Request) ([]byte, int, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, http.StatusBadRequest, errors.New("request body is empty")
	}
	defer r.Body.Close()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return nil, http.StatusBadRequest, fmt.Errorf("contentType=%s, expected application/json", ct)
	}
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= maxReviewBytes {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxReviewBytes+1)); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err)
	}
	if buf.Len() == 0 {
		return nil, http.StatusBadRequest, errors.New("request body is empty")
	}
	if buf.Len() > maxReviewBytes {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request entity is too large; limit is %d bytes", maxReviewBytes)
	}
	return buf.Bytes(), 0, nil
}

// podReview is an AdmissionReview whose object is decoded in the same pass, only as far as
// the decisions read it (the outer Object field hides the embedded request's raw one).
type podReview struct {
	metav1.TypeMeta `json:",inline"`
	Request         *struct {
		admissionv1.AdmissionRequest `json:",inline"`
		Object                       *workspace.ScriptPod `json:"object,omitempty"`
	} `json:"request,omitempty"`
}

// decode returns the review's version (v1 and v1beta1 have the same shape; the answer must
// use the request's) and its request. A request without a UID is refused: the API server
// always sends one and discards an answer that does not echo it.
func (s *ReviewServer) decode(body []byte) (metav1.TypeMeta, admission.Request, error) {
	version, req, err := s.decodeReview(body)
	if err == nil && req.UID == "" {
		err = errors.New("the AdmissionReview request has no uid")
	}
	return version, req, err
}

func (s *ReviewServer) decodeReview(body []byte) (metav1.TypeMeta, admission.Request, error) {
	var req admission.Request
	if s.DecodePod {
		var pr podReview
		// A request whose object is not a pod (or not a valid one) takes the general path
		// below, where the handler sees the raw object and explains what is wrong with it.
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &pr); err == nil && pr.Request != nil && isCorePod(pr.Request.Kind) {
			version, err := reviewVersion(pr.TypeMeta)
			req.AdmissionRequest = pr.Request.AdmissionRequest
			if pr.Request.Object != nil {
				req.Object.Object = pr.Request.Object.Pod()
			}
			return version, req, err
		}
	}
	var ar admissionv1.AdmissionReview
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &ar); err != nil {
		return reviewV1, req, fmt.Errorf("decoding the AdmissionReview: %w", err)
	}
	version, err := reviewVersion(ar.TypeMeta)
	if err == nil && ar.Request == nil {
		err = errors.New("the AdmissionReview has no request")
	}
	if ar.Request != nil {
		req.AdmissionRequest = *ar.Request
	}
	return version, req, err
}

func reviewVersion(t metav1.TypeMeta) (metav1.TypeMeta, error) {
	switch t {
	case reviewV1:
		return reviewV1, nil
	case reviewV1beta1:
		return reviewV1beta1, nil
	}
	return reviewV1, fmt.Errorf("apiVersion %q kind %q: expected an AdmissionReview of %s or %s", t.APIVersion, t.Kind, reviewV1.APIVersion, reviewV1beta1.APIVersion)
}

func isCorePod(k metav1.GroupVersionKind) bool {
	return k.Group == "" && k.Version == "v1" && k.Kind == "Pod"
}

func (s *ReviewServer) write(w http.ResponseWriter, version metav1.TypeMeta, resp admission.Response) {
	w.Header().Set("Content-Type", "application/json")
	ar := admissionv1.AdmissionReview{TypeMeta: version, Response: &resp.AdmissionResponse}
	if err := json.NewEncoder(w).Encode(ar); err != nil {
		// Most likely the connection broke; there is no one left to tell.
		s.Log.Error(err, "writing the admission response")
	}
}
