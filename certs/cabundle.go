package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// injectCABundle makes every webhook of our webhook configurations trust bundle and reports
// whether all of them now do. It reads and patches each configuration by name only.
func (m *Manager) injectCABundle(ctx context.Context, bundle []byte) (bool, error) {
	var errs []error
	for _, newObj := range m.webhookConfigs() {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			return m.injectInto(ctx, newObj(), bundle)
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return len(errs) == 0, errors.Join(errs...)
}

// webhookConfigs returns constructors of the configured webhook configurations (a fresh
// object per attempt, so a retry never decodes into a stale one).
func (m *Manager) webhookConfigs() []func() client.Object {
	var out []func() client.Object
	if name := m.opts.MutatingWebhookConfigName; name != "" {
		out = append(out, func() client.Object {
			o := &admissionregistrationv1.MutatingWebhookConfiguration{}
			o.Name = name
			return o
		})
	}
	if name := m.opts.ValidatingWebhookConfigName; name != "" {
		out = append(out, func() client.Object {
			o := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			o.Name = name
			return o
		})
	}
	return out
}

// injectInto sets caBundle on each webhook of obj. The strategic merge patch is keyed by
// webhook name, so it carries nothing but the changed caBundles: rules, selectors, fields
// this client does not know, and webhooks added meanwhile are left alone. The
// resourceVersion in the patch turns a concurrent edit into a Conflict, which is retried.
func (m *Manager) injectInto(ctx context.Context, obj client.Object, bundle []byte) error {
	kind := fmt.Sprintf("%T", obj)
	if err := m.client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return fmt.Errorf("reading %s %s: %w", kind, obj.GetName(), err)
	}
	base := obj.DeepCopyObject().(client.Object)
	n := setCABundles(obj, bundle)
	if n == 0 {
		return nil
	}
	if err := m.client.Patch(ctx, obj, client.StrategicMergeFrom(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patching caBundle of %s %s: %w", kind, obj.GetName(), err)
	}
	m.log.Info("Injected CA bundle", "kind", kind, "name", obj.GetName(), "webhooks", n)
	return nil
}

// setCABundles sets caBundle on every webhook of obj and returns how many changed.
func setCABundles(obj client.Object, bundle []byte) int {
	n := 0
	set := func(cc *admissionregistrationv1.WebhookClientConfig) {
		if !bytes.Equal(cc.CABundle, bundle) {
			cc.CABundle = bytes.Clone(bundle)
			n++
		}
	}
	switch o := obj.(type) {
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		for i := range o.Webhooks {
			set(&o.Webhooks[i].ClientConfig)
		}
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		for i := range o.Webhooks {
			set(&o.Webhooks[i].ClientConfig)
		}
	}
	return n
}
