// Package base carries the webhook configurations of this kustomization into the binary, so
// that `workspace-webhook doctor` compares a cluster's configurations with the ones shipped.
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
