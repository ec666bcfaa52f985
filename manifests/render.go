// Package manifests renders the kustomizations in this directory with the kustomize Go API,
// for `make manifests` and for the tests that apply and check them.
package manifests

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Flavours are the installable kustomizations.
var Flavours = []string{"cert-manager", "self-managed"}

// Dir is this directory on disk.
func Dir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the manifests directory")
	}
	return filepath.Dir(file), nil
}

// Render builds flavour, optionally with the network-policy component, and returns YAML.
func Render(flavour string, withNetworkPolicy bool) ([]byte, error) {
	if !valid(flavour) {
		return nil, fmt.Errorf("unknown flavour %q; want one of %v", flavour, Flavours)
	}
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	// Copy into memory so a composed kustomization can be added without touching the tree.
	mem := filesys.MakeFsInMemory()
	if err := copyTree(dir, "/manifests", mem); err != nil {
		return nil, err
	}
	target := "/manifests/" + flavour
	if withNetworkPolicy {
		target = "/manifests/composed-" + flavour
		k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../%s]\ncomponents: [../components/network-policy]\n", flavour)
		if err := mem.WriteFile(target+"/kustomization.yaml", []byte(k)); err != nil {
			return nil, err
		}
	}
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, target)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", flavour, err)
	}
	return resMap.AsYaml()
}

func valid(flavour string) bool {
	for _, f := range Flavours {
		if f == flavour {
			return true
		}
	}
	return false
}

func copyTree(src, dst string, mem filesys.FileSystem) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() || filepath.Ext(path) != ".yaml" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile(filepath.ToSlash(filepath.Join(dst, rel)), b)
	})
}
