package storage

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	fs    = corev1.PersistentVolumeFilesystem
	block = corev1.PersistentVolumeBlock
)

// sc builds a StorageClass; kv alternates parameter keys and values.
func sc(name, provisioner string, kv ...string) *storagev1.StorageClass {
	c := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner}
	if len(kv) > 0 {
		c.Parameters = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			c.Parameters[kv[i]] = kv[i+1]
		}
	}
	return c
}

func annotated(c *storagev1.StorageClass, kv ...string) *storagev1.StorageClass {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Annotations[kv[i]] = kv[i+1]
	}
	return c
}

func boolp(b bool) *bool { return &b }

func hasNote(a Answer, substr string) bool {
	for _, n := range a.Notes {
		if strings.Contains(n, substr) {
			return true
		}
	}
	return false
}

func mustOverrides(t *testing.T, yaml string) *Overrides {
	t.Helper()
	o, err := ParseOverrides([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatalf("ParseOverrides: %v", err)
	}
	return o
}

func checkAnswer(t *testing.T, a Answer, v Verdict, s Source) {
	t.Helper()
	if a.Verdict != v || a.Source != s {
		t.Fatalf("got %s from %s, want %s from %s\nanswer: %s", a.Verdict, a.Source, v, s, a.Message())
	}
	if a.Reason == "" {
		t.Fatalf("answer has no reason: %+v", a)
	}
}
