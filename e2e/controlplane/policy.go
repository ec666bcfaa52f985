package controlplane

import (
	"context"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// InstallPolicy creates a ValidatingAdmissionPolicy and its bindings, and waits until the
// policy's type checking has run (status.observedGeneration, written by the controller
// manager's policy status controller, which watches policies as the API server's admission
// plugin does), then a second more for the plugin's own informer.
func (cp *ControlPlane) InstallPolicy(ctx context.Context, p *admissionregistrationv1.ValidatingAdmissionPolicy, bindings ...*admissionregistrationv1.ValidatingAdmissionPolicyBinding) error {
	if err := cp.Client.Create(ctx, p); err != nil {
		return fmt.Errorf("creating policy %s: %w", p.Name, err)
	}
	for _, b := range bindings {
		if err := cp.Client.Create(ctx, b); err != nil {
			return fmt.Errorf("creating binding %s: %w", b.Name, err)
		}
	}
	if !cp.opts.WithControllerManager {
		time.Sleep(2 * time.Second)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var typeErr error
	err := cp.poll(ctx, func(ctx context.Context) (bool, string, error) {
		var got admissionregistrationv1.ValidatingAdmissionPolicy
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
			return false, "", err
		}
		if got.Status.ObservedGeneration < got.Generation {
			return false, fmt.Sprintf("policy %s generation %d observed %d", got.Name, got.Generation, got.Status.ObservedGeneration), nil
		}
		if tc := got.Status.TypeChecking; tc != nil && len(tc.ExpressionWarnings) > 0 {
			typeErr = fmt.Errorf("policy %s does not type-check: %+v", got.Name, tc.ExpressionWarnings)
		}
		return true, "", nil
	})
	if err != nil {
		return err
	}
	if typeErr != nil {
		return typeErr
	}
	time.Sleep(time.Second)
	return nil
}
