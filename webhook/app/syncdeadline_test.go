package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// syncState stands for a cache that syncs, or never does (no RBAC, no API server).
type syncState struct {
	cache.Cache
	synced bool
}

func (c syncState) WaitForCacheSync(ctx context.Context) bool {
	if c.synced {
		return true
	}
	<-ctx.Done()
	return false
}

// --cache-sync-timeout ends the process with a reason when a cache never syncs, and does
// nothing when they all do or when the process is stopping anyway.
func TestSyncDeadline(t *testing.T) {
	for _, c := range []struct {
		name    string
		caches  []cache.Cache
		stopped bool
		want    string
	}{
		{"all synced", []cache.Cache{syncState{synced: true}, syncState{synced: true}}, false, ""},
		{"second never syncs", []cache.Cache{syncState{synced: true}, syncState{}}, false, "did not sync within --cache-sync-timeout=50ms"},
		{"stopping", []cache.Cache{syncState{}}, true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, stop := context.WithCancelCause(context.Background())
			if c.stopped {
				stop(context.Canceled)
			}
			synced := make(chan struct{})
			syncDeadline(ctx, stop, c.caches, 50*time.Millisecond, synced, logr.Discard())
			select {
			case <-synced:
				if c.want != "" || c.stopped {
					t.Fatal("reported synced")
				}
			default:
				if c.want == "" && !c.stopped {
					t.Fatal("not reported synced")
				}
			}
			cause := context.Cause(ctx)
			switch {
			case c.want == "" && cause != nil && cause != context.Canceled:
				t.Fatalf("stopped with %v", cause)
			case c.want != "" && (cause == nil || !strings.Contains(cause.Error(), c.want)):
				t.Fatalf("cause %v, want %q", cause, c.want)
			}
		})
	}
}

// starter stands for the manager: one that stops when asked, or controller-runtime's when
// stopped before its caches synced, which never returns.
type starter struct{ stops bool }

func (s starter) Start(ctx context.Context) error {
	if s.stops {
		<-ctx.Done()
		return nil
	}
	select {}
}

// Run ends with the reason even when the manager's Start never returns (stopped before its
// caches synced), and waits for a started manager to stop.
func TestRunManagerReturnsTheReason(t *testing.T) {
	deadline := errors.New("informer caches did not sync within --cache-sync-timeout=1s")
	for _, c := range []struct {
		name   string
		mgr    starter
		synced bool
		cause  error
		want   error
	}{
		{"caches never synced, the sync deadline", starter{}, false, deadline, deadline},
		{"caches never synced, SIGTERM", starter{}, false, context.Canceled, nil},
		{"started, SIGTERM", starter{stops: true}, true, context.Canceled, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, stop := context.WithCancelCause(context.Background())
			synced := make(chan struct{})
			if c.synced {
				close(synced)
			}
			done := make(chan error, 1)
			go func() { done <- runManager(ctx, c.mgr, synced) }()
			stop(c.cause)
			select {
			case err := <-done:
				if !errors.Is(err, c.want) {
					t.Fatalf("returned %v, want %v", err, c.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run waits for a manager that never returns")
			}
		})
	}
}
