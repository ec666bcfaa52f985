package workspace

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// fixture is one testdata/*.yaml case: a pod exactly as Tentacle (or a user) creates it, and
// the facts the cluster would give about its agent.
type fixture struct {
	Facts struct {
		Agent        AgentRef                      `json:"agent"`
		TentaclePods int                           `json:"tentaclePods"`
		ClaimName    string                        `json:"claimName"`
		ClaimSource  string                        `json:"claimSource"`
		Claim        *corev1.PersistentVolumeClaim `json:"claim"`
		Node         string                        `json:"node"`
		NodeSource   string                        `json:"nodeSource"`
		NodeInfo     *corev1.Node                  `json:"nodeInfo,omitempty"`
		NodeMissing  bool                          `json:"nodeMissing,omitempty"`
	} `json:"facts"`
	Pod json.RawMessage `json:"pod"`
}

// golden is what testdata/*.yaml.golden records: the decision, the patch, the admitted pod.
type golden struct {
	Code     string            `json:"code"`
	Denied   bool              `json:"denied"`
	Message  string            `json:"message"`
	Warnings []string          `json:"warnings,omitempty"`
	Patch    []json.RawMessage `json:"patch,omitempty"`
	Pod      json.RawMessage   `json:"pod,omitempty"`
}

func TestGoldenFixtures(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no fixtures found: %v", err)
	}
	used := map[string]bool{}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		used[in+".golden"] = true
		t.Run(name, func(t *testing.T) {
			fx := readFixture(t, in)
			podJSON, pod := decodePod(t, fx.Pod)
			facts := fixtureFacts(fx)

			res := Mutate(DefaultConfig(), pod, facts)
			assertScriptPodDecidesAlike(t, podJSON, pod, facts)
			if !slices.Contains(reason.All(), res.Code) {
				t.Fatalf("decision carries undocumented reason code %q", res.Code)
			}
			got := golden{Code: string(res.Code), Denied: res.Denied, Message: res.Message, Warnings: res.Warnings}
			var patched []byte
			if !res.Denied {
				assertAddOnly(t, res)
				patched = applyPatch(t, podJSON, res)
				got.Patch = marshalOps(t, res)
				got.Pod = patched
			}
			compareGolden(t, in+".golden", got)

			if res.Denied {
				return
			}
			// Reinvocation on the admitted pod must change nothing.
			_, again := decodePod(t, patched)
			assertScriptPodDecidesAlike(t, patched, again, facts)
			second := Mutate(DefaultConfig(), again, facts)
			if second.Denied || len(second.Patch) != 0 {
				t.Fatalf("second invocation not idempotent: denied=%v patch=%s", second.Denied, marshalOps(t, second))
			}
			assertWorkspaceState(t, again, facts, res)
		})
	}
	goldens, _ := filepath.Glob("testdata/*.golden")
	for _, g := range goldens {
		if !used[g] {
			t.Errorf("golden file %s has no fixture; delete it", g)
		}
	}
}

// assertWorkspaceState checks the admitted pod against the invariants, independently of the golden.
func assertWorkspaceState(t *testing.T, pod *corev1.Pod, f Facts, res Result) {
	t.Helper()
	volume := claimVolumeName(pod, f.ClaimName)
	if volume == "" {
		t.Fatalf("admitted pod does not reference claim %q", f.ClaimName)
	}
	seen := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		if seen[v.Name] {
			t.Fatalf("duplicate volume %q", v.Name)
		}
		seen[v.Name] = true
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			paths := map[string]bool{}
			for _, m := range c.VolumeMounts {
				if paths[m.MountPath] {
					t.Fatalf("container %q mounts %s twice", c.Name, m.MountPath)
				}
				paths[m.MountPath] = true
				if !seen[m.Name] {
					t.Fatalf("container %q mounts unknown volume %q", c.Name, m.Name)
				}
			}
		}
	}
	if res.Mode == ModePin && !IsPinned(pod, f.Node) {
		t.Fatalf("RWO pod not pinned to %q", f.Node)
	}
	if res.Mode == ModeShare {
		// Only the pod's own terms may remain; none of them may pin by name.
		for _, term := range requiredTerms(pod) {
			for _, r := range term.MatchFields {
				if r.Key == NodeNameField {
					t.Fatalf("RWX pod pinned by name: %+v", r)
				}
			}
		}
	}
}

func fixtureFacts(fx fixture) Facts {
	return Facts{Agent: fx.Facts.Agent, TentaclePods: fx.Facts.TentaclePods, ClaimName: fx.Facts.ClaimName,
		ClaimSource: fx.Facts.ClaimSource, Claim: fx.Facts.Claim, Node: fx.Facts.Node, NodeSource: fx.Facts.NodeSource,
		NodeInfo: fx.Facts.NodeInfo, NodeMissing: fx.Facts.NodeMissing}
}

func fixtureNames(t *testing.T) []string {
	t.Helper()
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no fixtures found: %v", err)
	}
	names := make([]string, len(inputs))
	for i, in := range inputs {
		names[i] = strings.TrimSuffix(filepath.Base(in), ".yaml")
	}
	return names
}

func assertAddOnly(t *testing.T, res Result) {
	t.Helper()
	for _, op := range res.Patch {
		if op.Operation != "add" {
			t.Fatalf("non-add operation %q at %s", op.Operation, op.Path)
		}
	}
}

func readFixture(t testing.TB, path string) fixture {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	if err := yaml.UnmarshalStrict(b, &fx); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return fx
}

func decodePod(t testing.TB, raw []byte) ([]byte, *corev1.Pod) {
	t.Helper()
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(j, &pod); err != nil {
		t.Fatal(err)
	}
	return j, &pod
}

func applyPatch(t testing.TB, podJSON []byte, res Result) []byte {
	t.Helper()
	ops, err := json.Marshal(res.Patch)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatchapply.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(podJSON)
	if err != nil {
		t.Fatalf("patch does not apply: %v\n%s", err, ops)
	}
	return out
}

func marshalOps(t *testing.T, res Result) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	for _, op := range res.Patch {
		b, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func compareGolden(t *testing.T, path string, got golden) {
	t.Helper()
	j, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, y, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden %s (run go test ./webhook/workspace -update): %v", path, err)
	}
	if string(want) != string(y) {
		t.Fatalf("%s differs from the output (run with -update and review the diff):\n--- got ---\n%s", path, y)
	}
}
