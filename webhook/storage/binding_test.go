package storage

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func staticPV(name, class, size string, phase corev1.PersistentVolumePhase, modes ...corev1.PersistentVolumeAccessMode) corev1.PersistentVolume {
	return corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{StorageClassName: class, AccessModes: modes,
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		Status: corev1.PersistentVolumeStatus{Phase: phase}}
}

func claimOf(size, class, volume string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-prod-pvc", Namespace: "octopus-agent-prod"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(class), VolumeName: volume, AccessModes: modes,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}}}
}

// The agent chart's migration off NFS onto an existing volume: the claim binds only when a
// volume of the class takes its size, modes and volume mode.
func TestUnbindable(t *testing.T) {
	rwx := corev1.ReadWriteMany
	reserved := staticPV("reserved", "static", "10Gi", corev1.VolumeAvailable, rwx)
	reserved.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "other", Name: "data"}
	released := staticPV("released", "static", "10Gi", corev1.VolumeReleased, rwx)
	released.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "octopus-agent-prod", Name: "octopus-agent-prod-pvc"}
	cases := []struct {
		name    string
		claim   *corev1.PersistentVolumeClaim
		volumes []corev1.PersistentVolume
		want    []string // "" = binds
	}{
		{"a matching Available volume", claimOf("10Gi", "static", "", rwx), []corev1.PersistentVolume{staticPV("a", "static", "10Gi", corev1.VolumeAvailable, rwx)}, nil},
		{"a larger one binds too", claimOf("10Gi", "static", "", rwx), []corev1.PersistentVolume{staticPV("a", "static", "50Gi", corev1.VolumeAvailable, rwx)}, nil},
		{"only a smaller one: the size to set", claimOf("10Gi", "static", "", rwx), []corev1.PersistentVolume{staticPV("a", "static", "8Gi", corev1.VolumeAvailable, rwx)},
			[]string{"a (8Gi", "capacity 8Gi < 10Gi", "--set persistence.size=8Gi", "stay Pending"}},
		{"wrong modes: no size advice", claimOf("10Gi", "static", "", rwx), []corev1.PersistentVolume{staticPV("a", "static", "8Gi", corev1.VolumeAvailable, corev1.ReadWriteOnce)},
			[]string{"no ReadWriteMany", "capacity 8Gi"}},
		{"reserved and released volumes", claimOf("10Gi", "static", "", rwx), []corev1.PersistentVolume{reserved, released},
			[]string{"reserved for claim other/data", "clear its spec.claimRef"}},
		{"class with no volumes", claimOf("10Gi", "static", "", rwx), []corev1.PersistentVolume{staticPV("a", "other", "10Gi", corev1.VolumeAvailable, rwx)},
			[]string{`StorageClass "static"`, "no volumes at all"}},
		{"named volume missing", claimOf("10Gi", "", "pv-gone", rwx), nil, []string{`"pv-gone"`, "does not exist"}},
		{"named volume too small", claimOf("10Gi", "", "pv-1", rwx), []corev1.PersistentVolume{staticPV("pv-1", "", "5Gi", corev1.VolumeAvailable, rwx)},
			[]string{"--set persistence.size=5Gi"}},
		{"named volume of another class", claimOf("10Gi", "nfs-csi", "pv-1", rwx), []corev1.PersistentVolume{staticPV("pv-1", "other", "10Gi", corev1.VolumeAvailable, rwx)},
			[]string{`class "other", not "nfs-csi"`}},
		{"the chart's NFS claim and volume", claimOf("10Gi", "octopus-agent-nfs-prod-csi", "octopus-agent-nfs-prod-pv-10gi", rwx),
			[]corev1.PersistentVolume{staticPV("octopus-agent-nfs-prod-pv-10gi", "octopus-agent-nfs-prod-csi", "10Gi", corev1.VolumeAvailable, rwx)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Unbindable(c.claim, ptr.Deref(c.claim.Spec.StorageClassName, ""), c.volumes)
			if (got == "") != (c.want == nil) {
				t.Fatalf("got %q, want binding=%v", got, c.want == nil)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Fatalf("message lacks %q: %s", w, got)
				}
			}
		})
	}
	if !NeedsExistingVolume(claimOf("1Gi", "x", "", rwx), "kubernetes.io/no-provisioner") || NeedsExistingVolume(claimOf("1Gi", "x", "", rwx), "efs.csi.aws.com") ||
		!NeedsExistingVolume(claimOf("1Gi", "x", "pv", rwx), "efs.csi.aws.com") {
		t.Fatal("NeedsExistingVolume")
	}
}
