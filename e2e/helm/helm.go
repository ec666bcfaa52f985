// Package helm finds the helm binary the chart tests run: $HELM when set, else the pinned
// version that build.sh (`make helm`) builds from the Go module proxy into bin/helm/<version>/.
// A helm on PATH is never used: its version would decide what the tests see.
package helm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
)

// Version is the helm build.sh builds (its HELM_VERSION default; a test holds them equal).
const Version = "v3.22.0"

// Find returns the helm binary: $HELM, else <repo root>/bin/helm/<Version>/helm. The error
// says how to get it.
func Find() (string, error) {
	if h := os.Getenv("HELM"); h != "" {
		if isExecutable(h) {
			return filepath.Abs(h)
		}
		return "", fmt.Errorf("HELM=%s is not an executable file", h)
	}
	root, err := controlplane.RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "helm", Version, "helm")
	if !isExecutable(p) {
		return "", fmt.Errorf("helm %s missing at %s; run `make helm` (e2e/helm/build.sh) or set HELM", Version, p)
	}
	return p, nil
}

// Require returns the helm binary, or skips the test when there is none; under CI (CI=true),
// where `make test` must have built it, it fails the test instead.
func Require(t testing.TB) string {
	t.Helper()
	p, err := Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return p
}

// Run runs helm with args and returns its standard output; the error carries its standard
// error, where helm says what is wrong.
func Run(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	// No repository, plugin or registry configuration of the machine is read or written.
	home, err := os.MkdirTemp("", "helm-home-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w: %s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.Bytes(), nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
