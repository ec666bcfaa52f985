package certs

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestPlanFreshIssuesCAAndServingCert(t *testing.T) {
	p := testPolicy()
	m, why := mustPlan(t, p, material{}, t0, time.Time{})
	wantReasons(t, why, "no usable CA", "no usable serving certificate")
	if len(m.trusted) != 1 || !sameCert(m.trusted[0], m.ca.cert) {
		t.Fatalf("bundle must be exactly the new CA, got %d certs", len(m.trusted))
	}
	if !signedBy(m.serving.cert, m.ca.cert) || !sameNames(m.serving.cert.DNSNames, p.dnsNames) {
		t.Fatal("serving certificate not signed by the CA or wrong names")
	}
	if !m.ca.cert.NotAfter.Equal(t0.Add(defaultCAValidity)) {
		t.Fatalf("CA NotAfter %s", m.ca.cert.NotAfter)
	}
}

func TestPlanRenewsServingCertAtTwoThirds(t *testing.T) {
	p := testPolicy()
	m, _ := mustPlan(t, p, material{}, t0, time.Time{})

	// Lifetime includes the backdate, so 2/3 falls a little before day 60.
	for _, now := range []time.Time{t0.Add(time.Hour), t0.Add(59 * day)} {
		if _, why := mustPlan(t, p, m, now, t0); len(why) != 0 {
			t.Fatalf("at %s: unexpected change %q", now.Sub(t0), why)
		}
	}
	next, why := mustPlan(t, p, m, t0.Add(60*day), t0)
	wantReasons(t, why, "serving certificate due for renewal")
	if sameCert(next.serving.cert, m.serving.cert) || !sameCert(next.ca.cert, m.ca.cert) || !sameCerts(next.trusted, m.trusted) {
		t.Fatal("only the serving certificate may change")
	}
	if !next.serving.cert.NotAfter.Equal(t0.Add(150 * day)) {
		t.Fatalf("renewed NotAfter %s", next.serving.cert.NotAfter)
	}
}

func TestPlanReissuesServingCertForOtherNamesOrExpiry(t *testing.T) {
	p := testPolicy()
	m, _ := mustPlan(t, p, material{}, t0, time.Time{})

	renamed := p
	renamed.dnsNames = serviceDNSNames("renamed", "octopus")
	next, why := mustPlan(t, renamed, m, t0.Add(time.Hour), t0)
	wantReasons(t, why, "serving certificate names differ from the Service's")
	if !sameNames(next.serving.cert.DNSNames, renamed.dnsNames) {
		t.Fatal("names not updated")
	}

	// A CA not in the bundle signed the serving certificate: replace it at once.
	stranger, _ := newCA("stranger", t0, 365*day)
	foreign, _ := newServingCert(stranger, p.dnsNames, t0, 90*day)
	m2 := m
	m2.serving = foreign
	_, why = mustPlan(t, p, m2, t0.Add(time.Hour), t0)
	wantReasons(t, why, "serving certificate not signed by a trusted CA")
}

// TestPlanRotatesCAWithoutUntrustedWindow walks a CA rotation: at no step may the serving
// certificate be signed by a CA missing from the bundle, and the new CA signs only after
// it has been in every caBundle for trustPropagation.
func TestPlanRotatesCAWithoutUntrustedWindow(t *testing.T) {
	p := testPolicy()
	m, _ := mustPlan(t, p, material{}, t0, time.Time{})
	oldCA := m.ca.cert
	caDue := renewAt(oldCA, 0)
	if d := caDue.Sub(t0); d < 1216*day || d > 1217*day {
		t.Fatalf("CA renewal after %s, want 2/3 of 5 years", d)
	}

	// Keep the serving certificate fresh up to the CA's renewal, as the loop would.
	now := t0
	for now.Before(caDue.Add(-day)) {
		now = now.Add(20 * day)
		if now.After(caDue.Add(-day)) {
			now = caDue.Add(-day)
		}
		m, _ = mustPlan(t, p, m, now, t0)
		assertServedIsTrusted(t, m, now)
	}
	if !sameCert(m.ca.cert, oldCA) {
		t.Fatal("CA changed before it was due")
	}
	oldLeaf := m.serving.cert

	// Step 1: new CA, first in the bundle, old one kept; serving certificate untouched.
	now = caDue
	m, why := mustPlan(t, p, m, now, t0)
	wantReasons(t, why, "CA due for renewal")
	newCA := m.ca.cert
	if sameCert(newCA, oldCA) || len(m.trusted) != 2 || !sameCert(m.trusted[0], newCA) || !sameCert(m.trusted[1], oldCA) {
		t.Fatalf("bundle must be [new, old], got %d certs", len(m.trusted))
	}
	if !sameCert(m.serving.cert, oldLeaf) {
		t.Fatal("serving certificate must not move before the new CA is trusted")
	}
	assertServedIsTrusted(t, m, now)

	// Not injected yet, or injected too recently: wait.
	for _, c := range []struct{ now, since time.Time }{
		{now.Add(time.Hour), time.Time{}},
		{now.Add(time.Hour), now.Add(time.Hour - p.trustPropagation + time.Second)},
	} {
		if _, why := mustPlan(t, p, m, c.now, c.since); len(why) != 0 {
			t.Fatalf("moved too early: %q", why)
		}
	}

	// Step 2: trusted long enough, the new CA signs; the old CA stays.
	trustedAt := now.Add(time.Minute)
	now = trustedAt.Add(p.trustPropagation)
	m, why = mustPlan(t, p, m, now, trustedAt)
	wantReasons(t, why, "serving certificate moves to the new CA")
	if !signedBy(m.serving.cert, newCA) || len(m.trusted) != 2 {
		t.Fatalf("serving must be signed by the new CA with both CAs trusted (have %d)", len(m.trusted))
	}
	moved := now

	// Step 3: the old CA goes caOverlap later, not before.
	if _, why := mustPlan(t, p, m, moved.Add(p.caOverlap-time.Second), trustedAt); len(why) != 0 {
		t.Fatalf("old CA dropped too early: %q", why)
	}
	now = moved.Add(p.caOverlap)
	m, why = mustPlan(t, p, m, now, trustedAt)
	wantReasons(t, why, "old CA leaves the trust bundle")
	if len(m.trusted) != 1 || !sameCert(m.trusted[0], newCA) {
		t.Fatal("bundle must be only the new CA")
	}
	assertServedIsTrusted(t, m, now)
}

func TestPlanDropsExpiredCAsFromBundle(t *testing.T) {
	p := testPolicy()
	m, _ := mustPlan(t, p, material{}, t0, time.Time{})
	expired, _ := newCA("old", t0.Add(-400*day), 365*day)
	m.trusted = append(m.trusted, expired.cert)
	next, why := mustPlan(t, p, m, t0.Add(time.Hour), t0)
	wantReasons(t, why, "old CA leaves the trust bundle")
	if len(next.trusted) != 1 {
		t.Fatalf("expired CA kept")
	}
}

// A lost or corrupt CA key must not break serving: the old CA certificate stays trusted and
// keeps the serving certificate it signed until the new CA is trusted.
func TestPlanLostCAKeyKeepsServing(t *testing.T) {
	p := testPolicy()
	m, _ := mustPlan(t, p, material{}, t0, time.Time{})
	oldCA, oldLeaf := m.ca.cert, m.serving.cert
	m.ca = keyPair{} // as decodeMaterial leaves it for a bad ca.key

	next, why := mustPlan(t, p, m, t0.Add(day), t0)
	wantReasons(t, why, "no usable CA")
	if !sameCert(next.serving.cert, oldLeaf) || len(next.trusted) != 2 || !sameCert(next.trusted[1], oldCA) {
		t.Fatal("old CA and serving certificate must be kept while the new CA propagates")
	}
}

func assertServedIsTrusted(t *testing.T, m material, now time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	for _, c := range m.trusted {
		roots.AddCert(c)
	}
	if _, err := m.serving.cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, DNSName: m.serving.cert.DNSNames[0]}); err != nil {
		t.Fatalf("at %s the serving certificate does not verify against the bundle: %v", now, err)
	}
}
