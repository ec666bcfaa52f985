// Package base carries the webhook configurations and the script-pod policy of this
// kustomization into the binary, so that `workspace-webhook doctor` compares a cluster's
// with the ones shipped, and tests run the policy exactly as shipped.
package base

import (
	_ "embed"
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

//go:embed webhooks.yaml
var webhooksYAML string

//go:embed script-pod-policy.yaml
var scriptPodPolicyYAML string

// WebhookConfigurations are the mutating and the validating webhook configuration of
// webhooks.yaml, as shipped.
func WebhookConfigurations() (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	docs := strings.Split(webhooksYAML, "\n---\n")
	if len(docs) != 2 {
		return nil, nil, fmt.Errorf("base/webhooks.yaml: want 2 documents, got %d", len(docs))
	}
	var m admissionregistrationv1.MutatingWebhookConfiguration
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &m); err != nil {
		return nil, nil, fmt.Errorf("base/webhooks.yaml mutating: %w", err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &v); err != nil {
		return nil, nil, fmt.Errorf("base/webhooks.yaml validating: %w", err)
	}
	return &m, &v, nil
}

// ScriptPodPolicy is the ValidatingAdmissionPolicy of script-pod-policy.yaml and its
// bindings (one per enforcement mode, enforce's first), as shipped.
func ScriptPodPolicy() (*admissionregistrationv1.ValidatingAdmissionPolicy, []*admissionregistrationv1.ValidatingAdmissionPolicyBinding, error) {
	docs := strings.Split(scriptPodPolicyYAML, "\n---\n")
	if len(docs) != 3 {
		return nil, nil, fmt.Errorf("base/script-pod-policy.yaml: want 3 documents (the policy, then its two bindings), got %d", len(docs))
	}
	var p admissionregistrationv1.ValidatingAdmissionPolicy
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &p); err != nil {
		return nil, nil, fmt.Errorf("base/script-pod-policy.yaml policy: %w", err)
	}
	var bindings []*admissionregistrationv1.ValidatingAdmissionPolicyBinding
	for _, d := range docs[1:] {
		var b admissionregistrationv1.ValidatingAdmissionPolicyBinding
		if err := yaml.UnmarshalStrict([]byte(d), &b); err != nil {
			return nil, nil, fmt.Errorf("base/script-pod-policy.yaml binding: %w", err)
		}
		bindings = append(bindings, &b)
	}
	return &p, bindings, nil
}
