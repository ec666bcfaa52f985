// Package manifests renders the kustomizations in this directory with the kustomize Go API
// (the same engine as `kubectl apply -k`, reading the files on disk), for `make manifests` and
// for the tests that apply and check them (e2e/install).
package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Flavours are the installable kustomizations: how the serving certificate is obtained.
var Flavours = []string{"cert-manager", "self-managed", "service-ca"}

// The optional kustomize Components, relative to Dir.
const (
	NetworkPolicyComponent = "components/network-policy"
	// AuditOnlyComponent runs the webhook and the final-state policy in warn mode.
	AuditOnlyComponent = "components/audit-only"
)

// Dir is this directory on disk (the source tree: `go run` and `go test` build from it).
// MANIFESTS_DIR overrides it, e.g. for a binary built with -trimpath.
func Dir() (string, error) {
	if d := os.Getenv("MANIFESTS_DIR"); d != "" {
		return filepath.Abs(d)
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the manifests directory; set MANIFESTS_DIR")
	}
	return filepath.Dir(file), nil
}

// Render builds flavour, optionally with the network-policy component, and returns YAML.
func Render(flavour string, withNetworkPolicy bool) ([]byte, error) {
	if withNetworkPolicy {
		return RenderWith(flavour, NetworkPolicyComponent)
	}
	return RenderWith(flavour)
}

// RenderWith builds flavour with the optional components (relative to Dir) and returns YAML.
func RenderWith(flavour string, components ...string) ([]byte, error) {
	if !slices.Contains(Flavours, flavour) {
		return nil, fmt.Errorf("unknown flavour %q; want one of %v", flavour, Flavours)
	}
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	target := filepath.Join(dir, flavour)
	if len(components) == 0 {
		return RenderDir(target)
	}
	// What an admin writes to opt in: a kustomization naming the flavour and the components.
	// It lives in a temporary directory so the tree is never touched; kustomize only accepts
	// relative paths to other kustomizations, so they are made relative to it.
	tmp, err := os.MkdirTemp("", "workspace-webhook-manifests-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	base, err := filepath.Rel(tmp, target)
	if err != nil {
		return nil, err
	}
	var rel []string
	for _, c := range components {
		r, err := filepath.Rel(tmp, filepath.Join(dir, c))
		if err != nil {
			return nil, err
		}
		rel = append(rel, fmt.Sprintf("%q", filepath.ToSlash(r)))
	}
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%q]\ncomponents: [%s]\n",
		filepath.ToSlash(base), strings.Join(rel, ", "))
	if err := os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		return nil, err
	}
	return RenderDir(tmp)
}

// RenderDir builds the kustomization in dir from disk with the options `kubectl apply -k`
// uses (k8s.io/cli-runtime KustomizeVisitor: kustomize's defaults, load restrictions on, no
// plugins, legacy resource order: Namespace first, webhook configurations last), and returns
// YAML in the order kubectl would apply it.
func RenderDir(dir string) ([]byte, error) {
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy
	resMap, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	return resMap.AsYaml()
}
