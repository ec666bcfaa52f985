package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	cwmetrics "sigs.k8s.io/controller-runtime/pkg/certwatcher/metrics"
)

func pairFiles(t *testing.T, kp keyPair, ca keyPair) map[string][]byte {
	t.Helper()
	crt, err := pki.EncodeX509(kp.cert)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.EncodePKCS8PrivateKey(kp.key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := pki.EncodeX509(ca.cert)
	return map[string][]byte{"tls.crt": crt, "tls.key": key, "ca.crt": caPEM}
}

func TestWriteFilesLayout(t *testing.T) {
	dir := t.TempDir()
	// A plain file left by an older layout is replaced by the link.
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"tls.crt": []byte("crt1"), "tls.key": []byte("key1")}
	if changed, err := writeFiles(dir, files); err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	first, _ := os.Readlink(filepath.Join(dir, dataLink))
	for name, want := range files {
		if target, _ := os.Readlink(filepath.Join(dir, name)); target != filepath.Join(dataLink, name) {
			t.Fatalf("%s links to %q", name, target)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, want) {
			t.Fatalf("%s = %q", name, got)
		}
	}
	if changed, err := writeFiles(dir, files); err != nil || changed {
		t.Fatalf("same content rewritten: changed=%v err=%v", changed, err)
	}
	files["tls.crt"], files["tls.key"] = []byte("crt2"), []byte("key2")
	if changed, err := writeFiles(dir, files); err != nil || !changed {
		t.Fatalf("second write: changed=%v err=%v", changed, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 { // ..data, one set, tls.crt, tls.key
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("left over entries: %q", names)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Fatal("previous set not removed")
	}
	if info, _ := os.Stat(filepath.Join(dir, "tls.key")); info.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", info.Mode())
	}
}

// TestCertwatcherNeverServesMismatchedPair publishes many pairs under continuous TLS
// handshakes and direct GetCertificate calls. It proves: every handshake verifies (a
// mismatched pair would fail its signature), GetCertificate never returns a cert with
// another cert's key, and each new pair is picked up by file events, well before
// certwatcher's 10 s poll.
func TestCertwatcherNeverServesMismatchedPair(t *testing.T) {
	const rotations = 40
	now := time.Now()
	ca, err := newCA("svc", now, 365*day)
	if err != nil {
		t.Fatal(err)
	}
	pairs := make([]keyPair, rotations+1)
	for i := range pairs {
		if pairs[i], err = newServingCert(ca, []string{"svc.ns.svc"}, now, 90*day); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if _, err := writeFiles(dir, pairFiles(t, pairs[0], ca)); err != nil {
		t.Fatal(err)
	}
	cw, err := certwatcher.New(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cw.Start(ctx) }()
	time.Sleep(200 * time.Millisecond) // let Start add its watches

	addr := serveTLS(t, ctx, cw.GetCertificate)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	readErrs0 := counter(t, cwmetrics.ReadCertificateErrors)

	var ok, failed, torn, rawMismatch atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 { // handshakes that verify the chain and the server's key
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped(stop) {
				conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "svc.ns.svc"})
				if err != nil {
					failed.Add(1)
					t.Errorf("handshake: %v", err)
					continue
				}
				_ = conn.Close()
				ok.Add(1)
			}
		}()
	}
	wg.Add(2)
	go func() { // what certwatcher would hand to the server
		defer wg.Done()
		for !stopped(stop) {
			c, _ := cw.GetCertificate(nil)
			if !c.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(c.PrivateKey.(crypto.Signer).Public()) {
				torn.Add(1)
			}
			time.Sleep(20 * time.Microsecond) // leave CPU for the handshakes
		}
	}()
	go func() { // a naive reader of the two paths, as certwatcher reads them
		defer wg.Done()
		for !stopped(stop) {
			crt, err1 := os.ReadFile(filepath.Join(dir, "tls.crt"))
			key, err2 := os.ReadFile(filepath.Join(dir, "tls.key"))
			if err1 == nil && err2 == nil {
				if _, err := tls.X509KeyPair(crt, key); err != nil {
					rawMismatch.Add(1)
				}
			}
			time.Sleep(20 * time.Microsecond)
		}
	}()

	var slowest time.Duration
	for i := 1; i <= rotations; i++ {
		start := time.Now()
		if _, err := writeFiles(dir, pairFiles(t, pairs[i], ca)); err != nil {
			t.Fatal(err)
		}
		for {
			c, _ := cw.GetCertificate(nil)
			if c.Leaf.Equal(pairs[i].cert) {
				break
			}
			if time.Since(start) > 3*time.Second {
				t.Fatalf("rotation %d not picked up within 3s (the 10s poll would be the only path)", i)
			}
			time.Sleep(time.Millisecond)
		}
		slowest = max(slowest, time.Since(start))
		time.Sleep(20 * time.Millisecond) // handshakes on the new pair
	}
	close(stop)
	wg.Wait()

	t.Logf("%d rotations: %d handshakes ok, %d failed; %d torn pairs from GetCertificate; slowest reload %s; "+
		"naive two-file reader saw %d mismatched pairs, certwatcher rejected %v reads",
		rotations, ok.Load(), failed.Load(), torn.Load(), slowest, rawMismatch.Load(), counter(t, cwmetrics.ReadCertificateErrors)-readErrs0)
	if failed.Load() != 0 || torn.Load() != 0 || ok.Load() == 0 {
		t.Fatal("served a broken pair")
	}
}

func stopped(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// serveTLS serves "ok" over TLS on a loopback port with getCert until ctx ends.
func serveTLS(t *testing.T, ctx context.Context, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }),
		TLSConfig:         &tls.Config{GetCertificate: getCert, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // handshakes cut short by the tests
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	return ln.Addr().String()
}

func counter(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
