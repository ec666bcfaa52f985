package enforcement

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResolve(t *testing.T) {
	for _, c := range []struct {
		global Mode
		labels map[string]string
		want   Mode
		valid  bool
	}{
		{Enforce, nil, Enforce, true},
		{Warn, nil, Warn, true},
		{Enforce, map[string]string{"other": "warn"}, Enforce, true},
		{Enforce, map[string]string{Label: "warn"}, Warn, true},
		{Warn, map[string]string{Label: "enforce"}, Enforce, true},
		{Warn, map[string]string{Label: "warn"}, Warn, true},
		{Enforce, map[string]string{Label: "enforce"}, Enforce, true},
		// Not a mode: the global one, flagged.
		{Enforce, map[string]string{Label: "Warn"}, Enforce, false},
		{Enforce, map[string]string{Label: "off"}, Enforce, false},
		{Warn, map[string]string{Label: ""}, Warn, false},
		{Warn, map[string]string{Label: "Enforce"}, Warn, false},
	} {
		got, valid := Resolve(c.global, c.labels)
		if got != c.want || valid != c.valid {
			t.Errorf("Resolve(%s, %v) = %s, %v; want %s, %v", c.global, c.labels, got, valid, c.want, c.valid)
		}
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"enforce", "warn"} {
		if m, err := Parse(s); err != nil || string(m) != s {
			t.Errorf("Parse(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Warn", "audit", "dryrun"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

// The cache keeps a labelled namespace's name and the label, nothing else.
func TestTrimNamespace(t *testing.T) {
	in := NamespaceObject()
	in.Name, in.UID, in.ResourceVersion = "team-a", "uid-1", "42"
	in.Labels = map[string]string{Label: "warn", "kubernetes.io/metadata.name": "team-a", "owner": "x"}
	in.Annotations = map[string]string{"big": "annotation"}
	in.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	out, err := trimNamespace(in)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*metav1.PartialObjectMetadata)
	if got.Name != "team-a" || got.ResourceVersion != "42" || len(got.Labels) != 1 || got.Labels[Label] != "warn" ||
		got.Annotations != nil || got.ManagedFields != nil || got.Kind != "Namespace" {
		t.Fatalf("trimmed to %+v", got)
	}
	if same, _ := trimNamespace("tombstone"); same != "tombstone" {
		t.Fatalf("a non-metadata object must pass unchanged, got %v", same)
	}
}
