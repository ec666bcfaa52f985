package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the Secret. tls.crt/tls.key/ca.crt follow kubernetes.io/tls and cert-manager;
// ca.key is ours: any replica must be able to sign the next serving certificate.
const (
	keyCACert = "ca.crt" // trust bundle: signing CA first, then older CAs still trusted
	keyCAKey  = "ca.key" // private key of the first certificate of ca.crt
	keyCert   = corev1.TLSCertKey
	keyKey    = corev1.TLSPrivateKeyKey
)

// maxConflicts bounds re-reads when other replicas keep winning; the next pass retries.
const maxConflicts = 5

// material is the parsed content of the Secret. A part that is missing or does not parse
// is left zero; plan replaces it.
type material struct {
	ca      keyPair             // signing CA (ca.crt[0] + ca.key)
	trusted []*x509.Certificate // ca.crt, in order
	serving keyPair             // tls.crt + tls.key
}

// decodeMaterial parses Secret data. It never fails as a whole: the error lists what was
// unusable, and those parts are zero in the result.
func decodeMaterial(data map[string][]byte) (material, error) {
	var m material
	var errs []error
	if trusted, err := pki.DecodeX509CertificateSetBytes(data[keyCACert]); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", keyCACert, err))
	} else {
		m.trusted = trusted
	}
	if key, err := pki.DecodePrivateKeyBytes(data[keyCAKey]); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", keyCAKey, err))
	} else if len(m.trusted) > 0 {
		switch {
		case !m.trusted[0].IsCA:
			errs = append(errs, fmt.Errorf("%s: first certificate is not a CA", keyCACert))
		case !keyMatches(m.trusted[0], key):
			errs = append(errs, fmt.Errorf("%s does not match the first certificate of %s", keyCAKey, keyCACert))
		default:
			m.ca = keyPair{cert: m.trusted[0], key: key}
		}
	}
	certs, err := pki.DecodeX509CertificateChainBytes(data[keyCert])
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", keyCert, err))
	}
	if key, kerr := pki.DecodePrivateKeyBytes(data[keyKey]); kerr != nil {
		errs = append(errs, fmt.Errorf("%s: %w", keyKey, kerr))
	} else if err == nil {
		if keyMatches(certs[0], key) {
			m.serving = keyPair{cert: certs[0], key: key}
		} else {
			errs = append(errs, fmt.Errorf("%s does not match %s", keyKey, keyCert))
		}
	}
	return m, errors.Join(errs...)
}

// encode renders m as Secret data.
func (m material) encode() (map[string][]byte, error) {
	var bundle bytes.Buffer
	for _, c := range m.trusted {
		pemBytes, err := pki.EncodeX509(c)
		if err != nil {
			return nil, err
		}
		bundle.Write(pemBytes)
	}
	caKey, err := pki.EncodePKCS8PrivateKey(m.ca.key)
	if err != nil {
		return nil, fmt.Errorf("encoding CA key: %w", err)
	}
	cert, err := pki.EncodeX509(m.serving.cert)
	if err != nil {
		return nil, err
	}
	key, err := pki.EncodePKCS8PrivateKey(m.serving.key)
	if err != nil {
		return nil, fmt.Errorf("encoding serving key: %w", err)
	}
	return map[string][]byte{keyCACert: bundle.Bytes(), keyCAKey: caKey, keyCert: cert, keyKey: key}, nil
}

// syncSecret makes the Secret hold current material and returns it (with its data, for the
// files). The Secret is the only shared state: Create loses to a concurrent Create
// (AlreadyExists) and Update to a concurrent Update (Conflict, via resourceVersion); either
// way we re-read and re-plan on the winner's material, so all replicas converge on one CA.
func (m *Manager) syncSecret(ctx context.Context) (material, map[string][]byte, error) {
	key := client.ObjectKey{Namespace: m.opts.Namespace, Name: m.opts.SecretName}
	for range maxConflicts {
		now := m.opts.Clock.Now()
		sec := &corev1.Secret{}
		err := m.client.Get(ctx, key, sec)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return material{}, nil, fmt.Errorf("reading Secret %s: %w", key, err)
		}

		var cur material
		if exists {
			var derr error
			cur, derr = decodeMaterial(sec.Data)
			switch {
			case derr == nil:
			case empty(sec.Data): // e.g. created by an installer as a placeholder
				m.log.Info("Secret holds no certificates yet; generating them", "secret", key)
			default:
				m.log.Error(derr, "Secret holds unusable certificate data; replacing what is unusable", "secret", key)
			}
		}
		next, why, err := m.policy.plan(cur, now, m.trustedSinceFor(cur.ca.cert))
		if err != nil {
			return material{}, nil, err
		}
		if len(why) == 0 {
			return cur, sec.Data, nil
		}
		data, err := next.encode()
		if err != nil {
			return material{}, nil, err
		}

		if !exists {
			sec = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: m.opts.SecretLabels},
				Type:       corev1.SecretTypeTLS,
				Data:       data,
			}
			err = m.client.Create(ctx, sec)
		} else {
			sec.Data = data // resourceVersion from the Get: Update is optimistic
			err = m.client.Update(ctx, sec)
		}
		switch {
		case err == nil:
			m.log.Info("Stored new certificates", "secret", key, "reasons", why,
				"caNotAfter", next.ca.cert.NotAfter, "servingNotAfter", next.serving.cert.NotAfter, "trustedCAs", len(next.trusted))
			return next, data, nil
		case apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err):
			m.log.V(1).Info("Another replica wrote the Secret first; re-reading", "secret", key)
			continue
		default:
			return material{}, nil, fmt.Errorf("writing Secret %s: %w", key, err)
		}
	}
	return material{}, nil, fmt.Errorf("secret %s: still conflicting after %d attempts", key, maxConflicts)
}

// empty reports whether none of our keys has content.
func empty(data map[string][]byte) bool {
	return len(data[keyCACert])+len(data[keyCAKey])+len(data[keyCert])+len(data[keyKey]) == 0
}
