package certs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The cert dir is laid out the way kubelet lays out a Secret volume, so certwatcher sees the
// same thing in both modes:
//
//	..2026_05_01_12_00_00.123/   one directory per published set of files
//	..data -> ..2026_05_01_12_00_00.123
//	tls.crt -> ..data/tls.crt    (and tls.key, ca.crt)
//
// A new set is written into a fresh directory and published by renaming a symlink over
// ..data, so a path lookup sees the old set or the new one, never a mix of files. certwatcher
// still opens tls.crt and tls.key one after the other; a swap in between gives it a
// mismatched pair, which tls.X509KeyPair rejects (it keeps serving the old pair), and the
// removal of the old directory then fires the events that make it read the new pair.
const dataLink = "..data"

// writeFiles publishes files (name -> content) in dir as one set and reports whether
// anything changed. Unchanged content is not rewritten, so certwatcher is not woken.
func writeFiles(dir string, files map[string][]byte) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	if !published(dir, files) {
		if err := publish(dir, files); err != nil {
			return false, fmt.Errorf("writing certificates to %s: %w", dir, err)
		}
		return true, nil
	}
	return false, linkAll(dir, files)
}

// published reports whether ..data already holds exactly files.
func published(dir string, files map[string][]byte) bool {
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, dataLink, name))
		if err != nil || !bytes.Equal(got, want) {
			return false
		}
	}
	return true
}

func publish(dir string, files map[string][]byte) error {
	set, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	for name, content := range files {
		// Written whole before anyone can reach them through ..data.
		if err := os.WriteFile(filepath.Join(set, name), content, 0o600); err != nil {
			_ = os.RemoveAll(set)
			return err
		}
	}
	if err := swapLink(filepath.Join(dir, dataLink), filepath.Base(set)); err != nil {
		_ = os.RemoveAll(set)
		return err
	}
	if err := linkAll(dir, files); err != nil {
		return err
	}
	return removeOldSets(dir, filepath.Base(set))
}

// linkAll points each name at ..data/name (replacing a plain file left by anything else).
func linkAll(dir string, files map[string][]byte) error {
	for name := range files {
		target := filepath.Join(dataLink, name)
		if cur, err := os.Readlink(filepath.Join(dir, name)); err == nil && cur == target {
			continue
		}
		if err := swapLink(filepath.Join(dir, name), target); err != nil {
			return err
		}
	}
	return nil
}

// swapLink atomically makes path a symlink to target: rename(2) replaces path in one step.
func swapLink(path, target string) error {
	tmp := filepath.Join(filepath.Dir(path), ".."+filepath.Base(path)+"_tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removeOldSets deletes every published-set directory but keep; deleting the one certwatcher
// is watching is what tells it to re-read.
func removeOldSets(dir, keep string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "..") && e.Name() != keep {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}
