package workspace

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// FuzzMutate: for any pod, Mutate never panics, its patch is add-only and applies, and a
// second run on the result changes nothing. Seeds are the golden fixtures.
func FuzzMutate(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/*.yaml")
	for _, in := range inputs {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		var fx fixture
		if err := yaml.Unmarshal(b, &fx); err != nil {
			f.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(fx.Pod)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j, "node-2", "ReadWriteOnce")
	}
	f.Fuzz(func(t *testing.T, podJSON []byte, node, mode string) {
		var pod corev1.Pod
		if json.Unmarshal(podJSON, &pod) != nil || len(validation.IsDNS1123Subdomain(node)) > 0 {
			return // node names are DNS subdomains in every real cluster
		}
		claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-prod-pvc"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.PersistentVolumeAccessMode(mode)}}}
		facts := Facts{Agent: AgentRef{Namespace: "ns"}, TentaclePods: 1, ClaimName: claim.Name, Claim: claim, Node: node, NodeSource: "fuzz"}
		res := Mutate(DefaultConfig(), &pod, facts)
		assertScriptPodDecidesAlike(t, podJSON, &pod, facts)
		if res.Denied {
			if res.Code == "" || res.Message == "" {
				t.Fatalf("denial without code or message: %+v", res)
			}
			return
		}
		// Re-marshal the typed pod: the patch targets the object as the API server holds it.
		canonical, err := json.Marshal(&pod)
		if err != nil {
			t.Fatal(err)
		}
		ops, _ := json.Marshal(res.Patch)
		for _, op := range res.Patch {
			if op.Operation != "add" {
				t.Fatalf("non-add op %+v", op)
			}
		}
		p, err := jsonpatchapply.DecodePatch(ops)
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.Apply(canonical)
		if err != nil {
			t.Fatalf("patch does not apply: %v\npod %s\npatch %s", err, canonical, ops)
		}
		var again corev1.Pod
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatal(err)
		}
		if second := Mutate(DefaultConfig(), &again, facts); second.Denied || len(second.Patch) != 0 {
			t.Fatalf("not idempotent: %+v\npod %s", second.Patch, out)
		}
	})
}
