package workspace

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// Every pod Mutate admits passes the final-state check, pinned where Mutate pinned it; a pod
// Mutate never marked is not the check's business.
func TestCheckFinalStateAdmitsEveryMutatedFixture(t *testing.T) {
	for _, in := range fixtureNames(t) {
		t.Run(in, func(t *testing.T) {
			fx := readFixture(t, "testdata/"+in+".yaml")
			podJSON, pod := decodePod(t, fx.Pod)
			facts := fixtureFacts(fx)
			if got := CheckFinalState(pod); got.Code != reason.OutOfScope || got.Denied {
				t.Fatalf("unmarked pod as created: got %s (%s), want OutOfScope", got.Code, got.Message)
			}
			res := Mutate(DefaultConfig(), pod, facts)
			if res.Denied {
				return
			}
			_, admitted := decodePod(t, applyPatch(t, podJSON, res))
			got := CheckFinalState(admitted)
			if got.Denied || got.Code != reason.WorkspaceValid || got.Node != res.Node {
				t.Fatalf("final state of the admitted pod: %s node %q (%s), want WorkspaceValid node %q", got.Code, got.Node, got.Message, res.Node)
			}
		})
	}
}

// breakage is a change a mutating webhook running after ours can make to an admitted pod,
// and the final-state code it must get.
type breakage struct {
	name   string
	pod    *corev1.Pod
	change func(p *corev1.Pod)
	code   reason.Code
	words  []string
}

func finalStateBreakages(t testing.TB) []breakage {
	pinned := admittedFixture(t, "chart-v3-pod-affinity")
	shared := admittedFixture(t, "chart-v1-nfs-rwx")
	raw := admittedFixture(t, "raw-script-init-emptydir")
	return []breakage{
		{"volume replaced by an emptyDir", pinned, func(p *corev1.Pod) {
			p.Spec.Volumes[volumeIndex(p)].VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
		}, reason.WorkspaceNotMounted, []string{"no longer a PersistentVolumeClaim volume", "exclude script pods"}},
		{"volume removed", shared, func(p *corev1.Pod) {
			i := volumeIndex(p)
			p.Spec.Volumes = append(p.Spec.Volumes[:i], p.Spec.Volumes[i+1:]...)
		}, reason.WorkspaceNotMounted, []string{"no longer a PersistentVolumeClaim volume"}},
		{"every mount removed", pinned, func(p *corev1.Pod) {
			for i := range p.Spec.Containers {
				p.Spec.Containers[i].VolumeMounts = nil
			}
		}, reason.WorkspaceNotMounted, []string{"no container mounts its workspace volume"}},
		{"sidecar and init container added without the mount", pinned, func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "istio-proxy"})
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "istio-init", VolumeMounts: []corev1.VolumeMount{{Name: "x", MountPath: "/octopus/work"}}})
		}, reason.WorkspaceNotMounted, []string{"containers istio-init, istio-proxy do not mount", `have it mount "tentacle-home" at /octopus`}},
		{"five sidecars added without the mount", shared, func(p *corev1.Pod) {
			for _, n := range []string{"a", "b", "c", "d", "e"} {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "sidecar-" + n})
			}
		}, reason.WorkspaceNotMounted, []string{"containers sidecar-a, sidecar-b, sidecar-c and 2 more do not mount"}},
		{"a node term ORed in without the pin", pinned, func(p *corev1.Pod) {
			ns := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
			ns.NodeSelectorTerms = append(ns.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "pool", Operator: corev1.NodeSelectorOpExists}}})
		}, reason.WorkspaceNotPinned, []string{`held by node "node-2"`, "metadata.name In [node-2]", "Multi-Attach"}},
		{"node affinity dropped", pinned, func(p *corev1.Pod) { p.Spec.Affinity.NodeAffinity = nil }, reason.WorkspaceNotPinned, []string{"no longer pinned"}},
		{"bound to another node", pinned, func(p *corev1.Pod) { p.Spec.NodeName = "node-9" }, reason.WorkspaceNotPinned, []string{"no longer pinned"}},
		{"pin widened to two nodes", pinned, func(p *corev1.Pod) {
			r := &p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0]
			for i := range r.MatchFields {
				r.MatchFields[i].Values = append(r.MatchFields[i].Values, "node-9")
			}
		}, reason.WorkspaceNotPinned, []string{"no longer pinned"}},
		{"generated name", pinned, func(p *corev1.Pod) {
			p.Name, p.GenerateName = "", "octopus-script-"
			p.Spec.Affinity.NodeAffinity = nil
		}, reason.WorkspaceNotPinned, []string{"script pod octopus-script-*:"}},
		// Not breakages: what later webhooks may do.
		{"bound to the pinned node", pinned, func(p *corev1.Pod) { p.Spec.NodeName = "node-2" }, reason.WorkspaceValid, nil},
		{"an empty term added (matches nothing)", pinned, func(p *corev1.Pod) {
			ns := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
			ns.NodeSelectorTerms = append(ns.NodeSelectorTerms, corev1.NodeSelectorTerm{})
		}, reason.WorkspaceValid, nil},
		{"shared workspace with new node terms", shared, func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{"pool": "scripts"}
			p.Spec.Affinity = nil
		}, reason.WorkspaceValid, nil},
		{"sidecar with the workspace path taken, trailing slash", raw, func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "log-shipper", VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/octopus//"}}})
		}, reason.WorkspaceValid, nil},
		{"sidecar mounting the workspace volume elsewhere", shared, func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "reader", VolumeMounts: []corev1.VolumeMount{{Name: p.Annotations[VolumeMark], MountPath: "/data"}}})
		}, reason.WorkspaceValid, nil},
		{"node mark blanked by the webhook for a shared workspace", shared, func(p *corev1.Pod) {
			p.Annotations[NodeMark] = ""
		}, reason.WorkspaceValid, nil},
	}
}

// What a mutating webhook running after ours can break, each refused with the code and a
// message naming the pod, what is wrong and what to do.
func TestCheckFinalStateRefusesWhatLaterWebhooksBreak(t *testing.T) {
	for _, tc := range finalStateBreakages(t) {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pod.DeepCopy()
			tc.change(p)
			got := CheckFinalState(p)
			if got.Code != tc.code || got.Denied != (tc.code != reason.WorkspaceValid) {
				t.Fatalf("got %s denied=%v (%s), want %s", got.Code, got.Denied, got.Message, tc.code)
			}
			for _, w := range append(tc.words, p.Name) {
				if got.Denied && !strings.Contains(got.Message, w) {
					t.Fatalf("message lacks %q: %s", w, got.Message)
				}
			}
		})
	}
}

// admittedFixture is a golden fixture's pod as Mutate admitted it.
func admittedFixture(t testing.TB, name string) *corev1.Pod {
	t.Helper()
	fx := readFixture(t, "testdata/"+name+".yaml")
	podJSON, pod := decodePod(t, fx.Pod)
	res := Mutate(DefaultConfig(), pod, fixtureFacts(fx))
	if res.Denied {
		t.Fatalf("%s: %s", name, res.Message)
	}
	_, admitted := decodePod(t, applyPatch(t, podJSON, res))
	return admitted
}

func volumeIndex(p *corev1.Pod) int {
	for i, v := range p.Spec.Volumes {
		if v.Name == p.Annotations[VolumeMark] {
			return i
		}
	}
	return -1
}

// A Tentacle that moves between the mutating call and its reinvocation gives one explained
// refusal (WorkspaceMoved, both nodes named), never a self-contradiction such as "can never
// run there" about a pin the webhook itself added.
func TestVolumeMovedBetweenInvocations(t *testing.T) {
	fx := readFixture(t, "testdata/chart-v2-rwo-os-arch-affinity.yaml")
	podJSON, pod := decodePod(t, fx.Pod)
	before := fixtureFacts(fx)
	before.Node = "node-1"
	res := Mutate(DefaultConfig(), pod, before)
	if res.Denied || res.Node != "node-1" {
		t.Fatalf("first invocation: %+v", res)
	}
	_, admitted := decodePod(t, applyPatch(t, podJSON, res))
	moved := before
	moved.Node, moved.NodeSource = "node-2", "Tentacle pod octopus-agent-prod/octopus-agent-tentacle-new is running there"
	got := Mutate(DefaultConfig(), admitted, moved)
	if !got.Denied || got.Code != reason.WorkspaceMoved {
		t.Fatalf("reinvocation: got %s (%s), want WorkspaceMoved", got.Code, got.Message)
	}
	for _, want := range []string{`"node-1"`, `"node-2"`, "create it again"} {
		if !strings.Contains(got.Message, want) {
			t.Fatalf("message lacks %s: %s", want, got.Message)
		}
	}
	if again := Mutate(DefaultConfig(), admitted, before); again.Denied || len(again.Patch) != 0 {
		t.Fatalf("reinvocation with unchanged facts: %+v", again)
	}
}
