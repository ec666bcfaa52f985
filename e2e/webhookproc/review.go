package webhookproc

import (
	"encoding/json"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/utils/ptr"
)

// PodCreateReview encodes the AdmissionReview the API server sends for a pod CREATE by the
// agent's Tentacle service account (a bound token, with its node and pod in Extra), for a
// test that talks to the webhook as the API server does.
func PodCreateReview(podJSON []byte, namespace, name string, dryRun bool) []byte {
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
