package certs

import (
	"bytes"
	"crypto/x509"
	"slices"
	"time"
)

// policy is the pure part of the manager: what the Secret should hold at a given time.
type policy struct {
	caName           string
	dnsNames         []string
	servingValidity  time.Duration
	caValidity       time.Duration
	renewPct         int32
	trustPropagation time.Duration
	caOverlap        time.Duration
}

// plan returns the material the Secret should hold at now and why it differs from cur; no
// reasons means keep cur untouched. trustedSince is when this replica first saw cur's CA in
// the caBundle of every webhook (zero: not yet).
//
// CA rotation never breaks a request, in three steps over several passes:
//  1. a new CA signs nothing yet; it is put first in the bundle, the old CA stays;
//  2. once the bundle with both has been in the webhook configurations for
//     trustPropagation, the serving certificate is re-issued by the new CA;
//  3. caOverlap after that (every replica serves the new certificate by then) the old CA
//     leaves the bundle.
func (p policy) plan(cur material, now, trustedSince time.Time) (material, []string, error) {
	next := cur
	var why []string

	caOK := false
	switch ca := cur.ca.cert; {
	case ca == nil:
		why = append(why, "no usable CA")
	case !now.Before(ca.NotAfter):
		why = append(why, "CA expired")
	case !now.Before(renewAt(ca, p.renewPct)):
		why = append(why, "CA due for renewal")
	default:
		caOK = true
	}
	if !caOK {
		ca, err := newCA(p.caName, now, p.caValidity)
		if err != nil {
			return cur, nil, err
		}
		next.ca = ca
		next.trusted = append([]*x509.Certificate{ca.cert}, cur.trusted...)
	}
	// Trust in the signing CA is established once it has been in every caBundle long
	// enough for all API servers to have loaded it. A CA created just now is not.
	trusted := caOK && !trustedSince.IsZero() && !now.Before(trustedSince.Add(p.trustPropagation))

	reissue := ""
	switch leaf := cur.serving.cert; {
	case leaf == nil:
		reissue = "no usable serving certificate"
	case !sameNames(leaf.DNSNames, p.dnsNames):
		reissue = "serving certificate names differ from the Service's"
	case !now.Before(leaf.NotAfter):
		reissue = "serving certificate expired"
	case !slices.ContainsFunc(next.trusted, func(ca *x509.Certificate) bool { return signedBy(leaf, ca) && now.Before(ca.NotAfter) }):
		reissue = "serving certificate not signed by a trusted CA"
	case signedBy(leaf, next.ca.cert):
		if !now.Before(renewAt(leaf, p.renewPct)) {
			reissue = "serving certificate due for renewal"
		}
	case trusted:
		reissue = "serving certificate moves to the new CA"
		// default: signed by an older CA that is still trusted; wait until the new CA is.
	}
	if reissue != "" {
		kp, err := newServingCert(next.ca, p.dnsNames, now, p.servingValidity)
		if err != nil {
			return cur, nil, err
		}
		next.serving = kp
		why = append(why, reissue)
	}

	next.trusted = p.prune(next, now)
	if len(why) == 0 && !sameCerts(next.trusted, cur.trusted) {
		why = append(why, "old CA leaves the trust bundle")
	}
	return next, why, nil
}

// prune keeps the signing CA first, then older CAs while a replica may still serve a
// certificate they signed: until caOverlap after the serving certificate moved to the
// signing CA, and never past their expiry.
func (p policy) prune(m material, now time.Time) []*x509.Certificate {
	out := []*x509.Certificate{m.ca.cert}
	moved := signedBy(m.serving.cert, m.ca.cert) && !now.Before(issuedAt(m.serving.cert).Add(p.caOverlap))
	for _, c := range m.trusted {
		switch {
		case moved, !c.IsCA, !now.Before(c.NotAfter):
		case slices.ContainsFunc(out, func(o *x509.Certificate) bool { return bytes.Equal(o.Raw, c.Raw) }):
		default:
			out = append(out, c)
		}
	}
	return out
}

func sameNames(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func sameCerts(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return bytes.Equal(x.Raw, y.Raw) })
}
