package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// ServingCertChecker is a readiness check for either certificate mode (files we write, or a
// Secret volume kubelet writes for cert-manager). It fails until certDir holds a matching,
// currently valid certificate and key, and until the server at serveAddr (the webhook
// port; an empty or unspecified host means this pod) serves exactly that certificate, so a
// pod is not Ready while it would present a certificate the caBundle may not trust.
//
// Right after a renewal the check may fail for the moment certwatcher takes to reload;
// a readiness probe's failureThreshold absorbs that.
func ServingCertChecker(certDir, certName, keyName, serveAddr string) healthz.Checker {
	c := servingCertCheck{
		certPath: filepath.Join(certDir, certName),
		keyPath:  filepath.Join(certDir, keyName),
		addr:     localAddr(serveAddr),
		now:      time.Now,
		timeout:  5 * time.Second,
	}
	return c.check
}

type servingCertCheck struct {
	certPath, keyPath, addr string
	now                     func() time.Time
	timeout                 time.Duration
}

func (c servingCertCheck) check(req *http.Request) error {
	pair, err := tls.LoadX509KeyPair(c.certPath, c.keyPath) // also checks the key matches
	if err != nil {
		return fmt.Errorf("no usable serving certificate on disk: %w", err)
	}
	leaf := pair.Leaf
	if leaf == nil { // only with GODEBUG=x509keypairleaf=0
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("serving certificate on disk: %w", err)
		}
	}
	if now := c.now(); now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return fmt.Errorf("serving certificate on disk is not valid now (valid %s to %s)", leaf.NotBefore, leaf.NotAfter)
	}

	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: c.timeout},
		// We compare the served certificate byte for byte below; trust is not the question.
		Config: &tls.Config{InsecureSkipVerify: true, ServerName: leaf.Subject.CommonName}, //nolint:gosec
	}
	ctx := context.Background()
	if req != nil {
		ctx = req.Context()
	}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("webhook server at %s not reachable over TLS: %w", c.addr, err)
	}
	defer conn.Close()
	served := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(served) == 0 || !bytes.Equal(served[0].Raw, leaf.Raw) {
		got := "none"
		if len(served) > 0 {
			got = served[0].SerialNumber.Text(16)
		}
		return fmt.Errorf("webhook server serves certificate %s, disk holds %s (not reloaded yet)", got, leaf.SerialNumber.Text(16))
	}
	return nil
}

// localAddr turns a listen address into one to dial: no host or an unspecified one (":9443",
// "0.0.0.0:9443", "[::]:9443") means loopback.
func localAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.To4() != nil && ip.IsUnspecified()):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
