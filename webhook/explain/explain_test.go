package explain

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// fixtureFacts hands explain the facts a golden fixture states, as the webhook's Finder would.
type fixtureFacts struct{ f workspace.Facts }

func (s fixtureFacts) Facts(context.Context, *corev1.Pod) (workspace.Facts, error) { return s.f, nil }
func (s fixtureFacts) TentacleFacts(context.Context, *corev1.Pod) (workspace.Facts, error) {
	return s.f, nil
}

type fixture struct {
	Facts struct {
		Agent        workspace.AgentRef            `json:"agent"`
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

type golden struct {
	Code     string            `json:"code"`
	Denied   bool              `json:"denied"`
	Message  string            `json:"message"`
	Warnings []string          `json:"warnings,omitempty"`
	Patch    []json.RawMessage `json:"patch,omitempty"`
	Pod      json.RawMessage   `json:"pod,omitempty"`
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// explain answers every golden fixture of the webhook exactly as the webhook's golden file
// records: code, refusal, message, warnings, patch and admitted pod.
func TestExplainAgreesWithTheWebhookGoldens(t *testing.T) {
	inputs, err := filepath.Glob("../workspace/testdata/*.yaml")
	if err != nil || len(inputs) < 30 {
		t.Fatalf("fixtures: %d, %v", len(inputs), err)
	}
	for _, in := range inputs {
		t.Run(strings.TrimSuffix(filepath.Base(in), ".yaml"), func(t *testing.T) {
			var fx fixture
			readYAML(t, in, &fx)
			var want golden
			readYAML(t, in+".golden", &want)
			ff := fx.Facts
			facts := workspace.Facts{Agent: ff.Agent, TentaclePods: ff.TentaclePods, ClaimName: ff.ClaimName, ClaimSource: ff.ClaimSource,
				Claim: ff.Claim, Node: ff.Node, NodeSource: ff.NodeSource, NodeInfo: ff.NodeInfo, NodeMissing: ff.NodeMissing}
			e := &Explainer{Config: workspace.DefaultConfig(), ScriptPodLabel: "octopus.com/scriptTicketId", Facts: fixtureFacts{facts}}
			podJSON, err := yaml.YAMLToJSON(fx.Pod)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := e.Pod(context.Background(), podJSON)
			if err != nil {
				t.Fatal(err)
			}
			if string(rep.Code) != want.Code || (rep.Decision == "denied") != want.Denied || rep.Message != want.Message ||
				strings.Join(rep.Warnings, "|") != strings.Join(want.Warnings, "|") {
				t.Fatalf("explain: %s %s %q %v\ngolden:  %s denied=%v %q %v", rep.Decision, rep.Code, rep.Message, rep.Warnings, want.Code, want.Denied, want.Message, want.Warnings)
			}
			if want.Denied {
				if rep.Admitted != nil {
					t.Fatal("a refused pod has an admitted object")
				}
				return
			}
			gotPatch, _ := json.Marshal(rep.Patch)
			wantPatch, _ := json.Marshal(want.Patch)
			if !jsonEqual(t, gotPatch, wantPatch) || !jsonEqual(t, rep.Admitted, yamlJSON(t, want.Pod)) {
				t.Fatalf("patch or admitted pod differ from the golden:\n%s\n%s", gotPatch, wantPatch)
			}
			if rep.Validation == nil || rep.Validation.Decision != "allowed" {
				t.Fatalf("the admitted pod is not valid: %+v", rep.Validation)
			}
		})
	}
}

func yamlJSON(t *testing.T, y []byte) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if len(a) == 0 || string(a) == "null" {
		a = []byte("[]")
	}
	if len(b) == 0 || string(b) == "null" {
		b = []byte("[]")
	}
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}
