package storage

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResolveClassName(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	class := func(name string, created time.Time, ann ...string) storagev1.StorageClass {
		c := sc(name, "nfs.csi.k8s.io")
		c.CreationTimestamp = metav1.NewTime(created)
		return *annotated(c, ann...)
	}
	isDefault := []string{AnnotationIsDefaultClass, "true"}
	betaDefault := []string{AnnotationBetaIsDefaultClass, "true"}
	plain := []storagev1.StorageClass{class("gp3", t0), class("nfs", t0)}
	oneDefault := append(plain[:2:2], class("standard", t0, isDefault...))
	severalDefaults := []storagev1.StorageClass{
		class("old-default", t0, isDefault...),
		class("new-b", t0.Add(time.Hour), isDefault...),
		class("new-a", t0.Add(time.Hour), betaDefault...),
		class("newest-not-default", t0.Add(2*time.Hour), AnnotationIsDefaultClass, "false"),
		class("newest-typo", t0.Add(2*time.Hour), AnnotationIsDefaultClass, "True"),
	}
	str := func(s string) *string { return &s }
	claim := func(spec *string, beta ...string) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: spec}}
		if len(beta) > 0 {
			c.Annotations = map[string]string{corev1.BetaStorageClassAnnotation: beta[0]}
		}
		return c
	}
	tests := []struct {
		name    string
		claim   *corev1.PersistentVolumeClaim
		classes []storagev1.StorageClass
		want    string
		found   bool
		explain string
	}{
		{"nil claim", nil, plain, "", false, "no claim"},
		{"explicit", claim(str("nfs")), oneDefault, "nfs", true, "spec.storageClassName names StorageClass nfs"},
		{"explicit missing", claim(str("gone")), plain, "gone", false, "does not exist"},
		{"explicit empty is static binding", claim(str("")), oneDefault, "", false, "static binding"},
		{"beta annotation wins", claim(str("nfs"), "gp3"), plain, "gp3", true, "annotation " + corev1.BetaStorageClassAnnotation},
		{"beta annotation empty", claim(str("nfs"), ""), oneDefault, "", false, "static binding"},
		{"beta annotation without spec", claim(nil, "nfs"), oneDefault, "nfs", true, "names StorageClass nfs"},
		{"default", claim(nil), oneDefault, "standard", true, "default StorageClass standard"},
		{"no default", claim(nil), plain, "", false, "no default StorageClass"},
		{"no classes", claim(nil), nil, "", false, "no default StorageClass"},
		{"several defaults: newest, then name", claim(nil), severalDefaults, "new-a", true, "3 StorageClasses are marked default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, found, explain := ResolveClassName(tt.claim, tt.classes)
			if name != tt.want || found != tt.found || !strings.Contains(explain, tt.explain) {
				t.Fatalf("got (%q, %v, %q), want (%q, %v, ...%q...)", name, found, explain, tt.want, tt.found, tt.explain)
			}
		})
	}
}

func TestDefaultClassOrderDoesNotDependOnInput(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name string, at time.Time) storagev1.StorageClass {
		c := annotated(sc(name, "x"), AnnotationIsDefaultClass, "true")
		c.CreationTimestamp = metav1.NewTime(at)
		return *c
	}
	a, b, c := mk("b", t0), mk("a", t0), mk("z", t0.Add(-time.Minute))
	for _, classes := range [][]storagev1.StorageClass{{a, b, c}, {c, b, a}, {b, c, a}} {
		if name, _, _ := ResolveClassName(&corev1.PersistentVolumeClaim{}, classes); name != "a" {
			t.Fatalf("got %s, want a (same age: first by name)", name)
		}
	}
}
