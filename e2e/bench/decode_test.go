package bench

import (
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	sigsjson "sigs.k8s.io/json"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// BenchmarkDecode breaks the decoding part of figure 1 down, on the same review: the way
// controller-runtime's admission.Webhook plus a handler decoding the pod do it (what the
// webhook did before webhook.ReviewServer), and the way ReviewServer does it. Evidence for
// BENCHMARKS.md ("Where the time goes"); run.sh runs it with the in-process figures.
func BenchmarkDecode(b *testing.B) {
	body := inProcessWebhook(b).mutateBody
	scheme := runtime.NewScheme()
	if err := admissionv1.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	deserializer := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	var probe admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &probe); err != nil {
		b.Fatal(err)
	}
	pod := probe.Request.Object.Raw
	for _, c := range []struct {
		name   string
		decode func() error
	}{
		// admission.Webhook.ServeHTTP: sniffs apiVersion/kind with a full encoding/json pass,
		// then decodes again with the pod kept as raw bytes.
		{"review/universal-deserializer", func() error {
			_, _, err := deserializer.Decode(body, nil, &admissionv1.AdmissionReview{})
			return err
		}},
		// The handler's decode of that raw pod, whole.
		{"pod/whole", func() error { return sigsjson.UnmarshalCaseSensitivePreserveInts(pod, &corev1.Pod{}) }},
		// ReviewServer's floor: one pass, the pod left raw.
		{"review/one-pass", func() error {
			return sigsjson.UnmarshalCaseSensitivePreserveInts(body, &admissionv1.AdmissionReview{})
		}},
		// One pass with the whole pod typed.
		{"review+pod-whole/one-pass", func() error { return sigsjson.UnmarshalCaseSensitivePreserveInts(body, &reviewOf[corev1.Pod]{}) }},
		// ReviewServer for pods: one pass, only the fields the decisions read.
		{"review+scriptpod/one-pass", func() error {
			return sigsjson.UnmarshalCaseSensitivePreserveInts(body, &reviewOf[workspace.ScriptPod]{})
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reviewOf is an AdmissionReview whose object is decoded as a T in the same pass.
type reviewOf[T any] struct {
	Request *struct {
		admissionv1.AdmissionRequest `json:",inline"`
		Object                       T `json:"object"`
	} `json:"request"`
}
