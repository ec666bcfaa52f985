package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

// WebhookConfigurations reads the two webhook configurations of base/webhooks.yaml, for tests
// and benchmarks that register the webhook exactly as an install does.
func WebhookConfigurations() (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	dir, err := Dir()
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "base", "webhooks.yaml"))
	if err != nil {
		return nil, nil, err
	}
	docs := strings.Split(string(b), "\n---\n")
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
