package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
)

// The doctor command end to end against a real kube-apiserver that serves the OpenShift
// security API group (an SCC CRD stands for it): kubeconfig, -n, -o json, --fail-on and the
// exit status; an NFS agent gets Octopus's OpenShift advice; no webhook installed is an error.
func TestDoctorCommand(t *testing.T) {
	controlplane.RequireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	scc := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "securitycontextconstraints.security.openshift.io"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "security.openshift.io", Scope: apiextensionsv1.ClusterScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "securitycontextconstraints", Singular: "securitycontextconstraint", Kind: "SecurityContextConstraints"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptrTrue()}}}}}}
	cp, err := controlplane.Start(ctx, controlplane.Options{CRDInstallOptions: envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{scc}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cp.Stop() }()

	a := tentacle.Agent{Namespace: "octopus-agent-openshift", Release: "nfs", Generation: 2, Storage: tentacle.StorageNFS}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.Namespace}}))
	must(cp.Client.Create(ctx, a.Volume(a.NFSClassName())))
	must(cp.Client.Create(ctx, a.Claim()))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-tentacle-7c9d-abcde", Namespace: a.Namespace, Labels: a.TentacleLabels()},
		Spec: a.Deployment().Spec.Template.Spec}
	must(cp.Client.Create(ctx, pod))

	run := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := runDoctor(append([]string{"--kubeconfig", cp.KubeconfigPath}, args...), &out, &errOut)
		return out.String(), errOut.String(), code
	}
	out, errOut, code := run("-n", a.Namespace)
	if code != 1 || !strings.Contains(out, "in-cluster NFS") || !strings.Contains(out, "[error] agent octopus-agent-openshift/nfs: uses the chart's in-cluster NFS server on OpenShift") ||
		!strings.Contains(out, "[error] webhook: the workspace webhook's configurations are not installed") {
		t.Fatalf("exit %d, stderr %q:\n%s", code, errOut, out)
	}
	out, _, code = run("-n", a.Namespace, "-o", "json", "--fail-on", "none")
	var report struct {
		Agents []struct{ Namespace, Mode string } `json:"agents"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &report) != nil || len(report.Agents) != 1 || report.Agents[0].Mode != "in-cluster NFS" {
		t.Fatalf("json: exit %d\n%s", code, out)
	}
	if _, errOut, code := run("--fail-on", "sometimes"); code != 2 || errOut == "" {
		t.Fatalf("bad --fail-on: exit %d %q", code, errOut)
	}
	if _, errOut, code := runDoctorWith(t, "--kubeconfig", "/nonexistent/kubeconfig"); code != 1 || !strings.Contains(errOut, "kubeconfig") {
		t.Fatalf("bad kubeconfig: exit %d %q", code, errOut)
	}
}

func runDoctorWith(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runDoctor(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func ptrTrue() *bool { b := true; return &b }
