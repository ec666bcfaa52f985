package doctor

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/octopus-agent-tools/workspace-webhook/manifests/base"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func sc(name, provisioner string, isDefault bool, params ...string) storagev1.StorageClass {
	c := storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, Parameters: map[string]string{}}
	for i := 0; i+1 < len(params); i += 2 {
		c.Parameters[params[i]] = params[i+1]
	}
	if isDefault {
		c.Annotations = map[string]string{defaultClass: "true"}
	}
	return c
}

// tentacle is a Tentacle pod of chart version chart (v1/v2 without the component label).
func tentacle(ns, release, name, chart, claim, node string, worker bool) corev1.Pod {
	labels := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/instance": release, "helm.sh/chart": "kubernetes-agent-" + chart,
		"app.kubernetes.io/version": "9.2.4285", "pod-template-hash": "6d5f7b9c4"}
	if strings.HasPrefix(chart, "3.") {
		labels["agent.octopus.com/component"] = "tentacle"
	}
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + "-tentacle-6d5f7b9c4-x2kqp", Namespace: ns, Labels: labels,
		CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
		Spec: corev1.PodSpec{NodeName: node,
			Volumes: []corev1.Volume{{Name: "tentacle-home", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
			Containers: []corev1.Container{{Name: name + "-tentacle", Env: []corev1.EnvVar{{Name: "WorkerEnabled", Value: map[bool]string{true: "true", false: "false"}[worker]}},
				VolumeMounts: []corev1.VolumeMount{{Name: "tentacle-home", MountPath: "/octopus"}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
}

func scriptPod(ns, release, name, node string, phase corev1.PodPhase, age time.Duration) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"octopus.com/scriptTicketId": name},
		Annotations: map[string]string{"meta.helm.sh/release-name": release}, CreationTimestamp: metav1.NewTime(now.Add(-age))},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: phase}}
}

func claim(ns, name, class, volume string, phase corev1.PersistentVolumeClaimPhase, modes ...corev1.PersistentVolumeAccessMode) corev1.PersistentVolumeClaim {
	c := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:   corev1.PersistentVolumeClaimSpec{AccessModes: modes, StorageClassName: ptr.To(class), VolumeName: volume},
		Status: corev1.PersistentVolumeClaimStatus{Phase: phase}}
	if phase == corev1.ClaimBound {
		c.Status.AccessModes = modes
	}
	return c
}

func caPEM(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "workspace-webhook-ca"},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// snapshot is a cluster with one of every shape doctor reports on.
func snapshot(t *testing.T) Snapshot {
	rwo, rwx := corev1.ReadWriteOnce, corev1.ReadWriteMany
	nfsPV := corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-nfs-legacy-pv-10gi"},
		Spec: corev1.PersistentVolumeSpec{StorageClassName: "octopus-agent-nfs-legacy-csi", AccessModes: []corev1.PersistentVolumeAccessMode{rwx},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "nfs.csi.k8s.io",
				VolumeHandle: "octopus-agent-nfs.octopus-agent-legacy.svc.cluster.local/octopus##", VolumeAttributes: map[string]string{"server": "octopus-agent-nfs.octopus-agent-legacy.svc.cluster.local"}}}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound}}
	staticPV := corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "nas-share-1"},
		Spec: corev1.PersistentVolumeSpec{StorageClassName: "static-nas", AccessModes: []corev1.PersistentVolumeAccessMode{rwx},
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable}}
	m, v, err := base.WebhookConfigurations()
	if err != nil {
		t.Fatal(err)
	}
	shippedM, shippedV := m.DeepCopy(), v.DeepCopy()
	good, soon := caPEM(t, now.Add(365*24*time.Hour)), caPEM(t, now.Add(10*24*time.Hour))
	for i := range m.Webhooks {
		m.Webhooks[i].ClientConfig.CABundle = good
	}
	m.Webhooks[0].ClientConfig.CABundle = soon
	m.Webhooks[0].FailurePolicy = ptr.To(admissionregistrationv1.Ignore) // a cluster that weakened it
	for i := range v.Webhooks {
		v.Webhooks[i].ClientConfig.CABundle = good
	}
	v.Webhooks = v.Webhooks[:1]        // the opted-in namespaces' claim entry removed
	v.Webhooks[0].ObjectSelector = nil // an old install that judged only default-named claims
	// An earlier release's script-pod validating entry, left behind.
	leftover := v.Webhooks[0].DeepCopy()
	leftover.Name, leftover.ClientConfig.Service.Path = "script-pod-validation.workspace-webhook.io", ptr.To("/validate-script-pod")
	v.Webhooks = append(v.Webhooks, *leftover)
	policy, bindings, err := base.ScriptPodPolicy()
	if err != nil {
		t.Fatal(err)
	}
	return Snapshot{
		Now:   now,
		Nodes: 3,
		Classes: []storagev1.StorageClass{
			sc("gp2", "ebs.csi.aws.com", true), sc("efs", "efs.csi.aws.com", false, "provisioningMode", "efs-ap"),
			sc("azurefile", "file.csi.azure.com", false, "skuName", "Standard_LRS"), sc("static-nas", "kubernetes.io/no-provisioner", false),
		},
		Volumes: []corev1.PersistentVolume{nfsPV, staticPV},
		Claims: []corev1.PersistentVolumeClaim{
			claim("octopus-agent-legacy", "octopus-agent-nfs-legacy-pvc-10gi", "octopus-agent-nfs-legacy-csi", nfsPV.Name, corev1.ClaimBound, rwx),
			claim("octopus-agent-prod", "octopus-agent-prod-pvc", "gp2", "pvc-1", corev1.ClaimBound, rwo),
			claim("octopus-agent-builds", "build-agent-builds-pvc", "gp2", "", corev1.ClaimPending, rwx),
		},
		Pods: []corev1.Pod{
			tentacle("octopus-agent-legacy", "legacy", "octopus-agent", "1.24.0", "octopus-agent-nfs-legacy-pvc-10gi", "node-3", false),
			tentacle("octopus-agent-prod", "prod", "octopus-agent", "3.13.2", "octopus-agent-prod-pvc", "node-1", false),
			tentacle("octopus-agent-builds", "builds", "build-agent", "2.51.2", "build-agent-builds-pvc", "", true),
			scriptPod("octopus-agent-prod", "prod", "octopus-script-a", "node-1", corev1.PodRunning, time.Minute),
			scriptPod("octopus-agent-prod", "prod", "octopus-script-b", "node-1", corev1.PodRunning, time.Minute),
			scriptPod("octopus-agent-prod", "prod", "octopus-script-c", "node-2", corev1.PodPending, 10*time.Minute),
		},
		Mutating: m, Validating: v, ShippedMutating: shippedM, ShippedValidating: shippedV,
		Policy: policy.DeepCopy(), ShippedPolicy: policy, PolicyBindings: auditOnly(bindings),
		// An install in audit-only mode, where one team enforces already and one label is a typo.
		EnforcementLabels: map[string]string{"octopus-agent-prod": "enforce", "octopus-agent-builds": "Enforce"},
	}
}

// auditOnly are the shipped bindings as manifests/components/audit-only (chart: enforcement=warn)
// turns them around: enforced only where labelled enforce.
func auditOnly(shipped []*admissionregistrationv1.ValidatingAdmissionPolicyBinding) []admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	out := enforced(shipped)
	for i := range out {
		e := &out[i].Spec.MatchResources.NamespaceSelector.MatchExpressions[0]
		if e.Operator == metav1.LabelSelectorOpIn {
			e.Operator = metav1.LabelSelectorOpNotIn
		} else {
			e.Operator = metav1.LabelSelectorOpIn
		}
		e.Values = []string{"enforce"}
	}
	return out
}

// enforced are the shipped bindings, as installed.
func enforced(shipped []*admissionregistrationv1.ValidatingAdmissionPolicyBinding) []admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	var out []admissionregistrationv1.ValidatingAdmissionPolicyBinding
	for _, b := range shipped {
		out = append(out, *b.DeepCopy())
	}
	return out
}

// Every shape in one report, held to golden table and JSON output.
func TestDiagnoseGolden(t *testing.T) {
	r := Diagnose(snapshot(t), storage.Judge{}, "/octopus")
	for _, format := range []string{"table", "json"} {
		var b bytes.Buffer
		if err := Print(&b, r, format); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "report."+format+".golden")
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create)", err)
		}
		if b.String() != string(want) {
			t.Fatalf("%s output differs from %s:\n%s", format, path, b.String())
		}
	}
	if r.Worst() != Error {
		t.Fatalf("worst %q, want error", r.Worst())
	}
}

// The facts behind the golden file, asserted one by one so a regenerated golden cannot hide a
// wrong answer.
func TestDiagnoseFindsEachProblem(t *testing.T) {
	r := Diagnose(snapshot(t), storage.Judge{}, "/octopus")
	text := ""
	for _, p := range r.Problems {
		text += string(p.Severity) + " " + p.Object + ": " + p.Problem + " FIX " + p.Fix + "\n"
	}
	for _, want := range []string{
		// NFS migration to an RWX class found here (not the Azure Files one it warns about), with the chart version and release.
		`warning agent octopus-agent-legacy/legacy: uses the chart's in-cluster NFS server`,
		`helm upgrade --reuse-values --atomic --set persistence.storageClassName="efs" --namespace octopus-agent-legacy --version "1.24.0" legacy oci://registry-1.docker.io/octopusdeploy/kubernetes-agent`,
		`(ReadWriteMany-capable classes here: azurefile, efs, static-nas)`,
		`warning storageclass azurefile: Azure Files with skuName Standard_LRS`, `PremiumV2_LRS or PremiumV2_ZRS`,
		`error claim octopus-agent-builds/build-agent-builds-pvc: asks for ReadWriteMany on StorageClass "gp2"`,
		`warning pod octopus-agent-prod/octopus-script-c: script pod Pending for 10m0s`,
		`error webhook opted-in-claim-access-modes.workspace-webhook.io: missing from the validating configuration`,
		`warning webhook script-pod-validation.workspace-webhook.io: in the validating configuration but not in the shipped manifests`,
		`warning policy octopus-workspace-script-pods: enforcement is off (audit-only): in every namespace not labelled workspace-webhook.io/enforcement=enforce, script pods it would refuse are admitted with a warning (binding octopus-workspace-script-pods-warn, validationActions [Warn, Audit])`,
		`warning namespace octopus-agent-builds: label workspace-webhook.io/enforcement="Enforce" names no enforcement mode (enforce or warn): the install's mode (warn) applies`,
		`warning webhook script-pod-workspace.workspace-webhook.io: failurePolicy Ignore, shipped Fail`,
		`warning webhook agent-claim-access-modes.workspace-webhook.io: differs from the shipped manifests in objectSelector`,
		`warning webhook script-pod-workspace.workspace-webhook.io: caBundle certificate "workspace-webhook-ca" expires at 2026-12-11`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("problems lack %q:\n%s", want, text)
		}
	}
	modes := map[string]string{}
	for _, a := range r.Agents {
		modes[a.Namespace] = a.Mode + " " + a.Node + " " + a.Name + " " + a.ChartVersion
	}
	for ns, want := range map[string]string{
		"octopus-agent-legacy": "in-cluster NFS node-3 octopus-agent 1.24.0",
		"octopus-agent-prod":   "RWO pinned node-1 octopus-agent 3.13.2",
		"octopus-agent-builds": "RWX spread  build-agent 2.51.2",
	} {
		if modes[ns] != want {
			t.Errorf("agent %s: %q, want %q", ns, modes[ns], want)
		}
	}
}

// The final-state policy: missing, edited, or without a binding; bindings that do not give
// each kind of namespace its enforcement mode; namespaces where enforcement is off.
func TestDiagnosePolicy(t *testing.T) {
	_, shipped, err := base.ScriptPodPolicy()
	if err != nil {
		t.Fatal(err)
	}
	// The single [Deny, Audit] binding of earlier releases, selecting every namespace.
	single := enforced(shipped)[:1]
	single[0].Spec.MatchResources = nil
	for name, tc := range map[string]struct {
		change func(s *Snapshot)
		want   []string // every policy, binding and namespace problem
	}{
		"missing":    {func(s *Snapshot) { s.Policy, s.PolicyBindings = nil, nil }, []string{"error policy octopus-workspace-script-pods: the ValidatingAdmissionPolicy that checks each script pod's final state is not installed"}},
		"no binding": {func(s *Snapshot) { s.PolicyBindings = nil }, []string{"error policy octopus-workspace-script-pods: has no ValidatingAdmissionPolicyBinding, so it checks nothing"}},
		"edited": {func(s *Snapshot) { s.Policy.Spec.Validations = s.Policy.Spec.Validations[:1] },
			[]string{"warning policy octopus-workspace-script-pods: differs from the shipped manifests in validations"}},
		"as shipped, enforce":    {func(s *Snapshot) {}, nil},
		"as shipped, audit-only": {func(s *Snapshot) { s.PolicyBindings = auditOnly(shipped) }, []string{"warning policy octopus-workspace-script-pods: enforcement is off (audit-only)"}},
		"audit-only, a team enforcing": {func(s *Snapshot) {
			s.PolicyBindings, s.EnforcementLabels = auditOnly(shipped), map[string]string{"team-a": "enforce", "team-b": "warn"}
		}, []string{"warning policy octopus-workspace-script-pods: enforcement is off (audit-only)"}},
		"enforce, a team in warn": {func(s *Snapshot) { s.EnforcementLabels = map[string]string{"team-a": "warn", "team-b": "enforce"} },
			[]string{"warning namespace team-a: enforcement is off here (label workspace-webhook.io/enforcement=warn)"}},
		"a label that names no mode": {func(s *Snapshot) { s.EnforcementLabels = map[string]string{"team-a": "off"} },
			[]string{`warning namespace team-a: label workspace-webhook.io/enforcement="off" names no enforcement mode (enforce or warn): the install's mode (enforce) applies`}},
		"an earlier release's single binding": {func(s *Snapshot) { s.PolicyBindings = single },
			[]string{"warning policy octopus-workspace-script-pods: namespaces labelled workspace-webhook.io/enforcement=warn get validationActions [Deny, Audit] (bindings: octopus-workspace-script-pods): the policy does not follow the label there"}},
		"the warn binding alone": {func(s *Snapshot) { s.PolicyBindings = enforced(shipped)[1:] }, []string{
			"error policy octopus-workspace-script-pods: no binding selects namespaces without the workspace-webhook.io/enforcement label, so it checks nothing there",
			"warning policy octopus-workspace-script-pods: namespaces labelled workspace-webhook.io/enforcement=enforce get validationActions [] (bindings: none)"}},
		"audit only, nobody told": {func(s *Snapshot) {
			s.PolicyBindings = enforced(shipped)
			for i := range s.PolicyBindings {
				s.PolicyBindings[i].Spec.ValidationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Audit}
			}
		}, []string{
			"warning policy octopus-workspace-script-pods: bindings octopus-workspace-script-pods give namespaces without the workspace-webhook.io/enforcement label validationActions [Audit]",
			"warning policy octopus-workspace-script-pods: namespaces labelled workspace-webhook.io/enforcement=enforce get validationActions [Audit]",
			"warning policy octopus-workspace-script-pods: namespaces labelled workspace-webhook.io/enforcement=warn get validationActions [Audit]"}},
	} {
		t.Run(name, func(t *testing.T) {
			s := snapshot(t)
			s.PolicyBindings, s.EnforcementLabels = enforced(shipped), nil
			tc.change(&s)
			var got []string
			for _, p := range Diagnose(s, storage.Judge{}, "/octopus").Problems {
				if strings.HasPrefix(p.Object, "policy ") || strings.HasPrefix(p.Object, "binding ") || strings.HasPrefix(p.Object, "namespace ") {
					got = append(got, string(p.Severity)+" "+p.Object+": "+p.Problem)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems\n  %s\nwant %d:\n  %s", strings.Join(got, "\n  "), len(tc.want), strings.Join(tc.want, "\n  "))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d:\n  %s\nwant it to start with\n  %s", i, got[i], w)
				}
			}
		})
	}
}

// On OpenShift the NFS advice is Octopus's stronger one; with no RWX class, the advice is
// ReadWriteOnce; a static class target gets the persistence.size of its volume.
func TestNFSMigrationAdvice(t *testing.T) {
	s := snapshot(t)
	s.OpenShift = true
	s.Classes = []storagev1.StorageClass{sc("gp2", "ebs.csi.aws.com", true)}
	r := Diagnose(s, storage.Judge{}, "/octopus")
	nfs := r.Problems[0]
	for _, p := range r.Problems {
		if strings.Contains(p.Problem, "in-cluster NFS") {
			nfs = p
		}
	}
	if nfs.Severity != Error || !strings.Contains(nfs.Problem, "OpenShift") || !strings.Contains(nfs.Fix, "persistence.accessModes={ReadWriteOnce}") {
		t.Fatalf("OpenShift without RWX classes: %+v", nfs)
	}
	s = snapshot(t)
	s.Classes = []storagev1.StorageClass{sc("static-nas", "kubernetes.io/no-provisioner", false)}
	r = Diagnose(s, storage.Judge{}, "/octopus")
	for _, p := range r.Problems {
		if strings.Contains(p.Problem, "in-cluster NFS") && !strings.Contains(p.Fix, `--set persistence.storageClassName="static-nas" --set persistence.size=8Gi`) {
			t.Fatalf("static target: %s", p.Fix)
		}
	}
}

// A webhook Service with no ready endpoints is an error: with failurePolicy Fail every
// script pod would be refused.
func TestNoReadyEndpoints(t *testing.T) {
	s := snapshot(t)
	s.ReadyEndpoints = map[string]int{"octopus-workspace-webhook/workspace-webhook": 0}
	r := Diagnose(s, storage.Judge{}, "/octopus")
	for _, p := range r.Problems {
		if p.Severity == Error && p.Object == "service octopus-workspace-webhook/workspace-webhook" && strings.Contains(p.Problem, "no ready endpoints") {
			s.ReadyEndpoints["octopus-workspace-webhook/workspace-webhook"] = 2
			for _, p := range Diagnose(s, storage.Judge{}, "/octopus").Problems {
				if strings.Contains(p.Problem, "no ready endpoints") {
					t.Fatal("reported with 2 ready endpoints")
				}
			}
			return
		}
	}
	t.Fatalf("no endpoint problem in %+v", r.Problems)
}

// An unbound claim that names no class is provisioned by today's default class: doctor
// judges that one (gp2 here), as the claim webhook does at creation.
func TestUnboundClasslessClaimIsJudgedByTheDefault(t *testing.T) {
	s := snapshot(t)
	for i := range s.Claims {
		if s.Claims[i].Namespace == "octopus-agent-builds" {
			s.Claims[i].Spec.StorageClassName = nil
		}
	}
	for _, p := range Diagnose(s, storage.Judge{}, "/octopus").Problems {
		if p.Object == "claim octopus-agent-builds/build-agent-builds-pvc" && strings.Contains(p.Problem, `StorageClass "gp2"`) {
			return
		}
	}
	t.Fatal("the class-less RWX claim on the EBS default class was not reported")
}
