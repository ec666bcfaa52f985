package manifests

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/octopus-agent-tools/workspace-webhook/manifests/base"
)

// WebhookConfigurations reads the two webhook configurations of base/webhooks.yaml, for tests
// and benchmarks that register the webhook exactly as an install does.
func WebhookConfigurations() (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	return base.WebhookConfigurations()
}

// ScriptPodPolicy reads the ValidatingAdmissionPolicy of base/script-pod-policy.yaml and its
// bindings (enforce's, then warn's), for tests and benchmarks that install the final-state
// check as an install does.
func ScriptPodPolicy() (*admissionregistrationv1.ValidatingAdmissionPolicy, []*admissionregistrationv1.ValidatingAdmissionPolicyBinding, error) {
	return base.ScriptPodPolicy()
}
