package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

func TestReplicasAgreeOnOneCAAgainstAPIServer(t *testing.T) {
	admin, restricted := startAPIServer(t)
	ctx := context.Background()
	counter := &createCounter{}
	rc := counter.client(t, restricted)

	const rounds = 10
	for round := range rounds {
		clk := clocktesting.NewFakeClock(time.Now())
		a, b := newReplica(t, rc, clk, logr.Logger{}), newReplica(t, rc, clk, logr.Logger{})
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, 2)
		for i, m := range []*Manager{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); <-start; errs[i] = m.Ensure(ctx) }()
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v / %v", round, errs[0], errs[1])
		}
		sec := &corev1.Secret{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: itNamespace, Name: itSecret}, sec); err != nil {
			t.Fatal(err)
		}
		if sec.Type != corev1.SecretTypeTLS {
			t.Fatalf("Secret type %s", sec.Type)
		}
		for _, m := range []*Manager{a, b} {
			if !bytes.Equal(readFile(t, m, "ca.crt"), sec.Data[keyCACert]) || !bytes.Equal(readFile(t, m, "tls.crt"), sec.Data[keyCert]) {
				t.Fatalf("round %d: a replica's files differ from the Secret", round)
			}
		}
		bundles, _ := caBundles(t, admin, itWebhooks)
		for _, bundle := range bundles {
			if !bytes.Equal(bundle, sec.Data[keyCACert]) {
				t.Fatalf("round %d: a caBundle is not the Secret's CA", round)
			}
		}
		if err := admin.Delete(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d rounds of two replicas starting together: %d Creates, %d lost with AlreadyExists and adopted the winner's CA",
		rounds, counter.creates.Load(), counter.alreadyExists.Load())
	if counter.alreadyExists.Load() == 0 {
		t.Log("note: no round actually raced (both Creates never overlapped)")
	}
}

// trafficStats counts TLS requests by phase.
type trafficStats struct {
	mu       sync.Mutex
	phase    string
	ok, fail map[string]int
	firstErr []string
	serials  map[string]bool // serving certificates seen
	issuers  map[string]bool // CAs that signed them
}

func (s *trafficStats) setPhase(p string) { s.mu.Lock(); s.phase = p; s.mu.Unlock() }

func (s *trafficStats) record(leaf *x509.Certificate, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.fail[s.phase]++
		if len(s.firstErr) < 5 {
			s.firstErr = append(s.firstErr, s.phase+": "+err.Error())
		}
		return
	}
	s.ok[s.phase]++
	s.serials[leaf.SerialNumber.String()] = true
	s.issuers[leaf.Issuer.CommonName] = true
}

// TestRotationUnderTrafficAgainstAPIServer runs two replicas against a real API server
// while a client, which trusts exactly the caBundle of the webhook configuration (refreshed
// every 20 ms, as an API server's informer would), keeps making fresh TLS connections to
// both. Time (fake) moves in 20-day steps through serving renewals and one CA rotation.
func TestRotationUnderTrafficAgainstAPIServer(t *testing.T) {
	admin, restricted := startAPIServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clocktesting.NewFakeClock(time.Now())

	_, before := caBundles(t, admin, itWebhooks)

	// Replica A is driven pass by pass; replica B runs its own loop, as in a pod.
	logs := &logSink{}
	logf.SetLogger(logs.logger().WithName("runtime"))
	// Each replica has its own client, as each pod would.
	a := newReplica(t, (&createCounter{}).client(t, restricted), clk, logs.logger().WithName("A"))
	b := newReplica(t, (&createCounter{}).client(t, restricted), clk, logs.logger().WithName("B"))
	defer func() {
		if t.Failed() {
			logs.dump(t)
		}
	}()
	if err := a.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.Start(ctx) }()
	if err := b.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	addrs := []string{serveReplica(t, ctx, a), serveReplica(t, ctx, b)}

	// Readiness (real time: the fake clock has not moved yet).
	for i, m := range []*Manager{a, b} {
		_, port, _ := net.SplitHostPort(addrs[i])
		if err := ServingCertChecker(m.opts.CertDir, "tls.crt", "tls.key", ":"+port)(nil); err != nil {
			t.Fatalf("replica %c not ready: %v", 'A'+i, err)
		}
	}

	// The "API server": trusts the caBundle of the first mutating webhook.
	var pool atomic.Pointer[x509.CertPool]
	var maxCAs atomic.Int32
	refresh := func() {
		mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := admin.Get(ctx, client.ObjectKey{Name: itWebhooks}, mwc); err != nil {
			return
		}
		certs, err := pki.DecodeX509CertificateSetBytes(mwc.Webhooks[0].ClientConfig.CABundle)
		if err != nil {
			return
		}
		p := x509.NewCertPool()
		for _, c := range certs {
			p.AddCert(c)
		}
		pool.Store(p)
		if n := int32(len(certs)); n > maxCAs.Load() {
			maxCAs.Store(n)
		}
	}
	refresh()
	go func() {
		for ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
			refresh()
		}
	}()

	stats := &trafficStats{phase: "initial", ok: map[string]int{}, fail: map[string]int{}, serials: map[string]bool{}, issuers: map[string]bool{}}
	stopClient := make(chan struct{})
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		for i := 0; !stopped(stopClient); i++ {
			leaf, err := get(ctx, addrs[i%2], pool.Load(), clk.Now)
			if err != nil {
				err = fmt.Errorf("replica %c: %w", 'A'+i%2, err)
			}
			stats.record(leaf, err)
		}
	}()

	secret := func() material {
		sec := &corev1.Secret{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: itNamespace, Name: itSecret}, sec); err != nil {
			t.Fatal(err)
		}
		m, err := decodeMaterial(sec.Data)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// step moves time on, runs a pass of A, then holds real time: B's loop (50 ms) and the
	// client's trust refresh (20 ms) catch up, as they would during minutes of real time.
	step := func(d, hold time.Duration) {
		clk.Step(d)
		if err := a.Ensure(ctx); err != nil {
			t.Fatalf("replica A pass: %v", err)
		}
		time.Sleep(hold)
	}
	const short, long = 150 * time.Millisecond, time.Second

	time.Sleep(long)
	first := secret()

	// Serving renewal: 61 days on, a new serving certificate from the same CA.
	stats.setPhase("first serving renewal")
	step(61*day, long)
	renewed := secret()
	if renewed.serving.cert.Equal(first.serving.cert) || !renewed.ca.cert.Equal(first.ca.cert) {
		t.Fatal("61 days on: want a new serving certificate from the same CA")
	}
	waitServing(t, addrs, renewed.serving.cert)
	if !bytes.Equal(readFile(t, a, "tls.crt"), readFile(t, b, "tls.crt")) {
		t.Fatal("replicas' files differ after renewal")
	}

	// CA rotation: keep stepping until the new CA has signed and the old one is gone.
	stats.setPhase("serving renewals")
	var rotatedAt, movedAt, prunedAt int
	for i := 1; prunedAt == 0; i++ {
		if i > 120 {
			t.Fatal("CA rotation did not complete in 120 steps")
		}
		hold := short
		if rotatedAt != 0 {
			hold = long
		}
		step(20*day, hold)
		m := secret()
		switch {
		case rotatedAt == 0 && !m.ca.cert.Equal(first.ca.cert):
			rotatedAt = i
			stats.setPhase("CA rotation")
			if len(m.trusted) != 2 || !m.trusted[1].Equal(first.ca.cert) || !signedBy(m.serving.cert, first.ca.cert) {
				t.Fatal("a new CA must first join the bundle next to the old one, signing nothing")
			}
		case rotatedAt != 0 && movedAt == 0 && signedBy(m.serving.cert, m.ca.cert):
			movedAt = i
			waitServing(t, addrs, m.serving.cert)
		case movedAt != 0 && len(m.trusted) == 1:
			prunedAt = i
			stats.setPhase("after CA rotation")
		}
	}
	step(20*day, long) // the new CA alone
	final := secret()
	waitServing(t, addrs, final.serving.cert)
	close(stopClient)
	<-clientDone

	// Someone wipes a caBundle: B's loop puts it back.
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := admin.Get(ctx, client.ObjectKey{Name: itWebhooks}, vwc); err != nil {
		t.Fatal(err)
	}
	vwc.Webhooks[1].ClientConfig.CABundle = nil
	if err := admin.Update(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "wiped caBundle restored", func() bool {
		bundles, _ := caBundles(t, admin, itWebhooks)
		return bytes.Equal(bundles[3], readFile(t, a, "ca.crt"))
	})
	_, after := caBundles(t, admin, itWebhooks)
	for i := range before {
		if !equality.Semantic.DeepEqual(before[i], after[i]) {
			t.Fatalf("something besides caBundle changed in %T:\nbefore %+v\nafter  %+v", before[i], before[i], after[i])
		}
	}
	for _, m := range []*Manager{a, b} {
		if !bytes.Equal(readFile(t, m, "tls.crt"), readFile(t, a, "tls.crt")) || !bytes.Equal(readFile(t, m, "ca.crt"), readFile(t, a, "ca.crt")) {
			t.Fatal("replicas ended with different files")
		}
	}

	stats.mu.Lock()
	defer stats.mu.Unlock()
	total, failed := 0, 0
	for _, p := range []string{"initial", "first serving renewal", "serving renewals", "CA rotation", "after CA rotation"} {
		t.Logf("%-18s %6d requests ok, %d failed", p+":", stats.ok[p], stats.fail[p])
		total += stats.ok[p] + stats.fail[p]
		failed += stats.fail[p]
	}
	t.Logf("fake time advanced %d days in %d steps; CA rotated at step %d, serving moved to it at %d, old CA dropped at %d; "+
		"%d distinct serving certificates and %d CAs seen by the client; bundle held up to %d CAs",
		clk.Since(issuedAt(first.ca.cert))/day, prunedAt+2, rotatedAt, movedAt, prunedAt, len(stats.serials), len(stats.issuers), maxCAs.Load())
	if failed != 0 {
		t.Fatalf("%d of %d requests failed: %q", failed, total, stats.firstErr)
	}
	if stats.ok["CA rotation"] < 50 || stats.ok["first serving renewal"] < 10 || len(stats.issuers) != 2 || maxCAs.Load() != 2 {
		t.Fatal("the traffic did not cover both rotations")
	}
}

// get makes one request on a fresh connection (a fresh handshake), trusting pool, with the
// fake clock as the verification time. It returns the served certificate.
func get(ctx context.Context, addr string, pool *x509.CertPool, now func() time.Time) (*x509.Certificate, error) {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: itService + "." + itNamespace + ".svc", Time: now},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.TLS.PeerCertificates[0], nil
}

// serveReplica serves a replica's CertDir through certwatcher, as the webhook server does.
func serveReplica(t *testing.T, ctx context.Context, m *Manager) string {
	t.Helper()
	cw, err := certwatcher.New(filepath.Join(m.opts.CertDir, "tls.crt"), filepath.Join(m.opts.CertDir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cw.Start(ctx) }()
	return serveTLS(t, ctx, cw.GetCertificate)
}

// waitServing waits until every address serves want.
func waitServing(t *testing.T, addrs []string, want *x509.Certificate) {
	t.Helper()
	for _, addr := range addrs {
		eventually(t, "serving "+want.SerialNumber.Text(16)+" at "+addr, func() bool {
			conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // comparing bytes
			if err != nil {
				return false
			}
			defer conn.Close()
			return conn.ConnectionState().PeerCertificates[0].Equal(want)
		})
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
