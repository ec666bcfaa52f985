package faults

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/reliability"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
)

// TestCertificateRenewalUnderLoad: two replicas in self-managed certificate mode (no
// cert-manager: they keep their CA and serving certificate in one Secret and inject the CA into
// their webhook configurations) behind one address; the serving certificate is forced to renew
// again and again while script pods keep being created through the API server. Not one request
// may fail.
func TestCertificateRenewalUnderLoad(t *testing.T) {
	ctx := ctxFor(t, 5*time.Minute)
	const ownNS = "faults-selfmanaged"
	_, err := cp.CreateNamespace(ctx, ownNS)
	must(t, err)
	a := rwoAgent("faults-certs", "node-1")
	installAgent(t, ctx, a)

	port, err := webhookprocess.FreePort()
	must(t, err)
	m, v, err := manifests.WebhookConfigurations()
	must(t, err)
	m.Name, v.Name = "faults-selfmanaged-webhook", "faults-selfmanaged-webhook"
	only := &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": a.Namespace}}
	for i := range m.Webhooks {
		url := fmt.Sprintf("https://localhost:%d%s", port, *m.Webhooks[i].ClientConfig.Service.Path)
		m.Webhooks[i].ClientConfig, m.Webhooks[i].NamespaceSelector = admissionregistrationv1.WebhookClientConfig{URL: &url}, only
	}
	for i := range v.Webhooks {
		url := fmt.Sprintf("https://localhost:%d%s", port, *v.Webhooks[i].ClientConfig.Service.Path)
		v.Webhooks[i].ClientConfig, v.Webhooks[i].NamespaceSelector = admissionregistrationv1.WebhookClientConfig{URL: &url}, only
	}
	must(t, cp.Client.Create(ctx, m))
	must(t, cp.Client.Create(ctx, v))
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), m); _ = cp.Client.Delete(context.Background(), v) })

	kubeconfig, err := kubeconfigVia(apiLink.Addr())
	must(t, err)
	fl, err := newFleet(2, kubeconfig, "", fmt.Sprintf("127.0.0.1:%d", port), "--cert-mode=self-managed", "--namespace="+ownNS,
		"--extra-dns-names=localhost", "--mutating-webhook-configuration="+m.Name, "--validating-webhook-configuration="+v.Name,
		"--cert-check-interval=300ms")
	must(t, err)
	t.Cleanup(fl.close)
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range fl.replicas {
				t.Logf("self-managed %s log:\n%s", r.name, webhookprocess.Tail(filepath.Join(r.dir, "webhook.log"), 40))
			}
		}
	})
	for _, r := range fl.replicas {
		must(t, os.MkdirAll(r.certDir, 0o700))
	}
	must(t, fl.startAll(ctx))

	// The API server loads webhook configuration changes (and the injected caBundle) asynchronously.
	i := 0
	eventually(t, ctx, time.Minute, "the API server trusting the injected caBundle", func() (bool, string) {
		i++
		o := createScriptPod(ctx, a, fmt.Sprintf("trust%04d", i))
		return o.Kind == kindPinned, o.String() + " " + o.Err
	})

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				if o := createScriptPod(ctx, a, fmt.Sprintf("renew%d-%06d", w, n)); o.Kind != kindPinned {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, o.String()+" "+o.Err)
				}
			}
		}()
	}

	served := map[string]bool{}
	current := func() ([]string, error) {
		var serials []string
		for _, r := range fl.replicas {
			s, err := servedSerial(fmt.Sprintf("127.0.0.1:%d", r.port))
			if err != nil {
				return nil, err
			}
			serials = append(serials, s)
		}
		return serials, nil
	}
	first, err := current()
	must(t, err)
	for _, s := range first {
		served[s] = true
	}
	renewals := size(3, 10)
	var longest time.Duration
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ownNS, Name: "workspace-webhook-tls"}}
	for n := 1; n <= renewals; n++ {
		time.Sleep(time.Second)
		must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(secret), secret))
		secret.Data[corev1.TLSCertKey] = []byte("revoked by the test") // forces a new serving certificate
		must(t, cp.Client.Update(ctx, secret))
		forced := time.Now()
		eventually(t, ctx, time.Minute, fmt.Sprintf("renewal %d served by both replicas", n), func() (bool, string) {
			serials, err := current()
			if err != nil {
				return false, err.Error()
			}
			for _, s := range serials {
				if served[s] {
					return false, "still serving " + s
				}
			}
			if serials[0] != serials[1] {
				return false, "replicas serve different certificates"
			}
			served[serials[0]] = true
			return true, ""
		})
		longest = max(longest, time.Since(forced))
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	reliability.Save(t, bench.Result{Order: 36, Name: "faults-certificate-renewal", Title: "36. Faults: certificate renewal under load (self-managed certificates, two replicas)",
		Config: fmt.Sprintf("Promise: renewing the serving certificate fails no request. How: two replicas (production binary, --cert-mode=self-managed, sharing one Secret) behind one address, "+
			"webhook configurations of their own calling them by URL with the CA they inject; %d forced renewals (the Secret's certificate overwritten, each replica renews or picks the renewed one up), "+
			"1 s apart, while 4 workers create script pods through the API server one after the other (dry-run). "+
			"(e2e/selfmanaged_test.go proves the same for one in-process replica on every make test.)", renewals),
		Figures: []bench.Figure{
			{Measurement: "certificate renewal", Figure: "failed admission requests during the renewals", Measured: fmt.Sprintf("%d of %d", failed.Load(), sent.Load()),
				Target: "0", Met: bench.Met(failed.Load() == 0 && sent.Load() > 0)},
			{Measurement: "certificate renewal", Figure: "serving certificates served", Measured: strconv.Itoa(len(served))},
			{Measurement: "certificate renewal", Figure: "longest time from a forced renewal to both replicas serving the new certificate", Measured: bench.Secs(longest)},
		},
		Raw: fmt.Sprintf("first failure: %v\n", firstErr.Load())})
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during renewal; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
	if sent.Load() < 50 {
		t.Errorf("only %d requests sent: the traffic did not run", sent.Load())
	}
}

// servedSerial is the serial number of the certificate served at addr right now.
func servedSerial(addr string) (string, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading, not trusting
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}
