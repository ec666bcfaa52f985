package storage

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	rwoRWX  = `["ReadWriteOnce","ReadWriteMany"]`
	rwoOnly = `["ReadWriteOnce"]`
)

// overridesYAML contradicts the table for some provisioners so the source of an answer is visible.
const overridesYAML = `
overrides:
  - provisioner: ebs.csi.aws.com
    readWriteMany: {filesystem: true}
    reason: "we run a cluster file system on io2"
  - provisioner: efs.csi.aws.com
    readWriteMany: {filesystem: false, block: false}
  - provisioner: "*.cephfs.csi.ceph.com"
    readWriteMany: {filesystem: false}
    reason: "our CephFS is read-only for tenants"
  - provisioner: example.com/nas
    readWriteMany: {filesystem: true}
`

func TestPrecedence(t *testing.T) {
	ov := mustOverrides(t, overridesYAML)
	bound := Evidence{BoundRWXVolumes: []string{"pv-1"}}
	tests := []struct {
		name    string
		judge   Judge
		class   *storagev1.StorageClass
		mode    corev1.PersistentVolumeMode
		ev      Evidence
		verdict Verdict
		source  Source
	}{
		{"annotation beats override", Judge{ov}, annotated(sc("c", "ebs.csi.aws.com"), AnnotationAccessModes, rwoOnly), fs, bound, U, SourceAnnotation},
		{"annotation beats table", Judge{}, annotated(sc("c", "efs.csi.aws.com"), AnnotationAccessModes, rwoOnly), fs, Evidence{}, U, SourceAnnotation},
		{"annotation beats evidence", Judge{}, annotated(sc("c", "example.com/x"), AnnotationAccessModes, rwoOnly), fs, bound, U, SourceAnnotation},
		{"annotation supported", Judge{}, annotated(sc("c", "rancher.io/local-path"), AnnotationAccessModes, rwoRWX), fs, Evidence{}, S, SourceAnnotation},
		{"override beats table (up)", Judge{ov}, sc("c", "ebs.csi.aws.com"), fs, Evidence{}, S, SourceOverride},
		{"override beats table (down)", Judge{ov}, sc("c", "efs.csi.aws.com"), fs, Evidence{}, U, SourceOverride},
		{"override pattern", Judge{ov}, sc("c", "rook-ceph.cephfs.csi.ceph.com"), fs, Evidence{}, U, SourceOverride},
		{"override matches in-tree alias", Judge{ov}, sc("c", "kubernetes.io/aws-ebs"), fs, Evidence{}, S, SourceOverride},
		{"override beats evidence", Judge{ov}, sc("c", "efs.csi.aws.com"), fs, bound, U, SourceOverride},
		{"override without this mode falls to table", Judge{ov}, sc("c", "ebs.csi.aws.com", "type", "io2"), block, Evidence{}, S, SourceTable},
		{"override unknown provisioner", Judge{ov}, sc("c", "example.com/nas"), fs, Evidence{}, S, SourceOverride},
		{"table beats evidence", Judge{}, sc("c", "ebs.csi.aws.com"), fs, bound, U, SourceTable},
		{"table unknown falls to evidence", Judge{}, sc("c", "csi.vsphere.vmware.com"), fs, bound, S, SourceEvidence},
		{"table unknown stays unknown", Judge{}, sc("c", "csi.vsphere.vmware.com"), fs, Evidence{}, K, SourceTable},
		{"evidence for unknown provisioner", Judge{}, sc("c", "example.com/x"), fs, bound, S, SourceEvidence},
		{"none", Judge{}, sc("c", "example.com/x"), fs, Evidence{}, K, SourceNone},
		{"nil overrides", Judge{Overrides: nil}, sc("c", "nfs.csi.k8s.io"), "", Evidence{}, S, SourceTable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.judge.ReadWriteMany(tt.class, tt.mode, tt.ev)
			checkAnswer(t, a, tt.verdict, tt.source)
			if a.Class != "c" || a.Provisioner != tt.class.Provisioner || a.Reference == "" && a.Source != SourceNone {
				t.Fatalf("answer lacks provenance: %+v", a)
			}
		})
	}
}

func TestAnnotations(t *testing.T) {
	base := func() *storagev1.StorageClass { return sc("c", "example.com/x") }
	tests := []struct {
		name    string
		ann     []string
		mode    corev1.PersistentVolumeMode
		verdict Verdict
		source  Source
		note    string
	}{
		{"ours rwx", []string{AnnotationAccessModes, rwoRWX}, fs, S, SourceAnnotation, ""},
		{"ours without rwx", []string{AnnotationAccessModes, `["ReadWriteOnce","ReadOnlyMany","ReadWriteOncePod"]`}, fs, U, SourceAnnotation, ""},
		{"kubesphere", []string{AnnotationKubeSphereAccessModes, rwoRWX}, fs, S, SourceAnnotation, ""},
		{"ours beats kubesphere", []string{AnnotationAccessModes, rwoOnly, AnnotationKubeSphereAccessModes, rwoRWX}, fs, U, SourceAnnotation, ""},
		{"block annotation for block", []string{AnnotationAccessModes, rwoRWX, AnnotationAccessModesBlock, rwoOnly}, block, U, SourceAnnotation, ""},
		{"block annotation ignored for fs", []string{AnnotationAccessModes, rwoRWX, AnnotationAccessModesBlock, rwoOnly}, fs, S, SourceAnnotation, ""},
		{"plain annotation covers block", []string{AnnotationAccessModes, rwoRWX}, block, S, SourceAnnotation, "does not distinguish volume modes"},
		{"kubesphere covers block", []string{AnnotationKubeSphereAccessModes, rwoOnly}, block, U, SourceAnnotation, "does not distinguish"},
		{"whitespace tolerated", []string{AnnotationAccessModes, " [ \"ReadWriteMany\" ] "}, fs, S, SourceAnnotation, ""},
		{"malformed json falls through", []string{AnnotationAccessModes, `ReadWriteMany`}, fs, K, SourceNone, "is malformed"},
		{"malformed to kubesphere", []string{AnnotationAccessModes, `[ReadWriteMany`, AnnotationKubeSphereAccessModes, rwoRWX}, fs, S, SourceAnnotation, "is malformed"},
		{"empty list malformed", []string{AnnotationAccessModes, `[]`}, fs, K, SourceNone, "declares no access mode"},
		{"empty value malformed", []string{AnnotationAccessModes, ``}, fs, K, SourceNone, "is malformed"},
		{"unknown mode malformed", []string{AnnotationAccessModes, `["RWX"]`}, fs, K, SourceNone, `"RWX" is not an access mode`},
		{"object malformed", []string{AnnotationAccessModes, `{"ReadWriteMany":true}`}, fs, K, SourceNone, "is malformed"},
		{"numbers malformed", []string{AnnotationAccessModes, `[1,2]`}, fs, K, SourceNone, "is malformed"},
		{"null malformed", []string{AnnotationAccessModes, `null`}, fs, K, SourceNone, "declares no access mode"},
		{"malformed block falls to plain", []string{AnnotationAccessModesBlock, `nope`, AnnotationAccessModes, rwoRWX}, block, S, SourceAnnotation, AnnotationAccessModesBlock + " is malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Judge{}.ReadWriteMany(annotated(base(), tt.ann...), tt.mode, Evidence{})
			checkAnswer(t, a, tt.verdict, tt.source)
			if tt.note != "" && !hasNote(a, tt.note) {
				t.Fatalf("want a note containing %q, got %q", tt.note, a.Notes)
			}
			if tt.note == "" && len(a.Notes) > 0 {
				t.Fatalf("unexpected notes %q", a.Notes)
			}
		})
	}
}

func TestMalformedAnnotationFallsThroughToTable(t *testing.T) {
	c := annotated(sc("c", "ebs.csi.aws.com"), AnnotationAccessModes, `ReadWriteMany`)
	a := Judge{}.ReadWriteMany(c, fs, Evidence{})
	checkAnswer(t, a, U, SourceTable)
	if !hasNote(a, "StorageClass c annotation "+AnnotationAccessModes+" is malformed") {
		t.Fatalf("notes %q", a.Notes)
	}
}

func TestOverrideNotes(t *testing.T) {
	ov := mustOverrides(t, overridesYAML)
	a := Judge{ov}.ReadWriteMany(sc("c", "ebs.csi.aws.com"), block, Evidence{})
	checkAnswer(t, a, U, SourceTable)
	if !hasNote(a, "entry 1 (line 3) matches provisioner ebs.csi.aws.com but declares nothing for volumeMode Block") {
		t.Fatalf("notes %q", a.Notes)
	}
	a = Judge{ov}.ReadWriteMany(sc("c", "ebs.csi.aws.com"), fs, Evidence{})
	if !strings.Contains(a.Reason, "we run a cluster file system on io2") || !strings.Contains(a.Reference, "entry 1 (line 3)") {
		t.Fatalf("override answer must quote the admin and the entry: %+v", a)
	}
}

func TestInTreeAliasNote(t *testing.T) {
	a := Judge{}.ReadWriteMany(sc("c", "kubernetes.io/aws-ebs"), fs, Evidence{})
	checkAnswer(t, a, U, SourceTable)
	if !hasNote(a, "served by CSI driver ebs.csi.aws.com") || a.Provisioner != "kubernetes.io/aws-ebs" {
		t.Fatalf("%+v", a)
	}
}

func TestEvidence(t *testing.T) {
	pv := func(name string, phase corev1.PersistentVolumePhase, mode corev1.PersistentVolumeMode, modes ...corev1.PersistentVolumeAccessMode) VolumeFacts {
		return VolumeFacts{Name: name, Phase: phase, VolumeMode: mode, AccessModes: modes}
	}
	rwx, rwo := corev1.ReadWriteMany, corev1.ReadWriteOnce
	avail, bnd, rel := corev1.VolumeAvailable, corev1.VolumeBound, corev1.VolumeReleased
	tests := []struct {
		name        string
		provisioner string
		mode        corev1.PersistentVolumeMode
		ev          Evidence
		verdict     Verdict
		source      Source
	}{
		{"no-provisioner available rwx", noProvisioner, fs, Evidence{StaticVolumes: []VolumeFacts{pv("a", avail, "", rwo, rwx)}}, S, SourceEvidence},
		{"no-provisioner available rwx block", noProvisioner, block, Evidence{StaticVolumes: []VolumeFacts{pv("a", avail, block, rwx)}}, S, SourceEvidence},
		{"no-provisioner rwx only in other mode", noProvisioner, block, Evidence{StaticVolumes: []VolumeFacts{pv("a", avail, fs, rwx)}}, U, SourceEvidence},
		{"no-provisioner only rwo", noProvisioner, fs, Evidence{StaticVolumes: []VolumeFacts{pv("a", avail, fs, rwo), pv("b", bnd, fs, rwo)}}, U, SourceEvidence},
		{"no-provisioner bound rwx proves", noProvisioner, fs, Evidence{StaticVolumes: []VolumeFacts{pv("a", bnd, fs, rwx)}}, S, SourceEvidence},
		{"no-provisioner released rwx only", noProvisioner, fs, Evidence{StaticVolumes: []VolumeFacts{pv("a", rel, fs, rwx), pv("b", avail, fs, rwo)}}, K, SourceEvidence},
		{"no-provisioner nothing", noProvisioner, fs, Evidence{}, K, SourceTable},
		{"no-provisioner bound list", noProvisioner, fs, Evidence{BoundRWXVolumes: []string{"x"}}, S, SourceEvidence},
		{"static volumes ignored for other provisioners", "example.com/x", fs, Evidence{StaticVolumes: []VolumeFacts{pv("a", avail, fs, rwx)}}, K, SourceNone},
		{"bound static counts for any provisioner", "example.com/x", fs, Evidence{StaticVolumes: []VolumeFacts{pv("a", bnd, fs, rwx)}}, S, SourceEvidence},
		{"bound static other mode does not count", "example.com/x", block, Evidence{StaticVolumes: []VolumeFacts{pv("a", bnd, fs, rwx)}}, K, SourceNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Judge{}.ReadWriteMany(sc("c", tt.provisioner), tt.mode, tt.ev)
			checkAnswer(t, a, tt.verdict, tt.source)
		})
	}
}

func TestEvidenceContradictingTableIsNoted(t *testing.T) {
	a := Judge{}.ReadWriteMany(sc("c", "ebs.csi.aws.com"), fs, Evidence{BoundRWXVolumes: []string{"pv-b", "pv-a"}})
	checkAnswer(t, a, U, SourceTable)
	if !hasNote(a, "pv-b, pv-a") || !hasNote(a, "contradicts") {
		t.Fatalf("notes %q", a.Notes)
	}
	many := Evidence{BoundRWXVolumes: []string{"a", "b", "c", "d", "e"}}
	a = Judge{}.ReadWriteMany(sc("c", "ebs.csi.aws.com"), fs, many)
	if !hasNote(a, "a, b, c and 2 more") {
		t.Fatalf("notes %q", a.Notes)
	}
}

func TestNilAndOddInputs(t *testing.T) {
	a := Judge{}.ReadWriteMany(nil, "", Evidence{})
	checkAnswer(t, a, K, SourceNone)
	if a.VolumeMode != fs {
		t.Fatalf("empty mode must mean Filesystem, got %q", a.VolumeMode)
	}
	a = Judge{}.ReadWriteMany(sc("c", "nfs.csi.k8s.io"), "Sideways", Evidence{})
	checkAnswer(t, a, K, SourceNone)
	a = Judge{}.ReadWriteMany(&storagev1.StorageClass{}, fs, Evidence{})
	checkAnswer(t, a, K, SourceNone)
	if a.Reason != "the StorageClass names no provisioner" {
		t.Fatalf("reason %q", a.Reason)
	}
	var w *OverrideWatcher
	a = Judge{Overrides: w.Current()}.ReadWriteMany(sc("c", "nfs.csi.k8s.io"), fs, Evidence{})
	checkAnswer(t, a, S, SourceTable)
	if VolumeModeOf(nil) != fs || VolumeModeOf(ptrMode(block)) != block || VolumeModeOf(ptrMode("")) != fs {
		t.Fatal("VolumeModeOf")
	}
}

func ptrMode(m corev1.PersistentVolumeMode) *corev1.PersistentVolumeMode { return &m }

func TestUnknownProvisionerReason(t *testing.T) {
	a := Judge{}.ReadWriteMany(sc("c", "example.com/x"), fs, Evidence{})
	for _, want := range []string{"example.com/x is not in the built-in table", AnnotationAccessModes, "override"} {
		if !strings.Contains(a.Reason, want) {
			t.Errorf("reason %q lacks %q", a.Reason, want)
		}
	}
}

func TestMessage(t *testing.T) {
	a := Judge{}.ReadWriteMany(annotated(sc("gp3", "ebs.csi.aws.com"), AnnotationAccessModes, "x"), fs, Evidence{})
	m := a.Message()
	for _, want := range []string{`StorageClass "gp3"`, "provisioner ebs.csi.aws.com", "Unsupported (BuiltInTable)",
		"aws-ebs-csi-driver pkg/driver/controller.go", "Note: StorageClass gp3 annotation"} {
		if !strings.Contains(m, want) {
			t.Errorf("message %q lacks %q", m, want)
		}
	}
}

func TestRWXCapableClasses(t *testing.T) {
	classes := []storagev1.StorageClass{
		*sc("gp3", "ebs.csi.aws.com"),
		*sc("io2", "ebs.csi.aws.com", "type", "io2"),
		*sc("efs", "efs.csi.aws.com", "provisioningMode", "efs-ap"),
		*annotated(sc("nas", "example.com/nas"), AnnotationAccessModes, rwoRWX),
		*sc("static", noProvisioner),
		*sc("azurefile", "kubernetes.io/azure-file"),
		*sc("mystery", "example.com/x"),
	}
	ev := func(name string) Evidence {
		if name == "static" {
			return Evidence{StaticVolumes: []VolumeFacts{{Name: "pv", Phase: corev1.VolumeAvailable, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}}}}
		}
		return Evidence{}
	}
	got := strings.Join(RWXCapableClasses(Judge{}, classes, fs, 0, ev), ",")
	if want := "azurefile,efs,nas,static"; got != want {
		t.Errorf("filesystem: got %s, want %s", got, want)
	}
	got = strings.Join(RWXCapableClasses(Judge{}, classes, block, 0, nil), ",")
	if want := "io2,nas"; got != want {
		t.Errorf("block: got %s, want %s", got, want)
	}
	if RWXCapableClasses(Judge{}, nil, fs, 0, nil) != nil {
		t.Error("no classes")
	}
}

func TestCollectEvidence(t *testing.T) {
	rwx := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	mk := func(name, class string, phase corev1.PersistentVolumePhase, mode *corev1.PersistentVolumeMode) corev1.PersistentVolume {
		return corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.PersistentVolumeSpec{StorageClassName: class, AccessModes: rwx, VolumeMode: mode},
			Status:     corev1.PersistentVolumeStatus{Phase: phase},
		}
	}
	beta := mk("beta", "other", corev1.VolumeBound, nil)
	beta.Annotations = map[string]string{corev1.BetaStorageClassAnnotation: "nfs"}
	pvs := []corev1.PersistentVolume{
		mk("b", "nfs", corev1.VolumeBound, nil),
		mk("a", "nfs", corev1.VolumeBound, ptrMode(fs)),
		mk("blk", "nfs", corev1.VolumeBound, ptrMode(block)),
		mk("free", "nfs", corev1.VolumeAvailable, nil),
		mk("elsewhere", "gp3", corev1.VolumeBound, nil),
		beta,
	}
	ev := CollectEvidence("nfs", "", pvs)
	if got := strings.Join(ev.BoundRWXVolumes, ","); got != "a,b,beta" {
		t.Errorf("bound: %s", got)
	}
	if len(ev.StaticVolumes) != 5 {
		t.Errorf("static: %+v", ev.StaticVolumes)
	}
	if got := strings.Join(CollectEvidence("nfs", block, pvs).BoundRWXVolumes, ","); got != "blk" {
		t.Errorf("block: %s", got)
	}
	if ev := CollectEvidence("", fs, pvs); len(ev.StaticVolumes) != 0 {
		t.Error("empty class name must match nothing")
	}
	if f := FactsOf(nil); f.Name != "" || f.AccessModes != nil || f.VolumeMode != "" || f.Phase != "" {
		t.Error("FactsOf(nil)")
	}
}
