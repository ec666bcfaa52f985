package certs

import (
	"crypto/x509"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

const day = 24 * time.Hour

// t0 is a fixed start so failures reproduce; real-time tests use time.Now instead.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testPolicy() policy {
	return policy{
		caName:           "workspace-webhook",
		dnsNames:         serviceDNSNames("workspace-webhook", "octopus"),
		servingValidity:  defaultServingValidity,
		caValidity:       defaultCAValidity,
		trustPropagation: defaultTrustPropagation,
		caOverlap:        defaultCAOverlap,
	}
}

// mustPlan runs plan and fails the test on error.
func mustPlan(t *testing.T, p policy, cur material, now, trustedSince time.Time) (material, []string) {
	t.Helper()
	next, why, err := p.plan(cur, now, trustedSince)
	if err != nil {
		t.Fatalf("plan at %s: %v", now, err)
	}
	return next, why
}

func wantReasons(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("reasons = %q, want %q", got, want)
	}
}

func sameCert(a, b *x509.Certificate) bool { return a != nil && b != nil && a.Equal(b) }

// logSink records log lines so tests can assert an error was logged.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lines = append(s.lines, time.Now().Format("15:04:05.000")+" "+prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
}

func (s *logSink) dump(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		t.Log(l)
	}
}

func (s *logSink) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
