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

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// FuzzMutate: for any pod and node state, Mutate never panics, its patch is add-only and
// applies, a second run on the result changes nothing, and the final-state check admits
// the result, as does the shipped ValidatingAdmissionPolicy run by the API server's CEL.
// Seeds are the golden fixtures, plus node terms that can never match the pinned node.
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
		f.Add(j, "node-2", "ReadWriteOnce", false, "eu-west-1a")
		f.Add(j, "node-2", "ReadWriteOnce", true, "eu-west-1b")
	}
	for _, terms := range []string{
		// a term for another node by name, ORed with one that matches
		`[{"matchFields":[{"key":"metadata.name","operator":"In","values":["node-9"]}]},{"matchExpressions":[{"key":"kubernetes.io/os","operator":"In","values":["linux"]}]}]`,
		// a hostname term elsewhere, and a term already pinned but excluded by a label
		`[{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"In","values":["node-9"]}]},{"matchExpressions":[{"key":"topology.kubernetes.io/zone","operator":"In","values":["eu-west-1a"]}],"matchFields":[{"key":"metadata.name","operator":"In","values":["node-2"]}]}]`,
		// every term elsewhere (refused), and NotIn the node
		`[{"matchFields":[{"key":"metadata.name","operator":"NotIn","values":["node-2"]}]}]`,
		`[{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"In","values":["node-2","node-9"]}]},{"matchExpressions":[]}]`,
	} {
		pod := `{"metadata":{"name":"octopus-script-x","labels":{"octopus.com/scriptTicketId":"x"}},"spec":{"volumes":[{"name":"tentacle-home","persistentVolumeClaim":{"claimName":"octopus-agent-prod-pvc"}}],` +
			`"containers":[{"name":"octopus-script-x","volumeMounts":[{"name":"tentacle-home","mountPath":"/octopus"}]}],"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":` + terms + `}}}}}`
		f.Add([]byte(pod), "node-2", "ReadWriteOnce", false, "eu-west-1a")
		f.Add([]byte(pod), "node-2", "ReadWriteOnce", true, "eu-west-1c")
	}
	policy := compileShippedPolicy(f)
	f.Fuzz(func(t *testing.T, podJSON []byte, node, mode string, cordoned bool, zone string) {
		var pod corev1.Pod
		if json.Unmarshal(podJSON, &pod) != nil || len(validation.IsDNS1123Subdomain(node)) > 0 || len(validation.IsValidLabelValue(zone)) > 0 {
			return // node names are DNS subdomains and label values are valid in every real cluster
		}
		claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-prod-pvc"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.PersistentVolumeAccessMode(mode)}}}
		info := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{
			corev1.LabelHostname: node, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64", corev1.LabelTopologyZone: zone}},
			Spec:   corev1.NodeSpec{Unschedulable: cordoned},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
		facts := Facts{Agent: AgentRef{Namespace: "ns"}, TentaclePods: 1, ClaimName: claim.Name, Claim: claim, Node: node, NodeSource: "fuzz", NodeInfo: info}
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
			t.Fatalf("not idempotent: %+v (%s)\npod %s", second.Patch, second.Message, out)
		}
		if v := CheckFinalState(&again); v.Denied || v.Code != reason.WorkspaceValid {
			t.Fatalf("the final-state check refuses what Mutate admitted: %s %s\npod %s", v.Code, v.Message, out)
		}
		assertPolicyAgrees(t, policy, &again)
	})
}

// FuzzFinalState: on any pod with any marks, the shipped ValidatingAdmissionPolicy (the API
// server's CEL) and CheckFinalState agree on scope, verdict, message and reason code, and
// neither fails to evaluate. Seeds: every golden fixture as admitted, and as later webhooks
// break it.
func FuzzFinalState(f *testing.F) {
	for _, name := range []string{"chart-v3-pod-affinity", "chart-v1-nfs-rwx", "raw-script-init-emptydir", "bound-by-nodename", "extra-sidecars"} {
		j, err := json.Marshal(admittedFixture(f, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j)
	}
	for _, b := range finalStateBreakages(f) {
		p := b.pod.DeepCopy()
		b.change(p)
		j, err := json.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j)
	}
	policy := compileShippedPolicy(f)
	f.Fuzz(func(t *testing.T, podJSON []byte) {
		var pod corev1.Pod
		if json.Unmarshal(podJSON, &pod) != nil || len(pod.Spec.Containers) == 0 {
			return // the API server requires a container before admission ever runs
		}
		assertPolicyAgrees(t, policy, &pod)
	})
}
