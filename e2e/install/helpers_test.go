// Package install proves the manifests: they render, the API server accepts them (with
// cert-manager's CRDs), the Deployment passes Pod Security "restricted", and the RBAC they
// grant is enough for the webhook and no more.
package install

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
)

const (
	webhookNS = "octopus-workspace-webhook"
	webhookSA = "system:serviceaccount:octopus-workspace-webhook:workspace-webhook"
)

func start(t *testing.T, o controlplane.Options) *controlplane.ControlPlane {
	t.Helper()
	if _, err := controlplane.FindBinaries(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	return cp
}

func certManagerCRDs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(goModCache(t), "github.com", "cert-manager", "cert-manager@v1.21.2", "deploy", "crds")
	if _, err := os.Stat(filepath.Join(dir, "cert-manager.io_certificates.yaml")); err != nil {
		t.Fatalf("cert-manager CRDs not in the module cache (go mod download github.com/cert-manager/cert-manager): %v", err)
	}
	return dir
}

func goModCache(t *testing.T) string {
	t.Helper()
	if v := os.Getenv("GOMODCACHE"); v != "" {
		return v
	}
	if v := os.Getenv("GOPATH"); v != "" {
		return filepath.Join(v, "pkg", "mod")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(home, "go", "pkg", "mod")
}

// render returns the objects of a flavour.
func render(t *testing.T, flavour string, netpol bool) []*unstructured.Unstructured {
	t.Helper()
	y, err := manifests.Render(flavour, netpol)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(y), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string, into runtime.Object) {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == kind && (name == "" || u.GetName() == name) {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
}

// asServiceAccount is the webhook's own identity, with exactly the rendered RBAC.
func asServiceAccount(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: webhookSA,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + webhookNS, "system:authenticated"}}
	return c
}
