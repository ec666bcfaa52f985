package app

import (
	"context"
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
			syncDeadline(ctx, stop, c.caches, 50*time.Millisecond, logr.Discard())
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
