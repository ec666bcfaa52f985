package helm

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
)

// build.sh and the Makefile build the version this package looks for, and the binary found is
// that version (or the one $HELM names).
func TestBuildScriptAndBinaryAgreeOnTheVersion(t *testing.T) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(root, "e2e", "helm", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`HELM_VERSION="\$\{HELM_VERSION:-([^}]+)\}"`).FindSubmatch(script)
	if m == nil || string(m[1]) != Version {
		t.Fatalf("build.sh builds %q by default, this package looks for %s", m, Version)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^HELM_VERSION\s*\?=\s*(\S+)$`).FindSubmatch(makefile); m == nil || string(m[1]) != Version {
		t.Fatalf("the Makefile builds %q, this package looks for %s", m, Version)
	}
	bin := Require(t)
	out, err := Run(bin, "version", "--short")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("HELM") == "" && !strings.HasPrefix(strings.TrimSpace(string(out)), Version+"+") && strings.TrimSpace(string(out)) != Version {
		t.Errorf("%s reports version %q, want %s", bin, out, Version)
	}
	t.Logf("%s: %s", bin, strings.TrimSpace(string(out)))
}

// A $HELM that is not an executable is an error naming it, not a silent fallback.
func TestFindRejectsABadHELM(t *testing.T) {
	t.Setenv("HELM", filepath.Join(t.TempDir(), "no-such-helm"))
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), "no-such-helm") {
		t.Fatalf("want an error naming $HELM, got %v", err)
	}
}
