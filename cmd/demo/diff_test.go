package main

import (
	"strings"
	"testing"
)

func TestYAMLDiffShowsOnlyChangesWithContext(t *testing.T) {
	before := map[string]any{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8, "i": 9}
	after := map[string]any{"a": 1, "b": 2, "c": 3, "d": 4, "e": 50, "f": 6, "g": 7, "h": 8, "i": 9, "j": 10}
	got := yamlDiff(before, after)
	for _, want := range []string{"- e: 5", "+ e: 50", "+ j: 10", "  d: 4"} {
		if !strings.Contains(got, want) {
			t.Errorf("diff lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "a: 1") {
		t.Errorf("diff shows lines far from any change:\n%s", got)
	}
	if yamlDiff(before, before) != "" {
		t.Error("equal objects must give an empty diff")
	}
}
