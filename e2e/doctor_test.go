package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/utils/ptr"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/doctor"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
)

// doctor against a real kube-apiserver seeded with agents of several generations, a
// nameOverride agent whose RWX claim an EBS class cannot serve, an Azure Files class without
// a Premium SKU, and a static class whose volume's size differs from the chart's: each is
// reported, with the fix, in the table and in JSON.
func TestDoctorReportsTheCluster(t *testing.T) {
	ctx := ctxFor(t, 4*time.Minute)
	nas := class("e2e-doctor-nas", "kubernetes.io/no-provisioner", map[string]string{"workspace-webhook.io/supported-access-modes": `["ReadWriteOnce","ReadWriteMany"]`})
	nas.VolumeBindingMode = ptr.To(storagev1.VolumeBindingImmediate)
	createClasses(t, ctx, nas, withParams(class("e2e-doctor-azurefile", "file.csi.azure.com", nil), "skuName", "Standard_LRS"),
		class("e2e-doctor-gp2", "ebs.csi.aws.com", nil))
	share := tentacle.Agent{Namespace: "doctor-unused", Release: "unused", StorageClass: nas.Name, AccessModes: rwx}.Volume(nas.Name)
	share.Name, share.Spec.ClaimRef = "e2e-doctor-nas-share", nil
	share.Spec.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")}
	must(t, cp.Client.Create(ctx, share))

	nfs := tentacle.Agent{Namespace: "doctor-v2-nfs", Release: "doctor-nfs", Generation: 2, Storage: tentacle.StorageNFS, NodeSelector: onNode("node-1")}
	pinned := tentacle.Agent{Namespace: "doctor-v3-rwo", Release: "doctor-rwo", Generation: 3, Storage: tentacle.StorageStatic, AccessModes: rwo, NodeSelector: onNode("node-2")}
	worker := tentacle.Agent{Namespace: "doctor-v3-worker", Release: "doctor-worker", Generation: 3, Worker: true, Storage: tentacle.StorageStatic, AccessModes: rwo, NodeSelector: onNode("node-3")}
	installAgent(t, ctx, nfs, true)
	installAgent(t, ctx, pinned, true)
	installAgent(t, ctx, worker, true)
	must(t, createScriptPod(t, ctx, pinned.ScriptPod("doctor01", pinned.NormalStyle())))
	// Installed before the webhook: an RWX claim on EBS that stays Pending, nameOverride.
	stuck := tentacle.Agent{Namespace: "doctor-v2-stuck", Release: "doctor-stuck", Generation: 2, NameOverride: "build-agent",
		Storage: tentacle.StorageClass, StorageClass: "e2e-doctor-gp2", AccessModes: rwx}
	_, err := cp.CreateNamespace(ctx, stuck.Namespace)
	must(t, err)
	for _, sa := range stuck.ServiceAccounts() {
		must(t, cp.Client.Create(ctx, sa))
	}
	claim := stuck.Claim()
	claim.Labels = nil // the claim webhook does not see it
	must(t, cp.Client.Create(ctx, claim))
	must(t, cp.Client.Create(ctx, stuck.Deployment()))
	eventually(t, ctx, "the stuck agent's Tentacle pod exists", func() (bool, string) {
		var pods corev1.PodList
		must(t, cp.Client.List(ctx, &pods, stuck.TentaclePodsOf()...))
		return len(pods.Items) == 1, ""
	})

	// A namespace a cluster admin put in warn mode, and one whose label names no mode.
	for ns, mode := range map[string]string{"doctor-warn": "warn", "doctor-typo": "Warn"} {
		must(t, cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"workspace-webhook.io/enforcement": mode}}}))
	}

	disc, err := discovery.NewDiscoveryClientForConfig(cp.Config)
	must(t, err)
	snap, err := doctor.Gather(ctx, cp.Client, disc, doctor.Scope{})
	must(t, err)
	report := doctor.Diagnose(snap, storage.Judge{}, "/octopus")

	rows := map[string]doctor.AgentRow{}
	for _, a := range report.Agents {
		rows[a.Namespace] = a
	}
	for ns, want := range map[string]string{
		nfs.Namespace:    "in-cluster NFS node-1 octopus-agent 2.51.2",
		pinned.Namespace: "RWO pinned node-2 octopus-agent 3.13.2",
		stuck.Namespace:  "RWX spread - build-agent 2.51.2",
		worker.Namespace: "RWO pinned node-3 octopus-agent 3.13.2",
	} {
		a := rows[ns]
		node := a.Node
		if node == "" {
			node = "-"
		}
		if got := a.Mode + " " + node + " " + a.Name + " " + a.ChartVersion; got != want {
			t.Errorf("agent %s: %q, want %q", ns, got, want)
		}
	}
	if !rows[worker.Namespace].Worker || rows[pinned.Namespace].Worker {
		t.Errorf("worker mode: %+v / %+v", rows[worker.Namespace], rows[pinned.Namespace])
	}
	if n := rows[pinned.Namespace].ScriptPods["node-2"]; n != 1 {
		t.Errorf("script pods of %s: %v", pinned.Namespace, rows[pinned.Namespace].ScriptPods)
	}
	var table, js bytes.Buffer
	must(t, doctor.Print(&table, report, "table"))
	must(t, doctor.Print(&js, report, "json"))
	for _, want := range []string{
		`agent doctor-v2-nfs/doctor-nfs: uses the chart's in-cluster NFS server`,
		`--version "2.51.2" doctor-nfs oci://registry-1.docker.io/octopusdeploy/kubernetes-agent`,
		`claim doctor-v2-stuck/build-agent-doctor-stuck-pvc: asks for ReadWriteMany on StorageClass "e2e-doctor-gp2"`,
		`storageclass e2e-doctor-azurefile: Azure Files with skuName Standard_LRS`,
		`namespace doctor-warn: enforcement is off here (label workspace-webhook.io/enforcement=warn)`,
		`namespace doctor-typo: label workspace-webhook.io/enforcement="Warn" names no enforcement mode (enforce or warn): the install's mode (enforce) applies`,
		"e2e-doctor-nas", "kubernetes.io/no-provisioner",
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	// The NFS fix names a class this cluster can serve ReadWriteMany with, and a static target
	// gets the persistence.size of its volume.
	fixed := false
	for _, p := range report.Problems {
		if strings.HasPrefix(p.Object, "agent doctor-v2-nfs/") {
			fixed = true
			if !strings.Contains(p.Fix, `--set persistence.storageClassName="e2e-doctor-nas" --set persistence.size=8Gi`) {
				t.Errorf("want the static class (not the Azure Files one doctor warns about) with its volume's size: %s", p.Fix)
			}
		}
	}
	if !fixed {
		t.Error("no fix for the NFS agent")
	}
	if strings.Contains(table.String(), "differs from the shipped manifests") {
		t.Errorf("false difference between the installed and the shipped configurations or policy (API server defaults?):\n%s", table.String())
	}
	for _, p := range report.Problems {
		if strings.HasPrefix(p.Object, "policy ") || strings.HasPrefix(p.Object, "binding ") {
			t.Errorf("the policy is installed as shipped, yet: %+v", p)
		}
	}
	var decoded doctor.Report
	must(t, json.Unmarshal(js.Bytes(), &decoded))
	if len(decoded.Agents) != len(report.Agents) || len(decoded.Problems) != len(report.Problems) || report.Worst() != doctor.Error {
		t.Fatalf("json round trip: %d/%d agents, %d/%d problems, worst %s", len(decoded.Agents), len(report.Agents), len(decoded.Problems), len(report.Problems), report.Worst())
	}
	t.Logf("doctor on the e2e cluster:\n%s", table.String())
}

// A broken installation of the webhook's configurations (an entry missing, a weakened
// failurePolicy, a caBundle that is not a certificate, a Service with no endpoints) is
// reported, each with its fix. The copies select no namespace, so they change nothing else.
func TestDoctorReportsABrokenWebhookInstall(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	m, v := manifestWebhooks(t)
	m.Name, v.Name = "e2e-broken-workspace-webhook", "e2e-broken-workspace-webhook"
	nowhere := &metav1.LabelSelector{MatchLabels: map[string]string{"e2e.workspace-webhook.io/nowhere": "true"}}
	for i := range m.Webhooks {
		m.Webhooks[i].NamespaceSelector = nowhere
		m.Webhooks[i].ClientConfig.CABundle = cp.WebhookInstallOptions.LocalServingCAData
	}
	m.Webhooks[0].FailurePolicy = ptr.To(admissionregistrationv1.Ignore)
	m.Webhooks[1].ClientConfig.CABundle = []byte("not a certificate")
	for i := range v.Webhooks {
		v.Webhooks[i].NamespaceSelector = nowhere
		v.Webhooks[i].ClientConfig.CABundle = cp.WebhookInstallOptions.LocalServingCAData
	}
	v.Webhooks = v.Webhooks[1:]
	must(t, cp.Client.Create(ctx, m))
	must(t, cp.Client.Create(ctx, v))
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), m); _ = cp.Client.Delete(context.Background(), v) })

	disc, err := discovery.NewDiscoveryClientForConfig(cp.Config)
	must(t, err)
	snap, err := doctor.Gather(ctx, cp.Client, disc, doctor.Scope{Namespace: "none-such", MutatingName: m.Name, ValidatingName: v.Name})
	must(t, err)
	var b bytes.Buffer
	must(t, doctor.Print(&b, doctor.Diagnose(snap, storage.Judge{}, "/octopus"), "table"))
	for _, want := range []string{
		"[error] webhook agent-claim-access-modes.workspace-webhook.io: missing from the validating configuration",
		"[warning] webhook script-pod-workspace.workspace-webhook.io: failurePolicy Ignore, shipped Fail",
		"[error] webhook tentacle-pod-placement.workspace-webhook.io: caBundle holds no valid PEM certificate",
		"[error] service octopus-workspace-webhook/workspace-webhook: the webhook's Service has no ready endpoints",
		"[warning] webhook opted-in-claim-access-modes.workspace-webhook.io: differs from the shipped manifests in namespaceSelector",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
