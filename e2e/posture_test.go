package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/reliability"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

// The webhook process as shipped (cmd/workspace-webhook, run as its own process against the
// control plane): the kernel's table of its sockets shows that nothing listens but the TLS
// webhook port, the metrics and the probes; the TLS port speaks nothing but TLS, at 1.3 by
// default and 1.2 when asked, never lower, and HTTP/2 only with --enable-http2; the plaintext
// ports serve their own paths and nothing of the webhook. The Deployment every kustomization
// renders passes Pod Security "restricted". What each check observed is saved as scenario 41
// of RELIABILITY.md (posture_report_test.go).
func TestPosture(t *testing.T) {
	var seen posture
	t.Run("defaults", func(t *testing.T) {
		p := startWebhookProcess(t)
		tcp, other, ok := listeningSockets(t, p.Pid())
		want := []string{p.Addr, p.Metrics, p.Probe}
		slices.Sort(want)
		seen.listeners = &listeners{p: p, tcp: tcp, other: other, enumerated: ok, want: want}
		switch {
		case !ok:
			t.Log("no kernel socket table to read here: listeners not enumerated")
		case !slices.Equal(tcp, want) || len(other) > 0:
			t.Fatalf("listening: TCP %v, other %v; want TCP %v (webhook, metrics, probes) and nothing else", tcp, other, want)
		default:
			t.Logf("listening sockets of pid %d: %v", p.Pid(), tcp)
		}

		// Plaintext on the plaintext ports, only their own paths.
		for _, c := range []struct {
			url  string
			want int
		}{
			{"http://" + p.Metrics + "/metrics", http.StatusOK},
			{"http://" + p.Probe + "/healthz", http.StatusOK},
			{"http://" + p.Probe + "/readyz", http.StatusOK},
			{"http://" + p.Metrics + app.MutatePodPath, http.StatusNotFound},
			{"http://" + p.Probe + app.MutatePodPath, http.StatusNotFound},
			{"http://" + p.Metrics + "/debug/pprof/", http.StatusNotFound},
			{"http://" + p.Probe + "/debug/pprof/", http.StatusNotFound},
		} {
			got, _ := httpGet(t, c.url)
			seen.plaintext = append(seen.plaintext, plainGet{url: c.url, got: got, want: c.want})
			if got != c.want {
				t.Errorf("GET %s: HTTP %d, want %d", c.url, got, c.want)
			}
		}
		// The webhook port answers plaintext with the TLS server's refusal, nothing else.
		code, body := httpGet(t, "http://"+p.Addr+app.MutatePodPath)
		seen.plainToTLS = fmt.Sprintf("HTTP %d: %s", code, firstLine(strings.TrimSpace(body), 80))
		seen.plainToTLSRefused = code == http.StatusBadRequest && strings.Contains(body, "HTTP request to an HTTPS server")
		if !seen.plainToTLSRefused {
			t.Errorf("plaintext to the webhook port: HTTP %d %q", code, body)
		}

		state := handshake(t, p.Addr, tls.VersionTLS12, tls.VersionTLS13, "h2", "http/1.1")
		seen.defaultTLS = &state
		if state.Version != tls.VersionTLS13 || state.NegotiatedProtocol == "h2" {
			t.Errorf("negotiated TLS %s, ALPN %q; want TLS 1.3, not h2", tls.VersionName(state.Version), state.NegotiatedProtocol)
		}
		seen.defaultRefusals = append(seen.defaultRefusals, refused(t, p.Addr, tls.VersionTLS12), refused(t, p.Addr, tls.VersionTLS11))
	})
	t.Run("--tls-min-version=1.2 --enable-http2", func(t *testing.T) {
		p := startWebhookProcess(t, "--tls-min-version=1.2", "--enable-http2")
		s := handshake(t, p.Addr, tls.VersionTLS12, tls.VersionTLS12, "h2", "http/1.1")
		seen.tls12 = &s
		if s.Version != tls.VersionTLS12 {
			t.Errorf("TLS 1.2 not served with --tls-min-version=1.2: %s", tls.VersionName(s.Version))
		}
		// The control of the default case: HTTP/2 is negotiated when enabled, so its absence
		// above is the server's choice, not the client's.
		h2 := handshake(t, p.Addr, tls.VersionTLS12, tls.VersionTLS13, "h2", "http/1.1")
		seen.http2Enabled = &h2
		if h2.NegotiatedProtocol != "h2" {
			t.Errorf("ALPN %q with --enable-http2, want h2", h2.NegotiatedProtocol)
		}
		seen.min12Refusals = append(seen.min12Refusals, refused(t, p.Addr, tls.VersionTLS11), refused(t, p.Addr, tls.VersionTLS10))
	})
	t.Run("Pod Security restricted", func(t *testing.T) {
		for _, flavour := range manifests.Flavours {
			v := podSecurityOf(t, flavour)
			seen.podSecurity = append(seen.podSecurity, v)
			if v.deployment != "" {
				t.Errorf("%s: the Deployment fails Pod Security restricted: %s", flavour, v.deployment)
			}
			if v.enforce != "restricted" {
				t.Errorf("%s: the namespace enforces Pod Security %q, want restricted", flavour, v.enforce)
			}
		}
	})
	reliability.Save(t, seen.result())
}

// handshake connects with TLS versions min..max offering protos, and returns the state.
func handshake(t *testing.T, addr string, min, max uint16, protos ...string) tls.ConnectionState {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: servingPool(t), ServerName: "localhost", MinVersion: min, MaxVersion: max, NextProtos: protos})
	if err != nil {
		t.Fatalf("TLS %s..%s to %s: %v", tls.VersionName(min), tls.VersionName(max), addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState()
}

// refused: the server turns down a client that offers only version v (the alert comes from
// the server: the client offered v). It returns what happened, for the figures.
func refused(t *testing.T, addr string, v uint16) tlsRefusal {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: servingPool(t), ServerName: "localhost", MinVersion: v, MaxVersion: v})
	r := tlsRefusal{version: v}
	if err == nil {
		conn.Close()
		r.what = "served"
		t.Errorf("a %s-only client was served", tls.VersionName(v))
		return r
	}
	if !strings.Contains(err.Error(), "protocol version not supported") {
		r.what = "failed otherwise: " + err.Error()
		t.Errorf("%s-only client: %v; want the server's protocol_version alert", tls.VersionName(v), err)
		return r
	}
	r.refused, r.what = true, "refused (protocol_version alert)"
	return r
}

func servingPool(t *testing.T) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cp.WebhookInstallOptions.LocalServingCAData) {
		t.Fatal("no serving CA")
	}
	return pool
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// startWebhookProcess runs the webhook binary on loopback with the control plane's serving
// certificate, with args added, and waits until it is ready; webhookprocess stops it (its pid
// only) when the test ends.
func startWebhookProcess(t *testing.T, args ...string) *webhookprocess.Process {
	t.Helper()
	p := webhookprocess.Start(t, webhookprocess.Options{Kubeconfig: cp.KubeconfigPath, CertDir: cp.WebhookInstallOptions.LocalServingCertDir, Args: args})
	if _, err := p.WaitReady(t.Context(), 60*time.Second); err != nil {
		t.Fatalf("the webhook process never became ready: %v", err)
	}
	return p
}
