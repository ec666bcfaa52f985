package certs

import (
	"context"
	"crypto/tls"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestServingCertChecker(t *testing.T) {
	now := time.Now()
	ca, _ := newCA("svc", now, 365*day)
	first, _ := newServingCert(ca, []string{"svc.ns.svc"}, now, 90*day)
	second, _ := newServingCert(ca, []string{"svc.ns.svc"}, now, 90*day)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The server serves whatever pair `serving` holds, like a certwatcher that has or has
	// not reloaded yet.
	var serving atomic.Pointer[tls.Certificate]
	addr := serveTLS(t, ctx, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return serving.Load(), nil })
	_, port, _ := net.SplitHostPort(addr)
	check := ServingCertChecker(dir, "tls.crt", "tls.key", ":"+port) // listen-style address
	req := httptest.NewRequest("GET", "/readyz", nil)

	expectErr := func(step, sub string) {
		t.Helper()
		err := check(req)
		if err == nil || !strings.Contains(err.Error(), sub) {
			t.Fatalf("%s: err = %v, want it to mention %q", step, err, sub)
		}
	}

	expectErr("no files", "no usable serving certificate")

	files := pairFiles(t, first, ca)
	if _, err := writeFiles(dir, files); err != nil {
		t.Fatal(err)
	}
	tlsFirst, _ := tls.X509KeyPair(files["tls.crt"], files["tls.key"])
	serving.Store(&tlsFirst)
	if err := check(req); err != nil {
		t.Fatalf("matching files and server: %v", err)
	}

	if _, err := writeFiles(dir, pairFiles(t, second, ca)); err != nil {
		t.Fatal(err)
	}
	expectErr("server not reloaded", "not reloaded yet")
	files = pairFiles(t, second, ca)
	tlsSecond, _ := tls.X509KeyPair(files["tls.crt"], files["tls.key"])
	serving.Store(&tlsSecond)
	if err := check(req); err != nil {
		t.Fatalf("after reload: %v", err)
	}

	// Mismatched key on disk (e.g. a half-updated Secret volume).
	mixed := pairFiles(t, second, ca)
	mixed["tls.key"] = pairFiles(t, first, ca)["tls.key"]
	if _, err := writeFiles(dir, mixed); err != nil {
		t.Fatal(err)
	}
	expectErr("mismatched pair", "no usable serving certificate")
	if _, err := writeFiles(dir, pairFiles(t, second, ca)); err != nil {
		t.Fatal(err)
	}

	late := servingCertCheck{certPath: filepath.Join(dir, "tls.crt"), keyPath: filepath.Join(dir, "tls.key"),
		addr: localAddr(":" + port), now: func() time.Time { return now.Add(91 * day) }, timeout: time.Second}
	if err := late.check(req); err == nil || !strings.Contains(err.Error(), "not valid now") {
		t.Fatalf("expired: %v", err)
	}

	cancel() // server gone
	time.Sleep(50 * time.Millisecond)
	expectErr("server down", "not reachable")
}

func TestLocalAddr(t *testing.T) {
	for in, want := range map[string]string{
		":9443":          "127.0.0.1:9443",
		"0.0.0.0:9443":   "127.0.0.1:9443",
		"[::]:9443":      "[::1]:9443",
		"10.0.0.7:9443":  "10.0.0.7:9443",
		"localhost:9443": "localhost:9443",
	} {
		if got := localAddr(in); got != want {
			t.Errorf("localAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
