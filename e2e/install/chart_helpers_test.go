package install

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/helm"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
)

// chartRelease is the release name the tests install the chart as.
const chartRelease = "workspace-webhook"

func chartDir(t *testing.T) string {
	t.Helper()
	dir, err := manifests.Dir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "chart", "workspace-webhook")
}

// chartCase is one way to install the chart: a release namespace and helm's value flags.
type chartCase struct {
	name      string
	namespace string
	flags     []string // --set ..., --set-json ...
}

// chartCases are the value sets the chart tests render, lint and dry-run: each certificate
// mode, every optional object, non-default values, and a namespace of the admin's choosing.
var chartCases = []chartCase{
	{name: "defaults", namespace: webhookNS},
	{name: "self-managed", namespace: webhookNS, flags: []string{"--set", "certificates.mode=self-managed"}},
	{name: "service-ca", namespace: webhookNS, flags: []string{"--set", "certificates.mode=service-ca"}},
	{name: "own-issuer", namespace: webhookNS, flags: []string{"--set", "certificates.certManager.issuerRef.name=corp-ca,certificates.certManager.issuerRef.kind=ClusterIssuer"}},
	{name: "every-option", namespace: webhookNS, flags: []string{
		"--set", "networkPolicy.enabled=true,networkPolicy.apiServerPorts={443,6443,8443}",
		"--set", "serviceMonitor.enabled=true,serviceMonitor.labels.release=prometheus,serviceMonitor.interval=1m",
		"--set", "excludedNamespaces={team-a,team-b},failurePolicy.scriptPods=Ignore,failurePolicy.claims=Fail,failurePolicy.tentaclePods=Fail",
		"--set", "replicas=3,resources.requests.cpu=100m,logLevel=debug,enforcement=warn",
		"--set", "image.repository=registry.example.com/octopus/workspace-webhook,image.digest=sha256:" + strings.Repeat("ab", 32) + ",image.pullPolicy=Always",
		"--set", "imagePullSecrets[0].name=regcred",
		"--set-json", `capabilityOverrides="overrides:\n  - provisioner: \"*.cephfs.csi.ceph.com\"\n    readWriteMany: {filesystem: true}\n    reason: ours\n"`,
	}},
	{name: "other-namespace", namespace: "platform-webhooks", flags: []string{"--set", "certificates.mode=self-managed,networkPolicy.enabled=true,serviceMonitor.enabled=true"}},
}

// helmTemplate runs helm template for the chart and returns helm's output, or its error.
func helmTemplate(t *testing.T, namespace string, flags ...string) ([]byte, error) {
	t.Helper()
	bin := helm.Require(t)
	args := append([]string{"template", chartRelease, chartDir(t), "--namespace", namespace}, flags...)
	return helm.Run(bin, args...)
}

// renderChart returns the objects helm template renders.
func renderChart(t *testing.T, namespace string, flags ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helmTemplate(t, namespace, flags...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeObjects(t, out)
}

// objectKey names an object in the diffs: kind and name (both unique in every rendering; the
// namespace is left out so that a rendering into another namespace still lines up).
func objectKey(o *unstructured.Unstructured) string { return o.GetKind() + "/" + o.GetName() }

// flatten maps every leaf of every object to its JSON value, keyed "Kind/name:path.to[0].leaf";
// an empty map or list is a leaf of its own.
func flatten(t *testing.T, objs []*unstructured.Unstructured) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, o := range objs {
		k := objectKey(o)
		if _, dup := out[k]; dup {
			t.Fatalf("%s rendered twice", k)
		}
		out[k] = map[string]string{}
		flattenInto(k+":", o.Object, out[k])
	}
	return out
}

func flattenInto(path string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			out[path] = "{}"
		}
		sep := "."
		if strings.HasSuffix(path, ":") {
			sep = ""
		}
		for k, e := range x {
			flattenInto(path+sep+k, e, out)
		}
	case []any:
		if len(x) == 0 {
			out[path] = "[]"
		}
		for i, e := range x {
			flattenInto(fmt.Sprintf("%s[%d]", path, i), e, out)
		}
	default:
		b, err := json.Marshal(x)
		if err != nil {
			b = []byte(fmt.Sprintf("%#v", x))
		}
		out[path] = string(b)
	}
}

// objectDiff lists what differs from a to b: "-Kind/name" for an object only a has,
// "+Kind/name" for one only b has, and the path of every leaf that differs in objects both
// have, sorted.
func objectDiff(t *testing.T, a, b []*unstructured.Unstructured) []string {
	t.Helper()
	fa, fb := flatten(t, a), flatten(t, b)
	var out []string
	for k, la := range fa {
		lb, ok := fb[k]
		if !ok {
			out = append(out, "-"+k)
			continue
		}
		for p, v := range la {
			if w, ok := lb[p]; !ok || w != v {
				out = append(out, p)
			}
		}
		for p := range lb {
			if _, ok := la[p]; !ok {
				out = append(out, p)
			}
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, "+"+k)
		}
	}
	sort.Strings(out)
	return out
}

// leafValue is the JSON value of one leaf of objs ("" when absent).
func leafValue(t *testing.T, objs []*unstructured.Unstructured, path string) string {
	t.Helper()
	key, _, _ := strings.Cut(path, ":")
	return flatten(t, objs)[key][path]
}
