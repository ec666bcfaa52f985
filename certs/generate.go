package certs

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// backdate moves NotBefore into the past so an API server whose clock is a little behind
// ours still accepts a certificate the moment we serve it. Issue time is NotBefore+backdate.
const backdate = 5 * time.Minute

// ecKeySize is the P-256 curve: cheap handshakes, accepted by every supported API server.
const ecKeySize = pki.ECCurve256

// keyPair is one certificate with its private key.
type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// serviceDNSNames are the names the API server may use to reach the webhook Service.
func serviceDNSNames(service, namespace string) []string {
	return []string{
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
		service + "." + namespace,
		service,
	}
}

// newCA self-signs a CA valid for validity from now. The CommonName carries the issue time
// (like client-go's "name@unix") so two CAs in one bundle are told apart in logs and by
// chain building.
func newCA(name string, now time.Time, validity time.Duration) (keyPair, error) {
	key, err := pki.GenerateECPrivateKey(ecKeySize)
	if err != nil {
		return keyPair{}, fmt.Errorf("generating CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s-ca@%d", name, now.Unix())},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // signs only leaves
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	// SerialNumber nil: crypto/x509 picks a random RFC 5280 serial; SubjectKeyId is derived
	// for CA templates, so leaves get an AuthorityKeyId pointing at exactly this CA.
	_, cert, err := pki.SignCertificate(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return keyPair{}, fmt.Errorf("self-signing CA: %w", err)
	}
	return keyPair{cert: cert, key: key}, nil
}

// newServingCert issues a server certificate for dnsNames, never outliving its CA.
func newServingCert(ca keyPair, dnsNames []string, now time.Time, validity time.Duration) (keyPair, error) {
	if len(dnsNames) == 0 {
		return keyPair{}, fmt.Errorf("no DNS names for the serving certificate")
	}
	key, err := pki.GenerateECPrivateKey(ecKeySize)
	if err != nil {
		return keyPair{}, fmt.Errorf("generating serving key: %w", err)
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: dnsNames[0]},
		DNSNames:              dnsNames,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	_, cert, err := pki.SignCertificate(tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return keyPair{}, fmt.Errorf("signing serving certificate: %w", err)
	}
	return keyPair{cert: cert, key: key}, nil
}

// renewAt is when c is due for renewal: pct percent of its life before expiry, or at 2/3
// of its life when pct is 0 (cert-manager's renewBeforePercentage and default).
func renewAt(c *x509.Certificate, pct int32) time.Time {
	var p *int32
	if pct > 0 {
		p = &pct
	}
	t, err := pki.RenewalTime(c.NotBefore, c.NotAfter, nil, p, nil)
	if err != nil || t == nil { // only possible with a renewal policy, which we never pass
		return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
	}
	return t.Time
}

// issuedAt recovers when we issued c (see backdate).
func issuedAt(c *x509.Certificate) time.Time { return c.NotBefore.Add(backdate) }

// signedBy reports whether ca's key signed c.
func signedBy(c, ca *x509.Certificate) bool {
	return c != nil && ca != nil && c.CheckSignatureFrom(ca) == nil
}

// keyMatches reports whether key is the private key of c.
func keyMatches(c *x509.Certificate, key crypto.Signer) bool {
	if c == nil || key == nil {
		return false
	}
	ok, err := pki.PublicKeyMatchesCertificate(key.Public(), c)
	return err == nil && ok
}
