// Package install proves the manifests: they render, the API server accepts them (with
// cert-manager's CRDs), the Deployment passes Pod Security "restricted", and the RBAC they
// grant is enough for the webhook and no more.
package install

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

const webhookNS = "octopus-workspace-webhook"

func start(t *testing.T, o controlplane.Options) *controlplane.ControlPlane {
	t.Helper()
	controlplane.RequireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	return cp
}

// certManagerModule is the cert-manager module of go.mod: its deploy/crds hold the CRDs the
// released chart templates from (plain YAML, no Helm templating, in this version).
const certManagerModule = "github.com/cert-manager/cert-manager"

// certManagerCRDs returns the directory of cert-manager's CRDs, downloading the module (the Go
// module proxy, at the go.mod version) when it is not in the module cache yet.
func certManagerCRDs(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", certManagerModule).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s%s", err, ee.Stderr, out)
		}
		t.Fatalf("go mod download %s: %v", certManagerModule, err)
	}
	var mod struct{ Dir, Version, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Error != "" || mod.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", certManagerModule, err, mod.Error)
	}
	dir := filepath.Join(mod.Dir, "deploy", "crds")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Later versions may template these files as the chart does; envtest would then fail
		// with a YAML error far from the cause.
		if bytes.Contains(b, []byte("{{")) {
			t.Fatalf("%s (cert-manager %s) is a Helm template; render it before installing", f, mod.Version)
		}
	}
	t.Logf("cert-manager %s CRDs from %s", mod.Version, dir)
	return dir
}

// render returns the objects of a flavour.
func render(t *testing.T, flavour string, netpol bool) []*unstructured.Unstructured {
	t.Helper()
	y, err := manifests.Render(flavour, netpol)
	if err != nil {
		t.Fatal(err)
	}
	return decodeObjects(t, y)
}

// renderWith returns the objects of a flavour with optional components (manifests.*Component).
func renderWith(t *testing.T, flavour string, components ...string) []*unstructured.Unstructured {
	t.Helper()
	y, err := manifests.RenderWith(flavour, components...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeObjects(t, y)
}

// decodeObjects parses a multi-document YAML stream (kustomize's or helm's output).
func decodeObjects(t *testing.T, y []byte) []*unstructured.Unstructured {
	t.Helper()
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
func asServiceAccount(cfg *rest.Config) *rest.Config { return asIdentity(cfg, "workspace-webhook") }

// equalJSON compares two values by their JSON form (nil and empty selectors alike only when
// they marshal alike).
func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	must(t, err)
	jb, err := json.Marshal(b)
	must(t, err)
	return string(ja) == string(jb)
}

// parseArgs parses container arguments with the flags the binary binds (cmd/workspace-webhook:
// the webhook's options, then zap's), so an argument it would reject fails here.
func parseArgs(args []string, namespace string) (app.Options, error) {
	opts := app.DefaultOptions()
	opts.Namespace = namespace // POD_NAMESPACE, from the downward API
	fs := flag.NewFlagSet("workspace-webhook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	opts.BindFlags(fs)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 { // the flag package stops at the first non-flag: the rest would be ignored
		return opts, fmt.Errorf("arguments the binary would not parse as flags: %v", fs.Args())
	}
	return opts, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	webhookprocess.RemoveBuilt() // the binary the least-privilege runs started
	os.Exit(code)
}
