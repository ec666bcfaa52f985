package storage

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FuzzReadWriteMany checks that no class, parameter, annotation or mode makes the Judge panic
// or answer without a verdict, a known source and a reason.
func FuzzReadWriteMany(f *testing.F) {
	f.Add("disk.csi.azure.com", "maxShares", "2", `["ReadWriteMany"]`, "Block", "*.csi.azure.com")
	f.Add("kubernetes.io/aws-ebs", "type", "io2", `[`, "", "kubernetes.io/*")
	f.Add("rook.cephfs.csi.ceph.com", "backendType", "ontap-san", `null`, "Filesystem", "[")
	f.Add("", "", "", "", "x", "")
	f.Fuzz(func(t *testing.T, provisioner, key, value, ann, mode, pattern string) {
		class := &storagev1.StorageClass{
			ObjectMeta:  metav1.ObjectMeta{Name: "c", Annotations: map[string]string{AnnotationAccessModesBlock: ann, AnnotationKubeSphereAccessModes: ann}},
			Provisioner: provisioner,
			Parameters:  map[string]string{key: value},
		}
		o, _ := ParseOverrides([]byte("overrides:\n  - provisioner: '"+pattern+"'\n    readWriteMany: {block: true}\n"), "f")
		ev := Evidence{BoundRWXVolumes: []string{value}, StaticVolumes: []VolumeFacts{{Name: key, VolumeMode: corev1.PersistentVolumeMode(mode)}}}
		a := Judge{Overrides: o}.ReadWriteMany(class, corev1.PersistentVolumeMode(mode), ev)
		switch a.Verdict {
		case Supported, Unsupported, Unknown:
		default:
			t.Fatalf("verdict %q", a.Verdict)
		}
		if a.Source == "" || a.Reason == "" {
			t.Fatalf("answer without provenance: %+v", a)
		}
		_ = a.Message()
	})
}

// FuzzParseOverrides checks that no file content makes the parser panic, and that a file it
// accepts has only entries that declare something.
func FuzzParseOverrides(f *testing.F) {
	f.Add([]byte(overridesYAML))
	f.Add([]byte("overrides: []\n"))
	f.Add([]byte("overrides:\n  - provisioner: '[a'\n"))
	f.Add([]byte("\x00\xff: ["))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOverrides(data, "f")
		if err != nil {
			return
		}
		for _, e := range o.Entries() {
			if e.Provisioner == "" || e.Filesystem == nil && e.Block == nil {
				t.Fatalf("accepted an empty entry: %+v", e)
			}
			_, _ = o.Lookup(e.Provisioner, corev1.PersistentVolumeBlock)
		}
	})
}
