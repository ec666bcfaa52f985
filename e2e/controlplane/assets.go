package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// KubernetesVersion is the version of the control-plane binaries e2e/controlplane/build.sh builds
// (and therefore the directory name under bin/k8s this package looks in).
const KubernetesVersion = "v1.36.3"

// Names of the binaries the harness runs.
const (
	binAPIServer         = "kube-apiserver"
	binEtcd              = "etcd"
	binScheduler         = "kube-scheduler"
	binControllerManager = "kube-controller-manager"
	binKwok              = "kwok"
	kwokStagesDir        = "kwok-stages"
)

// Binaries holds absolute paths to the control-plane executables and the kwok stage configs.
type Binaries struct {
	APIServer         string
	Etcd              string
	Scheduler         string
	ControllerManager string
	Kwok              string
	// KwokStages are the kwok Stage config files (one --config flag each). Kustomization files that
	// build.sh copies alongside them are filtered out.
	KwokStages []string
}

// FindBinaries locates every control-plane binary and the kwok stages. Each one is looked up in
// $KUBEBUILDER_ASSETS first (when set and the file is there), then in
// <repo root>/bin/k8s/<KubernetesVersion>/, where `make controlplane` (e2e/controlplane/build.sh)
// puts them. The error names every missing piece.
func FindBinaries() (Binaries, error) {
	return findBinaries(true, true, true)
}

// findBinaries is FindBinaries requiring only what a given Options needs: a cheap
// apiserver+etcd test must not fail just because kwok was never built.
func findBinaries(scheduler, controllerManager, kwok bool) (Binaries, error) {
	dirs := searchDirs()
	var b Binaries
	var missing []string
	find := func(name string, required bool) string {
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
				return p
			}
		}
		if required {
			missing = append(missing, name)
		}
		return ""
	}
	b.APIServer = find(binAPIServer, true)
	b.Etcd = find(binEtcd, true)
	b.Scheduler = find(binScheduler, scheduler)
	b.ControllerManager = find(binControllerManager, controllerManager)
	b.Kwok = find(binKwok, kwok)
	if kwok {
		for _, d := range dirs {
			stages, err := kwokStageFiles(filepath.Join(d, kwokStagesDir))
			if err == nil && len(stages) > 0 {
				b.KwokStages = stages
				break
			}
		}
		if len(b.KwokStages) == 0 {
			missing = append(missing, kwokStagesDir+"/*.yaml")
		}
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("control-plane binaries missing: %s (looked in %s); run `make controlplane` (e2e/controlplane/build.sh) to build them",
			strings.Join(missing, ", "), strings.Join(dirs, ", "))
	}
	return b, nil
}

// searchDirs lists, in priority order, the directories binaries are looked up in.
func searchDirs() []string {
	var dirs []string
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		dirs = append(dirs, d)
	}
	if root, err := RepoRoot(); err == nil {
		dirs = append(dirs, filepath.Join(root, "bin", "k8s", KubernetesVersion))
	} else {
		dirs = append(dirs, filepath.Join("<repo root not found>", "bin", "k8s", KubernetesVersion))
	}
	return dirs
}

// RepoRoot returns the nearest directory at or above the working directory holding go.mod.
// Tests run with the package directory as working directory, so this finds the module root.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found at or above the working directory")
		}
		dir = parent
	}
}

// kwokStageFiles returns the files in dir that hold kwok Stage objects, sorted. build.sh copies the
// whole kustomize directories, so kustomization.yaml files sit next to the stages; kwok would
// reject those as configs.
func kwokStageFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if strings.Contains(string(data), "apiVersion: kwok.x-k8s.io/") && strings.Contains(string(data), "kind: Stage") {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// RequireBinaries skips a test that needs the control plane when its binaries are missing,
// and fails it instead under CI (CI=true), where `make test` must have provided them.
func RequireBinaries(t testing.TB) {
	t.Helper()
	if _, err := FindBinaries(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}
