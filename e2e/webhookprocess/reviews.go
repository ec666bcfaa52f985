package webhookprocess

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/utils/ptr"
)

// ReviewClient posts AdmissionReviews over HTTPS as the API server does: HTTP/1.1 keep-alive
// connections (the webhook server does not offer HTTP/2), trusting only the webhook's CA.
type ReviewClient struct{ http *http.Client }

// NewReviewClient keeps at most conns connections open.
func NewReviewClient(pool *x509.CertPool, conns int) *ReviewClient {
	tr := &http.Transport{
		TLSClientConfig: TLSClientConfig(pool), MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		DisableCompression: true, IdleConnTimeout: time.Minute,
	}
	return &ReviewClient{http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// Close closes the idle connections.
func (c *ReviewClient) Close() { c.http.CloseIdleConnections() }

// Post sends body to url and checks the answer is HTTP 200 and contains every want.
func (c *ReviewClient) Post(ctx context.Context, url string, body []byte, want ...[]byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
	}
	for _, w := range want {
		if !bytes.Contains(b, w) {
			return fmt.Errorf("answer lacks %s: %.300s", w, b)
		}
	}
	return nil
}

// AdmissionReview encodes the AdmissionReview the API server sends for a pod CREATE by the
// agent's Tentacle service account (a bound token, with its node and pod in Extra).
func AdmissionReview(podJSON []byte, namespace, name string, dryRun bool) []byte {
	podRes := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	podKind := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: uuid.NewUUID(), Kind: podKind, Resource: podRes, RequestKind: &podKind, RequestResource: &podRes,
			Name: name, Namespace: namespace, Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{
				Username: "system:serviceaccount:" + namespace + ":octopus-agent-tentacle", UID: string(uuid.NewUUID()),
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
				Extra: map[string]authenticationv1.ExtraValue{
					"authentication.kubernetes.io/credential-id": {"JTI=" + string(uuid.NewUUID())},
					"authentication.kubernetes.io/node-name":     {"node-1"},
					"authentication.kubernetes.io/node-uid":      {string(uuid.NewUUID())},
					"authentication.kubernetes.io/pod-name":      {"octopus-agent-tentacle-6d5f7b9c4-x2kqp"},
					"authentication.kubernetes.io/pod-uid":       {string(uuid.NewUUID())},
				},
			},
			Object:  runtime.RawExtension{Raw: podJSON},
			DryRun:  ptr.To(dryRun),
			Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"octopus-tentacle"}`)},
		},
	}
	b, err := json.Marshal(review)
	if err != nil {
		panic(err) // a typed review always marshals
	}
	return b
}

// DecodeResponse reads an AdmissionReview response body.
func DecodeResponse(body []byte) (*admissionv1.AdmissionResponse, error) {
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	if r.Response == nil {
		return nil, fmt.Errorf("no response in %s", body)
	}
	return r.Response, nil
}
