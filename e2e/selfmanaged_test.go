package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

// manifestWebhooks reads the two webhook configurations of manifests/base/webhooks.yaml.
func manifestWebhooks(t *testing.T) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	t.Helper()
	m, v, err := manifests.WebhookConfigurations()
	must(t, err)
	return m, v
}

// servedSerial is the serial number of the certificate the webhook serves right now.
func servedSerial(addr string) (string, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading, not trusting
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// Without cert-manager: the webhook bootstraps its CA into a Secret, injects it into its
// webhook configurations, and the API server calls it through that caBundle; serving
// certificates forced to renew under continuous admission traffic fail not one request.
func TestSelfManagedCertificatesRenewUnderTraffic(t *testing.T) {
	ctx := ctxFor(t, 4*time.Minute)
	const ownNS = "workspace-webhook-selfmanaged"
	_, err := cp.CreateNamespace(ctx, ownNS)
	must(t, err)
	a := tentacle.Agent{Namespace: "octopus-agent-selfmanaged", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-1")}
	installAgent(t, ctx, a, true)

	addr := freeAddr()
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	m, v := manifestWebhooks(t)
	m.Name, v.Name = "selfmanaged-workspace-webhook", "selfmanaged-workspace-webhook"
	only := &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": a.Namespace}}
	for i := range m.Webhooks {
		url := fmt.Sprintf("https://localhost:%d%s", port, *m.Webhooks[i].ClientConfig.Service.Path)
		m.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
		m.Webhooks[i].NamespaceSelector = only
	}
	for i := range v.Webhooks {
		url := fmt.Sprintf("https://localhost:%d%s", port, *v.Webhooks[i].ClientConfig.Service.Path)
		v.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
		v.Webhooks[i].NamespaceSelector = only
	}
	must(t, cp.Client.Create(ctx, m))
	must(t, cp.Client.Create(ctx, v))
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), m); _ = cp.Client.Delete(context.Background(), v) })

	opts := app.DefaultOptions()
	opts.Host, opts.Port, opts.CertDir = host, port, t.TempDir()
	opts.MetricsAddr, opts.ProbeAddr = "0", freeAddr()
	opts.CertMode, opts.Namespace, opts.ExtraDNSNames = app.CertModeSelfManaged, ownNS, []string{"localhost"}
	opts.MutatingConfigName, opts.ValidatingConfigName = m.Name, v.Name
	opts.CertCheckInterval = 300 * time.Millisecond
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx, cp.Config, opts, zap.New(zap.WriteTo(webhookLog))) }()
	t.Cleanup(func() { stop(); <-done })
	must(t, controlplane.WaitOK(ctx, "http://"+opts.ProbeAddr+"/readyz", 60*time.Second))

	// The CA is in every caBundle of both configurations.
	eventually(t, ctx, "caBundle injected", func() (bool, string) {
		must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(m), m))
		must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(v), v))
		for _, w := range m.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				return false, w.Name
			}
		}
		for _, w := range v.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				return false, w.Name
			}
		}
		return true, ""
	})
	var secret corev1.Secret
	must(t, cp.Client.Get(ctx, client.ObjectKey{Namespace: ownNS, Name: opts.SelfManagedSecret}, &secret))

	admit := func(i int64) error {
		pod := a.ScriptPod(fmt.Sprintf("sm%06d", i), tentacle.StyleV2)
		if err := cp.Client.Create(ctx, pod, client.DryRunAll); err != nil {
			return err
		}
		if _, ok := pod.Annotations["workspace-webhook.io/workspace"]; !ok {
			return fmt.Errorf("pod %s admitted without the webhook's mutation", pod.Name)
		}
		return nil
	}
	// The API server loads webhook configuration changes asynchronously: wait for the first success.
	eventually(t, ctx, "API server trusts the injected caBundle", func() (bool, string) {
		err := admit(0)
		return err == nil, fmt.Sprint(err)
	})

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for trafficCtx.Err() == nil {
				n := sent.Add(1)
				if err := admit(n); err != nil && trafficCtx.Err() == nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}

	serials := map[string]bool{}
	s, err := servedSerial(addr)
	must(t, err)
	serials[s] = true
	for renewal := 1; renewal <= 3; renewal++ {
		time.Sleep(time.Second)
		must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(&secret), &secret))
		secret.Data[corev1.TLSCertKey] = []byte("revoked by the test") // forces a new serving certificate
		must(t, cp.Client.Update(ctx, &secret))
		eventually(t, ctx, fmt.Sprintf("renewal %d served", renewal), func() (bool, string) {
			s, err := servedSerial(addr)
			if err != nil {
				return false, err.Error()
			}
			if serials[s] {
				return false, "still serving " + s
			}
			serials[s] = true
			return true, ""
		})
	}
	time.Sleep(time.Second)
	stopTraffic()
	wg.Wait()

	t.Logf("admission requests through the API server during 3 forced renewals: %d sent, %d failed; certificates served: %d", sent.Load(), failed.Load(), len(serials))
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during renewal; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
	if sent.Load() < 50 {
		t.Fatalf("only %d requests sent: the traffic did not run", sent.Load())
	}
}
