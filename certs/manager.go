package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Options configure a Manager. Zero durations take the defaults below.
type Options struct {
	// Namespace and SecretName locate the one Secret all replicas share.
	Namespace, SecretName string
	// SecretLabels are set when the Secret is created.
	SecretLabels map[string]string
	// ServiceName is the webhook Service; the serving certificate names
	// <svc>.<ns>.svc, <svc>.<ns>.svc.cluster.local, <svc>.<ns> and <svc>.
	ServiceName string
	// ExtraDNSNames are added to the serving certificate, for webhooks reached by URL (e.g.
	// through an ingress, or localhost in tests) rather than through the Service.
	ExtraDNSNames []string
	// Webhook configurations whose every caBundle we keep; empty skips one.
	MutatingWebhookConfigName, ValidatingWebhookConfigName string

	// CertDir receives CertName and KeyName (default tls.crt, tls.key) and ca.crt for the
	// webhook server, which reloads them with certwatcher.
	CertDir, CertName, KeyName string

	ServingValidity time.Duration // default 90 days
	CAValidity      time.Duration // default 5 years
	// RenewBeforePercentage renews a certificate that many percent of its life before expiry
	// (cert-manager's renewBeforePercentage); 0 renews at 2/3 of its life.
	RenewBeforePercentage int32
	// TrustPropagation is how long a new CA must have been in every caBundle before it signs
	// the serving certificate: time for every API server to load the bundle. Default 2m.
	TrustPropagation time.Duration
	// CAOverlap is how long the old CA stays in the caBundle after the serving certificate
	// moved to the new CA: time for every replica to serve the new certificate. Default 24h;
	// must exceed CheckInterval by far.
	CAOverlap time.Duration
	// CheckInterval is the pause between passes. Default 1m.
	CheckInterval time.Duration

	Clock  clock.PassiveClock // default real time
	Logger logr.Logger        // default controller-runtime's log, named "certs"
}

const (
	defaultServingValidity  = 90 * 24 * time.Hour
	defaultCAValidity       = 5 * 365 * 24 * time.Hour
	defaultTrustPropagation = 2 * time.Minute
	defaultCAOverlap        = 24 * time.Hour
	defaultCheckInterval    = time.Minute
	maxRetryDelay           = 30 * time.Second
)

// Manager keeps the webhook's CA and serving certificate in one Secret, their CA in the
// webhook configurations and the serving pair in CertDir. Run one in every replica.
type Manager struct {
	client client.Client
	opts   Options
	policy policy
	log    logr.Logger

	mu           sync.Mutex // one pass at a time
	trustedCA    []byte     // Raw of the CA last seen in every caBundle...
	trustedSince time.Time  // ...and since when
	ready        chan struct{}
	readyOnce    sync.Once
}

var _ manager.Runnable = (*Manager)(nil)
var _ manager.LeaderElectionRunnable = (*Manager)(nil)

// NewManager validates opts and returns a Manager. c must read from the API server, not from
// a cache (client.New, not the manager's client): the Secret and the webhook configurations
// are only ever read by name, so RBAC can restrict every verb but create to those names.
func NewManager(c client.Client, opts Options) (*Manager, error) {
	if c == nil {
		return nil, errors.New("certs: nil client")
	}
	if opts.Namespace == "" || opts.SecretName == "" || opts.ServiceName == "" || opts.CertDir == "" {
		return nil, errors.New("certs: Namespace, SecretName, ServiceName and CertDir are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.ServingValidity, defaultServingValidity)
	def(&opts.CAValidity, defaultCAValidity)
	def(&opts.TrustPropagation, defaultTrustPropagation)
	def(&opts.CAOverlap, defaultCAOverlap)
	def(&opts.CheckInterval, defaultCheckInterval)
	if opts.CertName == "" {
		opts.CertName = keyCert
	}
	if opts.KeyName == "" {
		opts.KeyName = keyKey
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logf.Log.WithName("certs")
	}
	switch {
	case opts.CAValidity <= opts.ServingValidity:
		return nil, fmt.Errorf("certs: CAValidity %s must exceed ServingValidity %s", opts.CAValidity, opts.ServingValidity)
	case opts.RenewBeforePercentage < 0 || opts.RenewBeforePercentage >= 100:
		return nil, fmt.Errorf("certs: RenewBeforePercentage %d not in [0,100)", opts.RenewBeforePercentage)
	case opts.ServingValidity < 0 || opts.TrustPropagation < 0 || opts.CAOverlap < 0 || opts.CheckInterval < 0:
		return nil, errors.New("certs: durations must not be negative")
	case opts.CertName == opts.KeyName || opts.CertName == keyCACert || opts.KeyName == keyCACert:
		return nil, errors.New("certs: CertName, KeyName and ca.crt must differ")
	}
	return &Manager{
		client: c,
		opts:   opts,
		log:    opts.Logger,
		ready:  make(chan struct{}),
		policy: policy{
			caName:           opts.ServiceName,
			dnsNames:         append(serviceDNSNames(opts.ServiceName, opts.Namespace), opts.ExtraDNSNames...),
			servingValidity:  opts.ServingValidity,
			caValidity:       opts.CAValidity,
			renewPct:         opts.RenewBeforePercentage,
			trustPropagation: opts.TrustPropagation,
			caOverlap:        opts.CAOverlap,
		},
	}, nil
}

// Start runs Ensure now and every CheckInterval (sooner after a failure) until ctx ends.
// It never returns an error: a failed pass is logged and retried, the webhook keeps serving
// what it has.
func (m *Manager) Start(ctx context.Context) error {
	retryDelay := time.Second
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		next := m.opts.CheckInterval
		if err := m.Ensure(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			m.log.Error(err, "Certificate pass failed; retrying", "in", retryDelay)
			next = min(retryDelay, next)
			retryDelay = min(2*retryDelay, maxRetryDelay)
		} else {
			retryDelay = time.Second
		}
		t.Reset(next)
	}
}

// NeedLeaderElection is false: every replica writes its own files.
func (m *Manager) NeedLeaderElection() bool { return false }

// Ensure is one pass: bring the Secret up to date (or adopt another replica's), publish the
// serving pair in CertDir, and put the trust bundle in every webhook's caBundle (restoring
// it if someone wiped it).
func (m *Manager) Ensure(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	mat, data, err := m.syncSecret(ctx)
	if err != nil {
		return err
	}
	changed, err := writeFiles(m.opts.CertDir, map[string][]byte{
		m.opts.CertName: data[keyCert],
		m.opts.KeyName:  data[keyKey],
		keyCACert:       data[keyCACert],
	})
	if err != nil {
		return err
	}
	if changed {
		m.log.Info("Published serving certificate", "dir", m.opts.CertDir,
			"serial", mat.serving.cert.SerialNumber.Text(16), "notAfter", mat.serving.cert.NotAfter)
	}
	m.readyOnce.Do(func() { close(m.ready) })

	ok, err := m.injectCABundle(ctx, data[keyCACert])
	if ok {
		m.markTrusted(mat.ca.cert)
	}
	return err
}

// WaitReady blocks until a serving pair has been published in CertDir once (or ctx ends).
// Start the webhook server after it: its certwatcher fails on missing files.
func (m *Manager) WaitReady(ctx context.Context) error {
	select {
	case <-m.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// markTrusted notes the first time ca was seen in every caBundle.
func (m *Manager) markTrusted(ca *x509.Certificate) {
	if ca == nil || bytes.Equal(m.trustedCA, ca.Raw) {
		return
	}
	m.trustedCA, m.trustedSince = ca.Raw, m.opts.Clock.Now()
}

// trustedSince is when ca was first seen in every caBundle by this replica; zero if not
// yet. Per replica and in memory: a lower bound on how long the API servers have had it,
// which is all the decision needs; a restart only delays the move to a new CA.
func (m *Manager) trustedSinceFor(ca *x509.Certificate) time.Time {
	if ca == nil || !bytes.Equal(m.trustedCA, ca.Raw) {
		return time.Time{}
	}
	return m.trustedSince
}
