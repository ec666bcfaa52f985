package workspace

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

func newTentaclePod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "octopus-agent-tentacle-7f9c8d-", Namespace: "octopus-agent-prod",
			Labels: map[string]string{"app.kubernetes.io/name": "octopus-agent", "app.kubernetes.io/instance": "prod", "helm.sh/chart": "kubernetes-agent-2.51.2"}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "tentacle-home", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "octopus-agent-prod-pvc"}}}},
			Containers: []corev1.Container{{Name: "octopus-agent-tentacle", VolumeMounts: []corev1.VolumeMount{{Name: "tentacle-home", MountPath: "/octopus"}}}},
		},
	}
}

func readyNode(name string, mod func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	if mod != nil {
		mod(n)
	}
	return n
}

// Every outcome of placing a new Tentacle pod, each with its reason code; none refuses.
func TestPlaceTentacle(t *testing.T) {
	claim := func(mode corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-prod-pvc"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{mode}}}
	}
	held := func(mod func(*Facts)) Facts {
		f := Facts{Agent: AgentRef{Namespace: "octopus-agent-prod", Release: "prod"}, ClaimName: "octopus-agent-prod-pvc",
			Claim: claim(corev1.ReadWriteOnce), Node: "node-1", NodeSource: "Tentacle pod octopus-agent-prod/old is running there",
			NodeInfo: readyNode("node-1", nil)}
		if mod != nil {
			mod(&f)
		}
		return f
	}
	cases := []struct {
		name  string
		pod   func(*corev1.Pod)
		facts Facts
		want  reason.Code
		pin   bool
	}{
		{"upgrade: old pod holds the volume on a Ready node", nil, held(nil), reason.TentaclePinned, true},
		{"old node PreferNoSchedule (autoscaler scale-down mark): still pinned", nil, held(func(f *Facts) {
			f.NodeInfo = readyNode("node-1", func(n *corev1.Node) {
				n.Spec.Taints = []corev1.Taint{{Key: "DeletionCandidateOfClusterAutoscaler", Effect: corev1.TaintEffectPreferNoSchedule}}
			})
		}), reason.TentaclePinned, true},
		{"cordoned for a drain", nil, held(func(f *Facts) { f.NodeInfo.Spec.Unschedulable = true }), reason.TentacleNodeUnusable, false},
		{"NotReady", nil, held(func(f *Facts) { f.NodeInfo.Status.Conditions[0].Status = corev1.ConditionFalse }), reason.TentacleNodeUnusable, false},
		{"gone", nil, held(func(f *Facts) { f.NodeInfo, f.NodeMissing = nil, true }), reason.TentacleNodeUnusable, false},
		{"NoExecute taint the Tentacle does not tolerate", nil, held(func(f *Facts) {
			f.NodeInfo.Spec.Taints = []corev1.Taint{{Key: "maintenance", Effect: corev1.TaintEffectNoExecute}}
		}), reason.TentacleNodeUnusable, false},
		{"fresh install: nothing holds the volume", nil, held(func(f *Facts) { f.Node, f.NodeInfo, f.NodeSource = "", nil, "no Tentacle pod mounts it" }),
			reason.TentacleFreshInstall, false},
		{"ReadWriteMany agent", nil, held(func(f *Facts) { f.Claim = claim(corev1.ReadWriteMany) }), reason.TentacleWorkspaceShared, false},
		{"claim not created yet", nil, held(func(f *Facts) { f.Claim = nil }), reason.TentacleClaimUnknown, false},
		{"own nodeSelector elsewhere", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{corev1.LabelHostname: "node-2"} }, held(nil),
			reason.TentaclePinConflict, false},
		{"already pinned there", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{PinRequirement("node-1")}}}}}}
		}, held(nil), reason.AlreadyComplete, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := newTentaclePod()
			if c.pod != nil {
				c.pod(pod)
			}
			res := PlaceTentacle(pod, c.facts)
			if res.Denied || res.Code != c.want || res.Message == "" {
				t.Fatalf("got %s denied=%v (%s), want %s", res.Code, res.Denied, res.Message, c.want)
			}
			if (len(res.Patch) > 0) != c.pin {
				t.Fatalf("patch %v, want pinned=%v", res.Patch, c.pin)
			}
			if c.pin {
				for _, op := range res.Patch {
					if op.Operation != "add" {
						t.Fatalf("non-add op %+v", op)
					}
				}
				if !strings.Contains(res.Message, `"node-1"`) {
					t.Fatalf("message does not name the node: %s", res.Message)
				}
			}
		})
	}
}
