package webhookprocess

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
)

// BinaryEnv names the webhook binary to run; the long runs (make bench, make reliability) set
// it to the production build (CGO_ENABLED=0 go build -trimpath, as make build).
const BinaryEnv = "WEBHOOK_BIN"

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary is BinaryPath, failing the test if it cannot be had.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := BinaryPath()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// BinaryPath is cmd/workspace-webhook: $WEBHOOK_BIN when set, else built once per test binary
// with the cached default flags into a temporary directory that RemoveBuilt removes.
func BinaryPath() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p, nil
	}
	built.once.Do(func() {
		root, err := controlplane.RepoRoot()
		if err != nil {
			built.err = err
			return
		}
		if built.dir, err = os.MkdirTemp("", "webhook-bin-"); err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(built.dir, "workspace-webhook")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/workspace-webhook")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/workspace-webhook: %v\n%s", err, out)
		}
	})
	return built.path, built.err
}

// RemoveBuilt removes what Binary built; TestMain calls it once every test has ended.
func RemoveBuilt() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}
