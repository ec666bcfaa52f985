package agent

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const claim = "octopus-agent-prod-pvc"

func tentacle(name, node string, phase corev1.PodPhase, age time.Duration) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "octopus-agent-prod",
			CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(-age))},
		Spec: corev1.PodSpec{NodeName: node,
			Volumes: []corev1.Volume{{Name: "tentacle-home", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
			Containers: []corev1.Container{{Name: "octopus-agent-tentacle",
				VolumeMounts: []corev1.VolumeMount{{Name: "tentacle-home", MountPath: "/octopus"}}}}},
		Status: corev1.PodStatus{Phase: phase},
	}
}

func TestNodeOfRunningTentacle(t *testing.T) {
	now := metav1.Now()
	terminating := tentacle("old", "node-1", corev1.PodRunning, time.Hour)
	terminating.DeletionTimestamp = &now
	cases := []struct {
		name     string
		pods     []corev1.Pod
		wantNode string
	}{
		{"one running", []corev1.Pod{tentacle("a", "node-2", corev1.PodRunning, 0)}, "node-2"},
		{"rollout: new pod pending elsewhere, old one running", []corev1.Pod{
			tentacle("new", "node-3", corev1.PodPending, 0), tentacle("old", "node-1", corev1.PodRunning, time.Hour)}, "node-1"},
		{"rollout: old one terminating, new one running", []corev1.Pod{
			terminating, tentacle("new", "node-3", corev1.PodRunning, 0)}, "node-3"},
		{"two running: the oldest holds the attachment", []corev1.Pod{
			tentacle("b", "node-3", corev1.PodRunning, time.Minute), tentacle("a", "node-1", corev1.PodRunning, time.Hour)}, "node-1"},
		{"not scheduled", []corev1.Pod{tentacle("a", "", corev1.PodPending, 0)}, ""},
		{"only terminating", []corev1.Pod{terminating}, ""},
		{"none", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			node, src := NodeOfRunningTentacle(c.pods, claim)
			if node != c.wantNode {
				t.Fatalf("node = %q (%s), want %q", node, src, c.wantNode)
			}
			if node != "" && !strings.Contains(src, "is running there") {
				t.Fatalf("source does not explain the node: %q", src)
			}
		})
	}
}

func TestNodeOfRunningTentacleIgnoresOtherClaims(t *testing.T) {
	p := tentacle("a", "node-2", corev1.PodRunning, 0)
	if node, _ := NodeOfRunningTentacle([]corev1.Pod{p}, "another-claim"); node != "" {
		t.Fatalf("pinned to the node of a Tentacle that does not mount the claim: %q", node)
	}
}

func TestNodeOfAttachment(t *testing.T) {
	pv := "pvc-123"
	other := "pvc-999"
	now := metav1.Now()
	vas := []storagev1.VolumeAttachment{
		{ObjectMeta: metav1.ObjectMeta{Name: "csi-detaching", DeletionTimestamp: &now}, Spec: storagev1.VolumeAttachmentSpec{NodeName: "node-9", Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv}}, Status: storagev1.VolumeAttachmentStatus{Attached: true}},
		{ObjectMeta: metav1.ObjectMeta{Name: "csi-other"}, Spec: storagev1.VolumeAttachmentSpec{NodeName: "node-8", Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &other}}, Status: storagev1.VolumeAttachmentStatus{Attached: true}},
		{ObjectMeta: metav1.ObjectMeta{Name: "csi-attaching"}, Spec: storagev1.VolumeAttachmentSpec{NodeName: "node-7", Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "csi-attached"}, Spec: storagev1.VolumeAttachmentSpec{NodeName: "node-2", Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv}}, Status: storagev1.VolumeAttachmentStatus{Attached: true}},
	}
	node, src := nodeOfAttachment(vas, pv)
	if node != "node-2" || !strings.Contains(src, "csi-attached") {
		t.Fatalf("got %q (%s), want node-2 from csi-attached", node, src)
	}
	if node, _ := nodeOfAttachment(vas[:3], pv); node != "" {
		t.Fatalf("unattached or deleting attachments must not pin, got %q", node)
	}
}

func TestTentacleClaim(t *testing.T) {
	byMount := tentacle("a", "node-1", corev1.PodRunning, 0)
	if c, src := tentacleClaim(&byMount, "/octopus"); c != claim || !strings.Contains(src, "volume tentacle-home") {
		t.Fatalf("by mount: %q %q", c, src)
	}
	byEnv := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "tentacle", Env: []corev1.EnvVar{{Name: ClaimNameEnv, Value: "from-env"}}}}}}
	if c, src := tentacleClaim(&byEnv, "/octopus"); c != "from-env" || !strings.Contains(src, ClaimNameEnv) {
		t.Fatalf("by env: %q %q", c, src)
	}
	none := corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "tentacle"}}}}
	if c, _ := tentacleClaim(&none, "/octopus"); c != "" {
		t.Fatalf("no claim expected, got %q", c)
	}
}

func TestScriptPodClaim(t *testing.T) {
	pvcVol := func(name, claim string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}
	}
	rawScript := corev1.Pod{Spec: corev1.PodSpec{
		Volumes:        []corev1.Volume{{Name: "tentacle-home", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}, pvcVol("init-nfs-volume", claim)},
		InitContainers: []corev1.Container{{Name: "init", VolumeMounts: []corev1.VolumeMount{{Name: "init-nfs-volume", MountPath: "/nfs-mount"}, {Name: "tentacle-home", MountPath: "/octopus"}}}},
		Containers:     []corev1.Container{{Name: "script", VolumeMounts: []corev1.VolumeMount{{Name: "tentacle-home", MountPath: "/octopus"}}}}}}
	userVolumes := corev1.Pod{Spec: corev1.PodSpec{
		Volumes:    []corev1.Volume{pvcVol("cache", "user-cache"), pvcVol("tentacle-home", claim)},
		Containers: []corev1.Container{{Name: "script", VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}}}}}}
	mountedAtWorkspace := corev1.Pod{Spec: corev1.PodSpec{
		Volumes:    []corev1.Volume{pvcVol("data", "custom-claim")},
		Containers: []corev1.Container{{Name: "script", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/octopus/"}}}}}}
	cases := []struct {
		name  string
		pod   corev1.Pod
		known map[string]bool
		want  string
	}{
		{"raw-script pod names the claim init-nfs-volume", rawScript, map[string]bool{claim: true}, claim},
		{"raw-script pod, agent unknown", rawScript, nil, claim},
		{"the agent's claim wins over a user claim", userVolumes, map[string]bool{claim: true}, claim},
		{"claim mounted at the workspace path", mountedAtWorkspace, nil, "custom-claim"},
		{"no claim", corev1.Pod{}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, _ := scriptPodClaim(&c.pod, c.known, "/octopus"); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestOnlyClaimRefusesToGuessBetweenAgents(t *testing.T) {
	c, src := onlyClaim(map[string]string{"a-pvc": "x", "b-pvc": "y"}, []corev1.Pod{{}}, "/octopus")
	if c != "" || !strings.Contains(src, "a-pvc, b-pvc") {
		t.Fatalf("got %q %q", c, src)
	}
}

func TestTrimTentaclePodKeepsWhatFinderReads(t *testing.T) {
	p := tentacle("a", "node-1", corev1.PodRunning, 0)
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "SECRET", Value: "x"}, {Name: ClaimNameEnv, Value: claim}}
	p.Spec.Containers[0].Image = "octopusdeploy/kubernetes-agent-tentacle:9.1"
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	out, err := trimTentaclePod(&p)
	if err != nil {
		t.Fatal(err)
	}
	tp := out.(*corev1.Pod)
	if tp.Spec.Containers[0].Image != "" || len(tp.ManagedFields) != 0 || len(tp.Spec.Containers[0].Env) != 1 {
		t.Fatalf("trim kept too much: %+v", tp.Spec.Containers[0])
	}
	if c, _ := tentacleClaim(tp, "/octopus"); c != claim {
		t.Fatal("trimmed pod lost its claim")
	}
	if n, _ := NodeOfRunningTentacle([]corev1.Pod{*tp}, claim); n != "node-1" {
		t.Fatal("trimmed pod lost its node or phase")
	}
}

// Which pods of an agent's release are its Tentacle, every chart generation.
func TestIsTentacle(t *testing.T) {
	labels := func(extra ...string) map[string]string {
		l := map[string]string{ChartNameLabel: ChartName, InstanceLabel: "prod", ChartLabel: "kubernetes-agent-2.51.2"}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	v2 := tentacle("octopus-agent-tentacle-5d8f-abcde", "node-1", corev1.PodRunning, 0)
	v2.Labels = labels()
	v3 := v2
	v3.Labels = labels(ComponentLabel, TentacleValue)
	envOnly := v2
	envOnly.Spec.Containers = []corev1.Container{{Name: "octopus-agent-tentacle", Env: []corev1.EnvVar{{Name: ClaimNameEnv, Value: claim}}}}
	envOnly.Spec.Volumes = nil
	hook := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-tentacle-pre", Labels: labels()},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "temp-dir", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Containers: []corev1.Container{{Name: "octopus-agent-tentacle", VolumeMounts: []corev1.VolumeMount{{Name: "temp-dir", MountPath: "/octopus"}}}}}}
	nfsServer := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-nfs-0", Labels: map[string]string{ChartNameLabel: "octopus-agent-nfs"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nfs-server"}}}}
	script := v2
	script.Labels = labels(ScriptTicketLabel, "abc")
	for name, c := range map[string]struct {
		pod  corev1.Pod
		want bool
	}{
		"chart v1/v2 Tentacle (no component label, mounts its claim)": {v2, true},
		"chart v3 Tentacle":                         {v3, true},
		"claim named in env, no claim volume":       {envOnly, false},
		"pre-install hook pod (emptyDir, no claim)": {hook, false},
		"NFS server pod":                            {nfsServer, false},
		"script pod mounting the claim at /octopus": {script, false},
	} {
		if got := IsTentacle(&c.pod, "/octopus"); got != c.want {
			t.Errorf("%s: IsTentacle = %v, want %v", name, got, c.want)
		}
	}
}
