package e2e

import (
	"crypto/tls"
	"fmt"
	"testing"
)

// The webhook serves TLS 1.3 only by default and never negotiates HTTP/2 unless enabled.
func TestWebhookTLSDefaults(t *testing.T) {
	wio := cp.WebhookInstallOptions
	addr := fmt.Sprintf("%s:%d", wio.LocalServingHost, wio.LocalServingPort)

	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}) //nolint:gosec // inspecting the handshake
	must(t, err)
	state := conn.ConnectionState()
	conn.Close()
	if state.Version != tls.VersionTLS13 {
		t.Errorf("negotiated TLS version %x, want 1.3", state.Version)
	}
	if state.NegotiatedProtocol == "h2" {
		t.Error("HTTP/2 negotiated although --enable-http2 is off")
	}

	if conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}); err == nil { //nolint:gosec
		conn.Close()
		t.Error("a TLS 1.2 client was served although the minimum is 1.3")
	}
}
