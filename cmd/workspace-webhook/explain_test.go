package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const scriptPodYAML = `apiVersion: v1
kind: Pod
metadata:
  name: octopus-script-0f3a
  namespace: octopus-agent-prod
  labels: {octopus.com/scriptTicketId: 0f3a, octopus.com/serverTaskId: ServerTasks-1}
  annotations: {meta.helm.sh/release-name: prod, meta.helm.sh/release-namespace: octopus-agent-prod}
spec:
  serviceAccountName: octopus-agent-scripts
  volumes:
  - name: tentacle-home
    persistentVolumeClaim: {claimName: octopus-agent-prod-pvc}
  containers:
  - name: octopus-script-0f3a
    image: octopusdeploy/kubernetes-agent-tools-base:latest
    volumeMounts: [{name: tentacle-home, mountPath: /octopus}]
`

const rwxClaimYAML = `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: octopus-agent-prod-pvc
  namespace: octopus-agent-prod
  labels: {helm.sh/chart: kubernetes-agent-2.51.2}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: gp2
  resources: {requests: {storage: 10Gi}}
`

func explainFile(t *testing.T, manifest string, args ...string) (string, string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := runExplain(append([]string{"-f", path}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

// Offline, from flags: the same decisions the webhook makes, with exit codes a CI job can use.
func TestExplainOffline(t *testing.T) {
	cases := []struct {
		name     string
		manifest string
		args     []string
		code     int
		want     []string
	}{
		{"RWO script pod pinned, admitted pod shown", scriptPodYAML, []string{"--node", "node-2"}, 0,
			[]string{"decision: mutated", "reason:   WorkspacePinned", "final state: allowed WorkspaceValid", "- node-2"}},
		{"cordoned node: toleration and warning", scriptPodYAML, []string{"--node", "node-2", "--node-state", "cordoned"}, 0,
			[]string{"WorkspacePinned", "warning:  node node-2 is cordoned", "node.kubernetes.io/unschedulable"}},
		{"NotReady node refused, --fail-on-deny exits 3", scriptPodYAML, []string{"--node", "node-2", "--node-state", "notready", "--fail-on-deny"}, 3,
			[]string{"decision: denied", "WorkspaceNodeNotReady"}},
		{"no node yet", scriptPodYAML, nil, 0, []string{"WorkspaceNodeUnknown"}},
		{"RWX claim on EBS refused", rwxClaimYAML, []string{"--provisioner", "ebs.csi.aws.com"}, 0,
			[]string{"PersistentVolumeClaim octopus-agent-prod-pvc (validate-pvc)", "ReadWriteManyUnsupported", `StorageClass "gp2"`}},
		{"RWX claim on EFS with efs-ap admitted", rwxClaimYAML, []string{"--provisioner", "efs.csi.aws.com", "--class-params", "provisioningMode=efs-ap", "--fail-on-deny"}, 0,
			[]string{"ReadWriteManySupported"}},
		{"both documents", scriptPodYAML + "---\n" + rwxClaimYAML, []string{"--node", "node-1", "--access-mode", "ReadWriteMany", "--provisioner", "ebs.csi.aws.com"}, 0,
			[]string{"WorkspaceShared", "---", "ReadWriteManyUnsupported"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := explainFile(t, c.manifest, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestExplainJSONAndBadInput(t *testing.T) {
	out, _, code := explainFile(t, scriptPodYAML, "--node", "node-2", "-o", "json")
	var reports []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &reports) != nil || len(reports) != 1 || reports[0]["reason"] != "WorkspacePinned" {
		t.Fatalf("json: exit %d %s", code, out)
	}
	for name, args := range map[string][]string{
		"bad access mode": {"--access-mode", "ReadWriteSometimes"},
		"bad node state":  {"--node-state", "sleepy"},
		"bad taint":       {"--node-taints", "dedicated=gpu:Sometimes"},
		"bad output":      {"-o", "xml"},
	} {
		if _, errOut, code := explainFile(t, scriptPodYAML, args...); code != 2 || errOut == "" {
			t.Errorf("%s: exit %d (%q), want 2 with a message", name, code, errOut)
		}
	}
	if _, errOut, code := explainFile(t, "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"); code != 1 || !strings.Contains(errOut, "explain takes Pods and PersistentVolumeClaims") {
		t.Errorf("a Service: exit %d %q", code, errOut)
	}
	if _, errOut, code := explainFile(t, "{not yaml"); code != 1 || errOut == "" {
		t.Errorf("garbage: exit %d %q", code, errOut)
	}
}
