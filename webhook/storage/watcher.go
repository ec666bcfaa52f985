package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultOverrideInterval is how often an OverrideWatcher polls its file by default.
const DefaultOverrideInterval = 10 * time.Second

// WatcherOptions configures an OverrideWatcher. The zero value polls every DefaultOverrideInterval
// and reports nothing.
type WatcherOptions struct {
	Interval time.Duration
	// OnError is called once for each new failure: an unreadable file, or content that does not
	// validate. The previous good overrides stay in force. May be nil.
	OnError func(error)
	// OnReload is called after new content has been validated and taken into use. May be nil.
	OnReload func(*Overrides)
}

// OverrideWatcher keeps the override file's last good content in memory and reloads it when the
// file changes, without a restart. It polls: each tick reads the file (at most
// MaxOverrideFileSize) and compares its SHA-256 with the last content seen, which catches every
// change, including ConfigMap volume updates (atomic symlink swaps) and same-size edits within one
// mtime tick. A bad file never replaces a good one.
type OverrideWatcher struct {
	path    string
	opts    WatcherOptions
	current atomic.Pointer[Overrides]

	mu       sync.Mutex // serialises Reload; guards the fields below
	digest   string     // digest of the last content parsed, good or bad
	parseErr error      // validation error of that content
	readErr  error      // last read failure, nil once the file is readable again
}

// NewOverrideWatcher returns a watcher of file. Nothing is loaded until Reload or Start runs;
// until a good file is loaded, Current returns nil (no overrides).
func NewOverrideWatcher(file string, opts WatcherOptions) *OverrideWatcher {
	if opts.Interval <= 0 {
		opts.Interval = DefaultOverrideInterval
	}
	return &OverrideWatcher{path: file, opts: opts}
}

// Current returns the overrides in force: the last good file, or nil. Safe for concurrent use
// and on a nil watcher, so a Judge can be built as Judge{Overrides: w.Current()} either way.
func (w *OverrideWatcher) Current() *Overrides {
	if w == nil {
		return nil
	}
	return w.current.Load()
}

// Err returns why the file on disk is not in force, or nil when it is.
func (w *OverrideWatcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.readErr != nil {
		return w.readErr
	}
	return w.parseErr
}

// Reload checks the file now. It returns nil when the file's content is in force, else the
// reason it is not (the previous good overrides are kept). OnError runs only for new failures.
func (w *OverrideWatcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := readLimited(w.path)
	if err != nil {
		if w.readErr == nil || w.readErr.Error() != err.Error() {
			w.report(err)
		}
		w.readErr = err
		return err
	}
	w.readErr = nil
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	if digest == w.digest {
		return w.parseErr
	}
	w.digest = digest
	o, err := ParseOverrides(data, w.path)
	w.parseErr = err
	if err != nil {
		w.report(err)
		return err
	}
	w.current.Store(o)
	if w.opts.OnReload != nil {
		w.opts.OnReload(o)
	}
	return nil
}

// report hands a failure to OnError, saying which overrides stay in force.
func (w *OverrideWatcher) report(err error) {
	if w.opts.OnError == nil {
		return
	}
	kept := "no overrides are in force"
	if o := w.current.Load(); o != nil {
		kept = fmt.Sprintf("keeping the previous overrides (%d entries, sha256 %.12s)", len(o.entries), o.digest)
	}
	w.opts.OnError(fmt.Errorf("%w; %s", err, kept))
}

// Start checks the file at once and then every Interval until ctx ends; it always returns nil.
// It satisfies controller-runtime's manager.Runnable.
func (w *OverrideWatcher) Start(ctx context.Context) error {
	_ = w.Reload() // failures are reported through OnError and Err
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_ = w.Reload()
		}
	}
}

// NeedLeaderElection is false: every webhook replica needs the overrides.
func (w *OverrideWatcher) NeedLeaderElection() bool { return false }
