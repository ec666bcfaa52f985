package certs

import (
	"crypto/x509"
	"slices"
	"testing"
	"time"
)

func TestServiceDNSNames(t *testing.T) {
	got := serviceDNSNames("workspace-webhook", "octopus")
	want := []string{
		"workspace-webhook.octopus.svc",
		"workspace-webhook.octopus.svc.cluster.local",
		"workspace-webhook.octopus",
		"workspace-webhook",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("names = %q, want %q", got, want)
	}
}

func TestServingCertVerifiesForEveryServiceName(t *testing.T) {
	ca, err := newCA("svc", t0, 5*365*day)
	if err != nil {
		t.Fatal(err)
	}
	names := serviceDNSNames("svc", "ns")
	leaf, err := newServingCert(ca, names, t0, 90*day)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.cert.IsCA || !ca.cert.MaxPathLenZero || ca.cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("CA flags wrong: IsCA=%v MaxPathLenZero=%v usage=%v", ca.cert.IsCA, ca.cert.MaxPathLenZero, ca.cert.KeyUsage)
	}
	if leaf.cert.IsCA || !slices.Equal(leaf.cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Fatalf("serving certificate must be a non-CA server certificate")
	}
	if !keyMatches(leaf.cert, leaf.key) || keyMatches(leaf.cert, ca.key) {
		t.Fatal("keyMatches is wrong")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	for _, n := range names {
		if _, err := leaf.cert.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, CurrentTime: t0}); err != nil {
			t.Errorf("verify as %s: %v", n, err)
		}
	}
	if _, err := leaf.cert.Verify(x509.VerifyOptions{DNSName: "other.ns.svc", Roots: roots, CurrentTime: t0}); err == nil {
		t.Error("verified for a name it does not carry")
	}
	// Backdated for API servers whose clock is behind, and issue time recoverable.
	if !leaf.cert.NotBefore.Equal(t0.Add(-backdate)) || !issuedAt(leaf.cert).Equal(t0) {
		t.Errorf("NotBefore = %s, want %s", leaf.cert.NotBefore, t0.Add(-backdate))
	}
	if !leaf.cert.NotAfter.Equal(t0.Add(90 * day)) {
		t.Errorf("NotAfter = %s", leaf.cert.NotAfter)
	}
}

func TestServingCertNeverOutlivesItsCA(t *testing.T) {
	ca, err := newCA("svc", t0, 10*day)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := newServingCert(ca, []string{"svc"}, t0, 90*day)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.cert.NotAfter.Equal(ca.cert.NotAfter) {
		t.Fatalf("NotAfter = %s, want the CA's %s", leaf.cert.NotAfter, ca.cert.NotAfter)
	}
}

func TestTwoCAsOfOneServiceAreDistinct(t *testing.T) {
	a, err := newCA("svc", t0, day)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newCA("svc", t0.Add(time.Second), day)
	if err != nil {
		t.Fatal(err)
	}
	if a.cert.Subject.CommonName == b.cert.Subject.CommonName || slices.Equal(a.cert.SubjectKeyId, b.cert.SubjectKeyId) {
		t.Fatal("CAs must differ in name and key id so a bundle of both is unambiguous")
	}
	leaf, _ := newServingCert(b, []string{"svc"}, t0, day)
	if !signedBy(leaf.cert, b.cert) || signedBy(leaf.cert, a.cert) {
		t.Fatal("signedBy is wrong")
	}
}

func TestRenewAt(t *testing.T) {
	c := &x509.Certificate{NotBefore: t0, NotAfter: t0.Add(90 * day)}
	if got := renewAt(c, 0); !got.Equal(t0.Add(60 * day)) {
		t.Errorf("default renewal at %s, want 2/3 of life %s", got, t0.Add(60*day))
	}
	if got := renewAt(c, 50); !got.Equal(t0.Add(45 * day)) {
		t.Errorf("50%% renewal at %s, want %s", got, t0.Add(45*day))
	}
}
