package workspace

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/internal/fuzzcorpus"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/internal/patchtest"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// admitsFinal is the check the pod as stored must pass, after every mutating webhook: the
// final-state policy's Go twin (the policy itself is held to it by policy_test.go and
// FuzzMutate).
func admitsFinal(pod *corev1.Pod) Result { return CheckFinalState(pod) }

// FuzzDecisions: for any pod, any workspace claim (access modes asked and bound, present or
// not) and any facts about the node holding it (Ready, cordoned, NotReady, without a Ready
// condition, gone, not looked up, tainted), the decisions never panic, and:
//   - Mutate refuses with a documented reason code and a message, or admits with a patch that
//     is add-only, applies as the API server applies it, decodes strictly as a Pod, loses
//     nothing the pod had, carries a readable record, leaves a second Mutate nothing to do,
//     and whose result admitsFinal admits (so does an admission without a patch);
//   - PlaceTentacle, on the same pod taken as a new Tentacle pod, never refuses, and its patch
//     holds to the same rules;
//   - the ScriptPod projection decides exactly as the whole pod.
//
// Seeds: every golden fixture with its own facts, and the hostile pods of hostileDecisionSeeds
// (testdata/fuzz/FuzzDecisions).
func FuzzDecisions(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/*.yaml")
	if len(inputs) == 0 {
		f.Fatal("no golden fixtures to seed from")
	}
	for _, in := range inputs {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		var fx fixture
		if err := yaml.UnmarshalStrict(b, &fx); err != nil {
			f.Fatalf("%s: %v", in, err)
		}
		podJSON, err := yaml.YAMLToJSON(fx.Pod)
		if err != nil {
			f.Fatal(err)
		}
		a := fixtureArgs(podJSON, fixtureFacts(fx))
		f.Add(a.pod, a.claim, a.specModes, a.boundModes, a.node, a.nodeState, a.taint, a.tentacles)
	}
	f.Fuzz(func(t *testing.T, podJSON []byte, claimName string, specModes, boundModes byte, node string, nodeState byte, taint string, tentacles byte) {
		pod, err := patchtest.DecodePod(podJSON)
		if err != nil {
			return // the API server never sends what it cannot decode
		}
		facts, ok := fuzzFacts(claimName, specModes, boundModes, node, nodeState, taint, tentacles)
		if !ok {
			return
		}
		canonical := patchtest.Canonical(pod)
		assertScriptPodDecidesAlike(t, canonical, pod, facts)
		checkMutate(t, pod, canonical, facts)
		checkPlaceTentacle(t, pod, canonical, facts)
	})
}

func checkMutate(t *testing.T, pod *corev1.Pod, canonical []byte, facts Facts) {
	t.Helper()
	res := Mutate(DefaultConfig(), pod, facts)
	if !slices.Contains(reason.All(), res.Code) {
		t.Fatalf("Mutate answered with undocumented reason %q: %+v", res.Code, res)
	}
	if res.Denied {
		if res.Message == "" || len(res.Patch) > 0 {
			t.Fatalf("denial without a message, or with a patch: %+v", res)
		}
		return
	}
	if len(res.Patch) == 0 {
		if v := admitsFinal(pod); v.Denied {
			t.Fatalf("Mutate admitted the pod unchanged (%s) but the final check refuses it: %s: %s\npod %s", res.Code, v.Code, v.Message, canonical)
		}
		return
	}
	again := applyChecked(t, canonical, res)
	r, ok := again.Annotations[RecordAnnotation]
	var rec Record
	if !ok || json.Unmarshal([]byte(r), &rec) != nil || rec.Claim != facts.ClaimName || rec.MountPath != DefaultConfig().MountPath ||
		claimVolumeName(again, facts.ClaimName) != rec.Volume {
		t.Fatalf("record %q does not describe claim %q in volume %q", r, facts.ClaimName, claimVolumeName(again, facts.ClaimName))
	}
	if second := Mutate(DefaultConfig(), again, facts); second.Denied || len(second.Patch) != 0 {
		t.Fatalf("not idempotent: the second Mutate gives %s %q with %d operations\npod %s", second.Code, second.Message, len(second.Patch), patchtest.Canonical(again))
	}
	if v := admitsFinal(again); v.Denied {
		t.Fatalf("the final check refuses what Mutate admitted: %s: %s\npod %s", v.Code, v.Message, patchtest.Canonical(again))
	}
}

func checkPlaceTentacle(t *testing.T, pod *corev1.Pod, canonical []byte, facts Facts) {
	t.Helper()
	res := PlaceTentacle(pod, facts)
	if res.Denied || !slices.Contains(reason.All(), res.Code) || res.Message == "" {
		t.Fatalf("PlaceTentacle must never refuse and always explain: %+v", res)
	}
	if len(res.Patch) == 0 {
		return
	}
	again := applyChecked(t, canonical, res)
	if !IsPinned(again, facts.Node) {
		t.Fatalf("PlaceTentacle patched (%s) but the pod is not pinned to %q", res.Code, facts.Node)
	}
	if second := PlaceTentacle(again, facts); len(second.Patch) != 0 {
		t.Fatalf("PlaceTentacle not idempotent: %s with %d operations", second.Code, len(second.Patch))
	}
}

// applyChecked applies the decision's patch as the API server does and returns the pod.
func applyChecked(t *testing.T, canonical []byte, res Result) *corev1.Pod {
	t.Helper()
	ops, err := json.Marshal(res.Patch)
	if err != nil {
		t.Fatal(err)
	}
	out, pod, err := patchtest.Apply(canonical, ops)
	if err != nil {
		t.Fatalf("%s: %v", res.Code, err)
	}
	if err := patchtest.Keeps(canonical, out, patchtest.Pointer("/metadata/annotations", RecordAnnotation)); err != nil {
		t.Fatalf("%s: the patch loses part of the pod: %v\npatch %s", res.Code, err, ops)
	}
	return pod
}

// Access modes by bit, for the fuzzer's claims.
var modeBits = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod}

// claimMissing in specModes: the claim is named but does not exist.
const claimMissing = 0x80

func modesOf(bits byte) []corev1.PersistentVolumeAccessMode {
	var out []corev1.PersistentVolumeAccessMode
	for i, m := range modeBits {
		if bits&(1<<i) != 0 {
			out = append(out, m)
		}
	}
	return out
}

func bitsOf(modes []corev1.PersistentVolumeAccessMode) byte {
	var b byte
	for i, m := range modeBits {
		if slices.Contains(modes, m) {
			b |= 1 << i
		}
	}
	return b
}

// Node states the fuzzer picks from (nodeState modulo their number).
const (
	stateReady byte = iota
	stateCordoned
	stateNotReady
	stateReadyUnknown
	stateNoConditions
	stateGone
	stateNotLookedUp
	nodeStates
)

// fuzzFacts builds what the facts layer could report; ok is false for names no cluster holds.
func fuzzFacts(claimName string, specModes, boundModes byte, node string, nodeState byte, taint string, tentacles byte) (Facts, bool) {
	if claimName != "" && len(validation.IsDNS1123Subdomain(claimName)) > 0 || node != "" && len(validation.IsDNS1123Subdomain(node)) > 0 {
		return Facts{}, false
	}
	f := Facts{Agent: AgentRef{Namespace: "octopus-agent-prod", Release: "prod"}, TentaclePods: int(tentacles % 4),
		ClaimName: claimName, ClaimSource: "fuzz", Node: node, NodeSource: "fuzz"}
	if f.TentaclePods > 0 {
		f.TentaclePod = "octopus-agent-tentacle-0"
	}
	if claimName != "" && specModes&claimMissing == 0 {
		f.Claim = &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: claimName, Namespace: f.Agent.Namespace},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: modesOf(specModes)}}
		if boundModes != 0 {
			f.Claim.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: modesOf(boundModes)}
		}
	}
	if node == "" {
		f.NodeSource = "no Tentacle pod is running"
		return f, true
	}
	switch nodeState % nodeStates {
	case stateGone:
		f.NodeMissing = true
		return f, true
	case stateNotLookedUp:
		return f, true
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{
		corev1.LabelHostname: node, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}}}
	switch nodeState % nodeStates {
	case stateCordoned:
		n.Spec.Unschedulable = true
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	case stateNotReady:
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady"}}
	case stateReadyUnknown:
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown"}}
	case stateNoConditions:
	default:
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	}
	if t, ok := parseTaint(taint); ok {
		n.Spec.Taints = []corev1.Taint{t}
	}
	f.NodeInfo = n
	return f, true
}

// parseTaint reads key[=value]:Effect as kubectl taint does; ok is false for anything a
// node could not carry.
func parseTaint(s string) (corev1.Taint, bool) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return corev1.Taint{}, false
	}
	key, value, _ := strings.Cut(kv, "=")
	t := corev1.Taint{Key: key, Value: value, Effect: corev1.TaintEffect(effect)}
	switch t.Effect {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		return corev1.Taint{}, false
	}
	return t, len(validation.IsQualifiedName(key)) == 0 && len(validation.IsValidLabelValue(value)) == 0
}

// decisionArgs are FuzzDecisions' arguments.
type decisionArgs struct {
	pod                   []byte
	claim                 string
	specModes, boundModes byte
	node                  string
	nodeState             byte
	taint                 string
	tentacles             byte
}

// fixtureArgs turns a golden fixture's facts into FuzzDecisions' arguments.
func fixtureArgs(podJSON []byte, f Facts) decisionArgs {
	a := decisionArgs{pod: podJSON, claim: f.ClaimName, node: f.Node, nodeState: stateNotLookedUp, tentacles: byte(f.TentaclePods)}
	if f.Claim != nil {
		a.specModes = bitsOf(f.Claim.Spec.AccessModes)
		if f.Claim.Status.Phase == corev1.ClaimBound {
			a.boundModes = bitsOf(f.Claim.Status.AccessModes)
		}
	} else if f.ClaimName != "" {
		a.specModes = claimMissing
	}
	n := f.NodeInfo
	switch {
	case f.NodeMissing:
		a.nodeState = stateGone
	case n == nil:
	case n.Spec.Unschedulable:
		a.nodeState = stateCordoned
	default:
		a.nodeState = stateNoConditions
		for _, c := range n.Status.Conditions {
			if c.Type != corev1.NodeReady {
				continue
			}
			switch c.Status {
			case corev1.ConditionTrue:
				a.nodeState = stateReady
			case corev1.ConditionFalse:
				a.nodeState = stateNotReady
			default:
				a.nodeState = stateReadyUnknown
			}
		}
	}
	if n != nil && len(n.Spec.Taints) > 0 {
		a.taint = taintString(n.Spec.Taints[0])
	}
	return a
}

// TestHostileDecisionSeeds keeps testdata/fuzz/FuzzDecisions equal to hostileDecisionSeeds
// (go test ./webhook/workspace -run TestHostileDecisionSeeds -update rewrites it).
func TestHostileDecisionSeeds(t *testing.T) {
	fuzzcorpus.Sync(t, "FuzzDecisions", *update, hostileDecisionSeeds())
}

// hostileDecisionSeeds are pods no Tentacle creates, each aimed at one way a patch could go
// wrong: escaping, indices, names taken, paths spelled differently, forged records, many
// containers and terms.
func hostileDecisionSeeds() []fuzzcorpus.Seed {
	const claim = "octopus-agent-prod-pvc"
	meta := `"metadata":{"name":"octopus-script-h","labels":{"octopus.com/scriptTicketId":"h"}}`
	script := func(mounts string) string {
		return `{"name":"script","image":"busybox","volumeMounts":[` + mounts + `]}`
	}
	home := `{"name":"tentacle-home","mountPath":"/octopus"}`
	claimVolume := `{"name":"tentacle-home","persistentVolumeClaim":{"claimName":"` + claim + `"}}`
	pod := func(metadata, spec string) []byte { return []byte(`{` + metadata + `,"spec":{` + spec + `}}`) }
	many := func(n int, item func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = item(i)
		}
		return strings.Join(parts, ",")
	}
	rwo, rwx := bitsOf([]corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}), bitsOf([]corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany})
	seed := func(name string, podJSON []byte, modes byte, state byte, taint string) fuzzcorpus.Seed {
		return fuzzcorpus.Seed{Name: name, Values: []any{podJSON, claim, modes, modes, "node-2", state, taint, byte(1)}}
	}
	return []fuzzcorpus.Seed{
		seed("annotation-keys-with-slash-and-tilde", pod(
			`"metadata":{"name":"p","labels":{"octopus.com/scriptTicketId":"h"},"annotations":{"a~b/c~1d":"x","~0":"y","/":"z","workspace-webhook.io~1workspace":"w"}}`,
			`"containers":[`+script("")+`]`), rwo, stateReady, ""),
		seed("forged-record-pinned-elsewhere", pod(
			`"metadata":{"name":"p","labels":{"octopus.com/scriptTicketId":"h"},"annotations":{"workspace-webhook.io/workspace":"{\"claim\":\"`+claim+`\",\"node\":\"node-9\",\"injected\":[\"volume\"]}"}}`,
			`"volumes":[`+claimVolume+`],"containers":[`+script(home)+`],"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["node-9"]}]}]}}}`),
			rwo, stateReady, ""),
		seed("record-not-json", pod(
			`"metadata":{"name":"p","labels":{"octopus.com/scriptTicketId":"h"},"annotations":{"workspace-webhook.io/workspace":"{{{"}}`,
			`"containers":[`+script("")+`]`), rwo, stateCordoned, ""),
		seed("300-containers", pod(meta, `"containers":[`+many(300, func(i int) string {
			return `{"name":"c` + strconv.Itoa(i) + `","image":"busybox"}`
		})+`]`), rwo, stateReady, ""),
		seed("emptydir-at-workspace-path-everywhere", pod(meta,
			`"volumes":[{"name":"scratch","emptyDir":{}}],"initContainers":[{"name":"i","image":"b","volumeMounts":[{"name":"scratch","mountPath":"/octopus/"}]}],"containers":[`+
				script(`{"name":"scratch","mountPath":"//octopus"}`)+`,`+`{"name":"s2","image":"b","volumeMounts":[{"name":"scratch","mountPath":"/octopus/."}]}]`), rwo, stateReady, ""),
		seed("tentacle-home-names-another-claim", pod(meta,
			`"volumes":[{"name":"tentacle-home","persistentVolumeClaim":{"claimName":"someone-elses-claim"}}],"containers":[`+script(home)+`]`), rwx, stateReady, ""),
		seed("both-workspace-volume-names-taken", pod(meta,
			`"volumes":[{"name":"tentacle-home","emptyDir":{}},{"name":"tentacle-workspace","emptyDir":{}}],"containers":[`+script("")+`]`), rwo, stateReady, ""),
		seed("bound-to-another-node", pod(meta, `"nodeName":"node-9","containers":[`+script("")+`]`), rwo, stateReady, ""),
		seed("bound-to-the-node-cordoned", pod(meta, `"nodeName":"node-2","containers":[`+script("")+`]`), rwo, stateCordoned, ""),
		seed("200-node-selector-terms", pod(meta, `"containers":[`+script("")+`],"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[`+
			many(200, func(i int) string {
				return `{"matchExpressions":[{"key":"k` + strconv.Itoa(i) + `","operator":"NotIn","values":["x"]}],"matchFields":[]}`
			})+`,{}]}}}`), rwo, stateReady, ""),
		seed("init-containers-only", pod(meta, `"initContainers":[{"name":"i","image":"b"}],"containers":[]`), rwo, stateReady, ""),
		seed("tolerates-everything-on-a-tainted-cordoned-node", pod(meta,
			`"containers":[`+script("")+`],"tolerations":[{"operator":"Exists"}]`), rwo, stateCordoned, "dedicated=gpu:NoExecute"),
		seed("empty-and-null-everything", []byte(`{"metadata":{"annotations":{},"labels":null},"spec":{"volumes":[],"containers":[{"name":"c","volumeMounts":[]}],"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[]}}},"tolerations":[]}}`),
			rwo, stateCordoned, ""),
		seed("notin-the-node-and-an-empty-term", pod(meta, `"containers":[`+script("")+`],"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"NotIn","values":["node-2"]}]},{}]}}}`),
			rwo, stateReady, ""),
	}
}
