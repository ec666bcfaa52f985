package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	efsNo   = "overrides:\n  - provisioner: efs.csi.aws.com\n    readWriteMany: {filesystem: false}\n"
	efsYes  = "overrides:\n  - provisioner: efs.csi.aws.com\n    readWriteMany: {filesystem: true }\n" // same size as efsNo
	badYAML = "overrides:\n  - provisioner: efs.csi.aws.com\n    readWriteMany: {filesystem: false}\n    typo: 1\n"
)

// recorder collects watcher callbacks.
type recorder struct {
	mu      sync.Mutex
	errs    []error
	reloads int
}

func (r *recorder) options() WatcherOptions {
	return WatcherOptions{
		Interval: 5 * time.Millisecond,
		OnError:  func(err error) { r.mu.Lock(); r.errs = append(r.errs, err); r.mu.Unlock() },
		OnReload: func(*Overrides) { r.mu.Lock(); r.reloads++; r.mu.Unlock() },
	}
}

func (r *recorder) counts() (errs, reloads int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs), r.reloads
}

func (r *recorder) lastErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return nil
	}
	return r.errs[len(r.errs)-1]
}

func write(t *testing.T, file, content string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func efsVerdict(w *OverrideWatcher) Verdict {
	return Judge{Overrides: w.Current()}.ReadWriteMany(sc("efs", "efs.csi.aws.com", "provisioningMode", "efs-ap"), fs, Evidence{}).Verdict
}

func TestWatcherReloadKeepsLastGood(t *testing.T) {
	file := filepath.Join(t.TempDir(), "overrides.yaml")
	var rec recorder
	w := NewOverrideWatcher(file, rec.options())

	// Missing at start: nothing in force, the table answers.
	if err := w.Reload(); err == nil || w.Current() != nil || efsVerdict(w) != Supported {
		t.Fatalf("missing file: err=%v current=%v", err, w.Current())
	}
	if e, _ := rec.counts(); e != 1 || !strings.Contains(rec.lastErr().Error(), "no overrides are in force") {
		t.Fatalf("errors: %v", rec.errs)
	}

	write(t, file, efsNo)
	if err := w.Reload(); err != nil || efsVerdict(w) != Unsupported || w.Err() != nil {
		t.Fatalf("good file: %v", err)
	}
	good := w.Current()

	write(t, file, badYAML)
	err := w.Reload()
	if err == nil || !strings.Contains(err.Error(), "field typo not found") {
		t.Fatalf("bad file: %v", err)
	}
	if w.Current() != good || efsVerdict(w) != Unsupported {
		t.Fatal("a bad file replaced the good overrides")
	}
	if !strings.Contains(rec.lastErr().Error(), "keeping the previous overrides (1 entries") || w.Err() == nil {
		t.Fatalf("error report: %v", rec.lastErr())
	}
	if err := w.Reload(); err == nil { // unchanged bad file: same error, reported once
		t.Fatal("unchanged bad file must keep failing")
	}
	if e, r := rec.counts(); e != 2 || r != 1 {
		t.Fatalf("want 2 errors and 1 reload so far, got %d and %d", e, r)
	}

	write(t, file, efsYes)
	if err := w.Reload(); err != nil || efsVerdict(w) != Supported || w.Err() != nil {
		t.Fatalf("fixed file: %v", err)
	}

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); !errors.Is(err, os.ErrNotExist) || efsVerdict(w) != Supported {
		t.Fatalf("removed file: %v", err)
	}
	_ = w.Reload()
	write(t, file, efsYes) // back with the same content: in force again, nothing to reload
	if err := w.Reload(); err != nil || w.Err() != nil {
		t.Fatalf("restored file: %v", err)
	}
	if e, r := rec.counts(); e != 3 || r != 2 {
		t.Fatalf("want 3 errors and 2 reloads, got %d and %d: %v", e, r, rec.errs)
	}
}

func TestWatcherSeesSameSizeSameMtimeEdit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "overrides.yaml")
	write(t, file, efsNo)
	w := NewOverrideWatcher(file, WatcherOptions{})
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(file)
	write(t, file, efsYes)
	if err := os.Chtimes(file, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err != nil || efsVerdict(w) != Supported {
		t.Fatalf("edit not seen: %v", err)
	}
}

// TestWatcherStartFollowsConfigMapSwap runs the polling loop against a ConfigMap-style volume:
// the file is a symlink through ..data, which the kubelet swaps atomically.
func TestWatcherStartFollowsConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []struct{ dir, content string }{{"v1", efsNo}, {"v2", efsYes}, {"v3", badYAML}} {
		if err := os.Mkdir(filepath.Join(dir, v.dir), 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, v.dir, "overrides.yaml"), v.content)
	}
	swap := func(target string) {
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	swap("v1")
	file := filepath.Join(dir, "overrides.yaml")
	if err := os.Symlink(filepath.Join("..data", "overrides.yaml"), file); err != nil {
		t.Fatal(err)
	}

	var rec recorder
	w := NewOverrideWatcher(file, rec.options())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()

	eventually(t, func() bool { return efsVerdict(w) == Unsupported })
	swap("v2")
	eventually(t, func() bool { return efsVerdict(w) == Supported })
	swap("v3")
	eventually(t, func() bool { e, _ := rec.counts(); return e == 1 })
	if efsVerdict(w) != Supported {
		t.Fatal("bad content replaced the good overrides")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after cancel")
	}
	if w.NeedLeaderElection() {
		t.Error("every replica needs the overrides")
	}
}

func TestWatcherConcurrentReaders(t *testing.T) {
	file := filepath.Join(t.TempDir(), "overrides.yaml")
	write(t, file, efsNo)
	w := NewOverrideWatcher(file, WatcherOptions{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				_ = efsVerdict(w)
			}
		}()
	}
	for j := 0; j < 50; j++ {
		if j%2 == 0 {
			write(t, file, efsNo)
		} else {
			write(t, file, efsYes)
		}
		_ = w.Reload()
	}
	wg.Wait()
}

func TestWatcherDefaults(t *testing.T) {
	w := NewOverrideWatcher("x", WatcherOptions{Interval: -1})
	if w.opts.Interval != DefaultOverrideInterval {
		t.Fatalf("interval %v", w.opts.Interval)
	}
	if err := w.Reload(); err == nil { // no callbacks set: must not panic
		t.Fatal("missing file must fail")
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
