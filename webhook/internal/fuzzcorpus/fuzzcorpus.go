// Package fuzzcorpus keeps a fuzz target's named seeds as files under
// testdata/fuzz/<target>/, in the format `go test` reads: every `go test` runs them as test
// cases, and `go test -fuzz` starts from them. The seeds are written from Go code (hostile
// inputs are easier to build than to type) and held equal to it like golden files.
package fuzzcorpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Seed is one named input of a fuzz target, its values in the target's argument order.
type Seed struct {
	Name   string
	Values []any
}

// Sync compares every seed with its file (rewriting it when update is set). Files of the
// directory that are not seeds (inputs `go test -fuzz` found failing, kept as regressions)
// are left alone.
func Sync(t *testing.T, target string, update bool, seeds []Seed) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	names := map[string]bool{}
	for _, s := range seeds {
		if names[s.Name] {
			t.Fatalf("two seeds named %s", s.Name)
		}
		names[s.Name] = true
		want, err := Encode(s.Values...)
		if err != nil {
			t.Fatalf("seed %s: %v", s.Name, err)
		}
		path := filepath.Join(dir, s.Name)
		if update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("seed %s is not committed as built (run go test -run %s -update and commit %s): %v", path, t.Name(), dir, err)
		}
	}
}

// Encode writes values as `go test fuzz v1` does (internal/fuzz marshalCorpusFile).
func Encode(values ...any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch t := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", t)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", t)
		case byte:
			fmt.Fprintf(&b, "byte(%q)\n", t)
		case bool, int, int64, uint, uint16, uint32, uint64:
			fmt.Fprintf(&b, "%T(%v)\n", t, t)
		default:
			return nil, fmt.Errorf("fuzz corpus value of type %T is not supported here", v)
		}
	}
	return b.Bytes(), nil
}
