package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseOverridesErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{"empty file", "", []string{"the file is empty"}},
		{"only comments", "# nothing\n", []string{"the file is empty"}},
		{"no overrides key", "other: 1\n", []string{"line 1: field other not found"}},
		{"null overrides", "overrides:\n", []string{"no 'overrides' list"}},
		{"not a list", "overrides: 5\n", []string{"line 1: cannot unmarshal"}},
		{"top-level list", "- provisioner: a\n", []string{"cannot unmarshal !!seq"}},
		{"unknown entry field", "overrides:\n  - provisioner: a\n    readWriteMany: {filesystem: true}\n    note: x\n",
			[]string{"line 4: field note not found"}},
		{"unknown mode field", "overrides:\n  - provisioner: a\n    readWriteMany: {filesystem: true, readOnly: true}\n",
			[]string{"line 3: field readOnly not found"}},
		{"misspelt readWriteMany", "overrides:\n  - provisioner: a\n    readwritemany: {filesystem: true}\n",
			[]string{"field readwritemany not found"}},
		{"bad bool", "overrides:\n  - provisioner: a\n    readWriteMany: {filesystem: maybe}\n", []string{"line 3: cannot unmarshal !!str `maybe`"}},
		{"duplicate key", "overrides:\n  - provisioner: a\n    provisioner: b\n", []string{`mapping key "provisioner" already defined`}},
		{"two documents", "overrides: []\n---\noverrides: []\n", []string{"more than one YAML document"}},
		{"missing provisioner", "overrides:\n  - readWriteMany: {filesystem: true}\n", []string{"entry 1 (line 2): provisioner is required"}},
		{"white space", "overrides:\n  - provisioner: \"a b\"\n    readWriteMany: {filesystem: true}\n", []string{"entry 1 (line 2)", "white space"}},
		{"no readWriteMany", "overrides:\n  - provisioner: a\n", []string{"entry 1 (line 2)", "readWriteMany must set filesystem and/or block"}},
		{"empty readWriteMany", "overrides:\n  - provisioner: a\n    readWriteMany: {}\n", []string{"readWriteMany must set"}},
		{"bad pattern", "overrides:\n  - provisioner: ok\n    readWriteMany: {filesystem: true}\n  - provisioner: \"[abc\"\n    readWriteMany: {filesystem: true}\n",
			[]string{`entry 2 (line 4): provisioner pattern "[abc" is malformed: syntax error in pattern`}},
		{"bad pattern escape", "overrides:\n  - provisioner: 'a\\'\n    readWriteMany: {block: true}\n", []string{"entry 1 (line 2)", "is malformed"}},
		{"duplicate provisioner", "overrides:\n  - provisioner: a\n    readWriteMany: {filesystem: true}\n  - provisioner: a\n    readWriteMany: {block: true}\n",
			[]string{`entry 2 (line 4): provisioner "a" is already declared by entry 1 (line 2)`}},
		{"all errors reported", "overrides:\n  - provisioner: \"[\"\n    readWriteMany: {filesystem: true}\n  - provisioner: b\n",
			[]string{"entry 1 (line 2)", "entry 2 (line 4)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseOverrides([]byte(tt.yaml), "ov.yaml")
			if err == nil {
				t.Fatalf("no error; got %+v", o.Entries())
			}
			if o != nil {
				t.Fatal("overrides returned with an error")
			}
			for _, w := range append(tt.want, "override file ov.yaml") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParseOverridesGood(t *testing.T) {
	o := mustOverrides(t, `# admin overrides
overrides:
  - provisioner: "*.cephfs.csi.ceph.com"
    readWriteMany:
      filesystem: true
      block: false
    reason: "  Rook CephFS  "
  - provisioner: example.com/nas
    readWriteMany: {filesystem: yes}
`)
	es := o.Entries()
	if len(es) != 2 || o.Source() != "test.yaml" || len(o.Digest()) != 64 {
		t.Fatalf("%+v %s %s", es, o.Source(), o.Digest())
	}
	e := es[0]
	if e.Provisioner != "*.cephfs.csi.ceph.com" || *e.Filesystem != true || *e.Block != false ||
		e.Reason != "Rook CephFS" || e.Index != 1 || e.Line != 3 {
		t.Fatalf("entry 1: %+v", e)
	}
	if es[1].Block != nil || !*es[1].Filesystem || es[1].Line != 8 {
		t.Fatalf("entry 2: %+v", es[1])
	}
	es[0].Provisioner = "mutated"
	if o.Entries()[0].Provisioner == "mutated" {
		t.Fatal("Entries must return a copy")
	}
	if empty := mustOverrides(t, "overrides: []\n"); len(empty.Entries()) != 0 {
		t.Fatal("empty list")
	}
}

func TestOverridesLookup(t *testing.T) {
	o := mustOverrides(t, `
overrides:
  - provisioner: "*"
    readWriteMany: {block: false}
  - provisioner: "*.rbd.csi.ceph.com"
    readWriteMany: {filesystem: true}
  - provisioner: rook.rbd.csi.ceph.com
    readWriteMany: {block: true}
  - provisioner: disk.csi.azure.com
    readWriteMany: {filesystem: true}
  - provisioner: kubernetes.io/azure-disk
    readWriteMany: {filesystem: false}
  - provisioner: "*/nfs-subdir-external-provisioner"
    readWriteMany: {filesystem: false}
  - provisioner: "cluster.local/*"
    readWriteMany: {filesystem: true}
`)
	tests := []struct {
		provisioner string
		mode        string
		index       int // 0: no entry
	}{
		{"rook.rbd.csi.ceph.com", "Block", 3},      // exact beats earlier pattern
		{"rook.rbd.csi.ceph.com", "Filesystem", 2}, // exact lacks the mode: next match
		{"other.rbd.csi.ceph.com", "Block", 1},     // "*" matches a name without "/"
		{"kubernetes.io/azure-disk", "Filesystem", 5},
		{"disk.csi.azure.com", "Filesystem", 4},
		{"cluster.local/nfs-subdir-external-provisioner", "Filesystem", 6}, // patterns in file order
		{"cluster.local/other", "Filesystem", 7},
		{"cluster.local/other", "Block", 0},
		{"a/b/nfs-subdir-external-provisioner", "Filesystem", 0}, // * does not cross "/"
		{"", "Filesystem", 0},
	}
	for _, tt := range tests {
		e, ok := o.Lookup(tt.provisioner, corev1.PersistentVolumeMode(tt.mode))
		if (tt.index == 0) == ok || ok && e.Index != tt.index {
			t.Errorf("Lookup(%q, %s) = entry %d (%v), want %d", tt.provisioner, tt.mode, e.Index, ok, tt.index)
		}
	}
	var nilO *Overrides
	if _, ok := nilO.Lookup("x", fs); ok || nilO.Entries() != nil || nilO.Source() != "" || nilO.Digest() != "" {
		t.Error("nil overrides")
	}
}

func TestLoadOverrides(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("overrides:\n  - provisioner: a\n    readWriteMany: {filesystem: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := LoadOverrides(good)
	if err != nil || o.Source() != good || len(o.Entries()) != 1 {
		t.Fatalf("%v %+v", err, o)
	}
	if _, err := LoadOverrides(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxOverrideFileSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOverrides(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
	if _, err := LoadOverrides(dir); err == nil {
		t.Error("a directory must not load")
	}
}
