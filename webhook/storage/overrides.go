package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
)

// MaxOverrideFileSize bounds what LoadOverrides reads; an override file is a short admin list.
const MaxOverrideFileSize = 1 << 20

// OverrideEntry is one validated entry of the override file (schema in doc.go).
type OverrideEntry struct {
	Provisioner string // exact provisioner name, or a path.Match pattern such as "*.cephfs.csi.ceph.com"
	Filesystem  *bool  // ReadWriteMany with volumeMode Filesystem; nil: no opinion, ask the next source
	Block       *bool  // ReadWriteMany with volumeMode Block; nil: no opinion
	Reason      string // the admin's words, quoted in answers
	Index       int    // 1-based position in the file
	Line        int    // line of the entry in the file (0 when unknown)
}

// forMode is the entry's declaration for mode, nil when it has none.
func (e OverrideEntry) forMode(mode corev1.PersistentVolumeMode) *bool {
	if mode == corev1.PersistentVolumeBlock {
		return e.Block
	}
	return e.Filesystem
}

func (e OverrideEntry) isPattern() bool { return strings.ContainsAny(e.Provisioner, `*?[\`) }

func (e OverrideEntry) where() string {
	if e.Line > 0 {
		return fmt.Sprintf("entry %d (line %d)", e.Index, e.Line)
	}
	return fmt.Sprintf("entry %d", e.Index)
}

// Overrides is an immutable, validated override file. A nil *Overrides has no entries.
type Overrides struct {
	source  string
	digest  string
	entries []OverrideEntry
}

// Source is the path (or name) the overrides were read from.
func (o *Overrides) Source() string {
	if o == nil {
		return ""
	}
	return o.source
}

// Digest is the SHA-256 of the file content, hex encoded.
func (o *Overrides) Digest() string {
	if o == nil {
		return ""
	}
	return o.digest
}

// Entries returns a copy of the entries in file order.
func (o *Overrides) Entries() []OverrideEntry {
	if o == nil {
		return nil
	}
	return append([]OverrideEntry(nil), o.entries...)
}

// Lookup returns the entry that decides ReadWriteMany for provisioner and mode: exact names
// (as written, then the in-tree alias's CSI name) before patterns, patterns in file order, and
// only entries that declare that volume mode.
func (o *Overrides) Lookup(provisioner string, mode corev1.PersistentVolumeMode) (OverrideEntry, bool) {
	for _, e := range o.matching(provisioner) {
		if e.forMode(normalizeMode(mode)) != nil {
			return e, true
		}
	}
	return OverrideEntry{}, false
}

// matching lists the entries whose provisioner matches, in precedence order.
func (o *Overrides) matching(provisioner string) []OverrideEntry {
	if o == nil {
		return nil
	}
	raw := strings.TrimSpace(provisioner)
	names := []string{raw}
	if n := NormalizeProvisioner(raw); n != raw {
		names = append(names, n)
	}
	var exact, patterns []OverrideEntry
	for _, name := range names {
		for _, e := range o.entries {
			if !e.isPattern() && e.Provisioner == name {
				exact = append(exact, e)
			}
		}
	}
	for _, e := range o.entries {
		if e.isPattern() && matchesAny(e.Provisioner, names) {
			patterns = append(patterns, e)
		}
	}
	return append(exact, patterns...)
}

func matchesAny(pattern string, names []string) bool {
	for _, n := range names {
		if ok, err := path.Match(pattern, n); err == nil && ok {
			return true
		}
	}
	return false
}

// answer is the Judge's view of Lookup: an Answer when an entry decides, else notes on entries
// that matched without declaring this volume mode.
func (o *Overrides) answer(provisioner string, mode corev1.PersistentVolumeMode, base Answer) (Answer, bool, []string) {
	e, ok := o.Lookup(provisioner, mode)
	if !ok {
		var notes []string
		for _, m := range o.matching(provisioner) {
			notes = append(notes, fmt.Sprintf("override file %s %s matches provisioner %s but declares nothing for volumeMode %s",
				o.source, m.where(), provisioner, mode))
		}
		return Answer{}, false, notes
	}
	base.Source = SourceOverride
	base.Reference = fmt.Sprintf("override file %s %s, provisioner %q", o.source, e.where(), e.Provisioner)
	verb := "cannot"
	base.Verdict = Unsupported
	if *e.forMode(mode) {
		base.Verdict, verb = Supported, "can"
	}
	base.Reason = fmt.Sprintf("the cluster admin's override file says this provisioner %s serve ReadWriteMany with volumeMode %s", verb, mode)
	if e.Reason != "" {
		base.Reason += ": " + e.Reason
	}
	return base, true, nil
}

// LoadOverrides reads and strictly validates an override file (schema in doc.go).
func LoadOverrides(file string) (*Overrides, error) {
	data, err := readLimited(file)
	if err != nil {
		return nil, err
	}
	return ParseOverrides(data, file)
}

func readLimited(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("override file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxOverrideFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("override file %s: %w", file, err)
	}
	if len(data) > MaxOverrideFileSize {
		return nil, fmt.Errorf("override file %s: larger than %d bytes", file, MaxOverrideFileSize)
	}
	return data, nil
}

// ParseOverrides validates override-file content; source names it in errors and answers.
// Unknown fields, duplicate keys, malformed patterns and entries that declare nothing are errors.
func ParseOverrides(data []byte, source string) (*Overrides, error) {
	raw, err := decodeStrict(data)
	if err != nil {
		return nil, fmt.Errorf("override file %s: %w", source, err)
	}
	lines := entryLines(data)
	entries := make([]OverrideEntry, 0, len(raw))
	var errs []error
	for i, r := range raw {
		e := r.entry(i+1, lineAt(lines, i))
		if err := validateEntry(e); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.where(), err))
		}
		entries = append(entries, e)
	}
	errs = append(errs, duplicates(entries)...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("override file %s: %w", source, errors.Join(errs...))
	}
	sum := sha256.Sum256(data)
	return &Overrides{source: source, digest: hex.EncodeToString(sum[:]), entries: entries}, nil
}

type rawFile struct {
	Overrides []rawEntry `yaml:"overrides"`
}

type rawEntry struct {
	Provisioner   string    `yaml:"provisioner"`
	ReadWriteMany *rawModes `yaml:"readWriteMany"`
	Reason        string    `yaml:"reason"`
}

type rawModes struct {
	Filesystem *bool `yaml:"filesystem"`
	Block      *bool `yaml:"block"`
}

func (r rawEntry) entry(index, line int) OverrideEntry {
	e := OverrideEntry{Provisioner: r.Provisioner, Reason: strings.TrimSpace(r.Reason), Index: index, Line: line}
	if r.ReadWriteMany != nil {
		e.Filesystem, e.Block = r.ReadWriteMany.Filesystem, r.ReadWriteMany.Block
	}
	return e
}

// decodeStrict decodes exactly one YAML document, rejecting unknown fields.
func decodeStrict(data []byte) ([]rawEntry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f rawFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty; write 'overrides: []' for no overrides")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("the file holds more than one YAML document")
	}
	if f.Overrides == nil {
		return nil, errors.New("no 'overrides' list; write 'overrides: []' for no overrides")
	}
	return f.Overrides, nil
}

// entryLines returns the line of each item of the top-level overrides list (best effort).
func entryLines(data []byte) []int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "overrides" {
			var lines []int
			for _, item := range root.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines
		}
	}
	return nil
}

func lineAt(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}

func validateEntry(e OverrideEntry) error {
	p := e.Provisioner
	switch {
	case p == "":
		return errors.New("provisioner is required")
	case strings.IndexFunc(p, unicode.IsSpace) >= 0:
		return fmt.Errorf("provisioner %q contains white space", p)
	}
	if e.isPattern() {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("provisioner pattern %q is malformed: %w", p, err)
		}
	}
	if e.Filesystem == nil && e.Block == nil {
		return fmt.Errorf("provisioner %q: readWriteMany must set filesystem and/or block (true or false)", p)
	}
	return nil
}

func duplicates(entries []OverrideEntry) []error {
	first := map[string]OverrideEntry{}
	var errs []error
	for _, e := range entries {
		if e.Provisioner == "" {
			continue
		}
		if prev, ok := first[e.Provisioner]; ok {
			errs = append(errs, fmt.Errorf("%s: provisioner %q is already declared by %s", e.where(), e.Provisioner, prev.where()))
			continue
		}
		first[e.Provisioner] = e
	}
	return errs
}
