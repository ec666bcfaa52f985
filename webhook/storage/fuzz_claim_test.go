package storage

import (
	"flag"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/internal/fuzzcorpus"
)

var update = flag.Bool("update", false, "rewrite the committed fuzz seeds")

// FuzzClaimJudgement: for any claim (as the API server decodes it), any StorageClasses and
// any PersistentVolumes, the pure parts of a claim's judgement never panic, and:
//   - the class it resolves to is the one it names (annotation first), else the default class;
//     a class reported found exists; the answer does not depend on the order of the list;
//   - the ReadWriteMany answer for that class has a verdict, a source and a reason, and cluster
//     evidence only ever settles an Unknown: a verdict reached without evidence stands with it;
//   - the classes suggested instead are each judged Supported, sorted, without duplicates;
//   - Unbindable does not depend on the order of the volumes, names the claim when it refuses,
//     and finds the claim bindable once a volume that fits it exactly exists.
func FuzzClaimJudgement(f *testing.F) {
	f.Add([]byte(`{"metadata":{"name":"octopus-agent-prod-pvc","namespace":"ns"},"spec":{"accessModes":["ReadWriteMany"],"storageClassName":"efs","resources":{"requests":{"storage":"10Gi"}}}}`),
		[]byte(`[{"metadata":{"name":"efs"},"provisioner":"efs.csi.aws.com","parameters":{"provisioningMode":"efs-ap"}},{"metadata":{"name":"gp3","annotations":{"storageclass.kubernetes.io/is-default-class":"true"}},"provisioner":"ebs.csi.aws.com"}]`),
		[]byte(`[]`), byte(3))
	f.Add([]byte(`{"metadata":{"name":"c","namespace":"ns"},"spec":{"accessModes":["ReadWriteMany","ReadWriteOnce"],"resources":{"requests":{"storage":"8Gi"}}}}`),
		[]byte(`[{"metadata":{"name":"a","creationTimestamp":"2024-01-01T00:00:00Z","annotations":{"storageclass.kubernetes.io/is-default-class":"true"}},"provisioner":"csi.example.com"},{"metadata":{"name":"b","creationTimestamp":"2024-01-01T00:00:00Z","annotations":{"storageclass.beta.kubernetes.io/is-default-class":"true"}},"provisioner":"kubernetes.io/no-provisioner"}]`),
		[]byte(`[{"metadata":{"name":"pv-1"},"spec":{"storageClassName":"b","accessModes":["ReadWriteMany"],"capacity":{"storage":"5Gi"}},"status":{"phase":"Available"}},{"metadata":{"name":"pv-2","annotations":{"volume.beta.kubernetes.io/storage-class":"a"}},"spec":{"accessModes":["ReadWriteMany"],"capacity":{"storage":"20Gi"}},"status":{"phase":"Bound"}}]`),
		byte(1))
	f.Fuzz(func(t *testing.T, claimJSON, classesJSON, volumesJSON []byte, nodes byte) {
		var claim corev1.PersistentVolumeClaim
		var classes []storagev1.StorageClass
		var volumes []corev1.PersistentVolume
		if sigsjson.UnmarshalCaseSensitivePreserveInts(claimJSON, &claim) != nil ||
			sigsjson.UnmarshalCaseSensitivePreserveInts(classesJSON, &classes) != nil ||
			sigsjson.UnmarshalCaseSensitivePreserveInts(volumesJSON, &volumes) != nil {
			return // the API server and the cache never hold what does not decode
		}
		classes, volumes = uniqueClasses(classes), uniqueVolumes(volumes) // names are unique in a cluster
		checkResolution(t, &claim, classes)
		name, found, _ := ResolveClassName(&claim, classes)
		mode := VolumeModeOf(claim.Spec.VolumeMode)
		if found {
			checkCapability(t, findClass(classes, name), mode, volumes, int(nodes))
		}
		checkAlternatives(t, classes, mode, volumes, int(nodes))
		checkBinding(t, &claim, name, volumes)
	})
}

func checkResolution(t *testing.T, claim *corev1.PersistentVolumeClaim, classes []storagev1.StorageClass) {
	t.Helper()
	name, found, how := ResolveClassName(claim, classes)
	if how == "" {
		t.Fatal("a class resolution without its explanation")
	}
	if found && findClass(classes, name) == nil {
		t.Fatalf("resolved to class %q, reported found, which is not in the list", name)
	}
	ann, hasAnn := claim.Annotations[corev1.BetaStorageClassAnnotation]
	switch {
	case hasAnn && name != ann:
		t.Fatalf("the beta annotation names %q, resolved to %q", ann, name)
	case !hasAnn && claim.Spec.StorageClassName != nil && name != *claim.Spec.StorageClassName:
		t.Fatalf("spec.storageClassName names %q, resolved to %q", *claim.Spec.StorageClassName, name)
	case !hasAnn && claim.Spec.StorageClassName == nil && name != "" && !isDefaultClass(findClass(classes, name)):
		t.Fatalf("a claim naming no class resolved to %q, which is not a default class", name)
	}
	if own := OwnClassName(claim); (hasAnn || claim.Spec.StorageClassName != nil) && own != name {
		t.Fatalf("OwnClassName %q differs from the class the claim names, %q", own, name)
	}
	reversed := slices.Clone(classes)
	slices.Reverse(reversed)
	if n, fd, _ := ResolveClassName(claim, reversed); n != name || fd != found {
		t.Fatalf("the resolution depends on the order of the classes: %q/%v, reversed %q/%v", name, found, n, fd)
	}
}

func checkCapability(t *testing.T, class *storagev1.StorageClass, mode corev1.PersistentVolumeMode, volumes []corev1.PersistentVolume, nodes int) {
	t.Helper()
	j := Judge{}
	without := j.ReadWriteMany(class, mode, Evidence{Nodes: nodes})
	ev := CollectEvidence(class.Name, mode, volumes)
	ev.Nodes = nodes
	with := j.ReadWriteMany(class, mode, ev)
	for _, a := range []Answer{without, with} {
		if !slices.Contains([]Verdict{Supported, Unsupported, Unknown}, a.Verdict) || a.Source == "" || a.Reason == "" || a.Class != class.Name {
			t.Fatalf("answer without verdict, source, reason or class: %+v", a)
		}
		if !strings.Contains(a.Message(), string(a.Verdict)) {
			t.Fatalf("message %q does not state the verdict", a.Message())
		}
	}
	if without.Verdict != Unknown && (with.Verdict != without.Verdict || with.Source != without.Source) {
		t.Fatalf("evidence overturned a settled answer: %s (%s) became %s (%s)", without.Verdict, without.Source, with.Verdict, with.Source)
	}
}

func checkAlternatives(t *testing.T, classes []storagev1.StorageClass, mode corev1.PersistentVolumeMode, volumes []corev1.PersistentVolume, nodes int) {
	t.Helper()
	evidence := func(class string) Evidence {
		ev := CollectEvidence(class, mode, volumes)
		ev.Nodes = nodes
		return ev
	}
	names := RWXCapableClasses(Judge{}, classes, mode, nodes, evidence)
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Fatalf("suggested classes not sorted or repeated: %v", names)
	}
	for _, n := range names {
		c := findClass(classes, n)
		if c == nil {
			t.Fatalf("suggested class %q does not exist", n)
		}
		if a := (Judge{}).ReadWriteMany(c, mode, evidence(n)); a.Verdict != Supported {
			t.Fatalf("suggested class %q is judged %s: %s", n, a.Verdict, a.Reason)
		}
	}
}

func checkBinding(t *testing.T, claim *corev1.PersistentVolumeClaim, class string, volumes []corev1.PersistentVolume) {
	t.Helper()
	why := Unbindable(claim, class, volumes)
	reversed := slices.Clone(volumes)
	slices.Reverse(reversed)
	if again := Unbindable(claim, class, reversed); again != why {
		t.Fatalf("the binding verdict depends on the order of the volumes:\n%s\n%s", why, again)
	}
	if why != "" && (!strings.Contains(why, claim.Namespace+"/"+claim.Name) || !strings.Contains(why, "Pending")) {
		t.Fatalf("refusal does not name the claim and what happens to it: %s", why)
	}
	fit := fittingVolume(claim, class)
	withFit := append([]corev1.PersistentVolume{fit}, slices.DeleteFunc(slices.Clone(volumes), func(pv corev1.PersistentVolume) bool { return pv.Name == fit.Name })...)
	if why := Unbindable(claim, class, withFit); why != "" {
		t.Fatalf("a volume that fits exactly is not found bindable: %s", why)
	}
}

// fittingVolume is an Available volume of the claim's class, modes, volume mode and size
// (named as the claim names its volume, if it does), reserved for nobody.
func fittingVolume(claim *corev1.PersistentVolumeClaim, class string) corev1.PersistentVolume {
	name := claim.Spec.VolumeName
	if name == "" {
		name = "fits-exactly"
	}
	mode := VolumeModeOf(claim.Spec.VolumeMode)
	size := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	return corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{StorageClassName: class, AccessModes: claim.Spec.AccessModes, VolumeMode: &mode,
			Capacity: corev1.ResourceList{corev1.ResourceStorage: size.DeepCopy()}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable}}
}

func findClass(classes []storagev1.StorageClass, name string) *storagev1.StorageClass {
	for i := range classes {
		if classes[i].Name == name {
			return &classes[i]
		}
	}
	return nil
}

func uniqueClasses(in []storagev1.StorageClass) []storagev1.StorageClass {
	seen := map[string]bool{}
	return slices.DeleteFunc(in, func(c storagev1.StorageClass) bool { dup := seen[c.Name]; seen[c.Name] = true; return dup })
}

func uniqueVolumes(in []corev1.PersistentVolume) []corev1.PersistentVolume {
	seen := map[string]bool{}
	return slices.DeleteFunc(in, func(v corev1.PersistentVolume) bool { dup := seen[v.Name]; seen[v.Name] = true; return dup })
}

// TestHostileClaimSeeds keeps testdata/fuzz/FuzzClaimJudgement equal to hostileClaimSeeds
// (go test ./webhook/storage -run TestHostileClaimSeeds -update rewrites it).
func TestHostileClaimSeeds(t *testing.T) {
	fuzzcorpus.Sync(t, "FuzzClaimJudgement", *update, hostileClaimSeeds())
}

func hostileClaimSeeds() []fuzzcorpus.Seed {
	claim := func(spec string) []byte {
		return []byte(`{"metadata":{"name":"octopus-agent-prod-pvc","namespace":"octopus-agent-prod"},"spec":` + spec + `}`)
	}
	seed := func(name string, c []byte, classes, volumes string, nodes byte) fuzzcorpus.Seed {
		return fuzzcorpus.Seed{Name: name, Values: []any{c, []byte(classes), []byte(volumes), nodes}}
	}
	defaults := `[{"metadata":{"name":"z","creationTimestamp":"2024-01-01T00:00:00Z","annotations":{"storageclass.kubernetes.io/is-default-class":"true"}},"provisioner":"ebs.csi.aws.com"},` +
		`{"metadata":{"name":"a","creationTimestamp":"2024-01-01T00:00:00Z","annotations":{"storageclass.beta.kubernetes.io/is-default-class":"true"}},"provisioner":"file.csi.azure.com"},` +
		`{"metadata":{"name":"old","creationTimestamp":"2020-01-01T00:00:00Z","annotations":{"storageclass.kubernetes.io/is-default-class":"true"}},"provisioner":"x"}]`
	return []fuzzcorpus.Seed{
		seed("annotation-beats-spec", []byte(`{"metadata":{"name":"c","namespace":"n","annotations":{"volume.beta.kubernetes.io/storage-class":""}},"spec":{"storageClassName":"efs","accessModes":["ReadWriteMany"]}}`),
			`[{"metadata":{"name":"efs"},"provisioner":"efs.csi.aws.com"}]`, `[]`, 3),
		seed("three-defaults-same-second", claim(`{"accessModes":["ReadWriteMany"],"resources":{"requests":{"storage":"1Gi"}}}`), defaults, `[]`, 2),
		seed("names-a-missing-class-and-volume", claim(`{"storageClassName":"gone","volumeName":"pv-gone","accessModes":["ReadWriteMany"],"resources":{"requests":{"storage":"10Gi"}}}`),
			`[]`, `[]`, 0),
		seed("no-provisioner-with-every-kind-of-volume", claim(`{"storageClassName":"local","accessModes":["ReadWriteMany"],"volumeMode":"Block","resources":{"requests":{"storage":"10Gi"}}}`),
			`[{"metadata":{"name":"local"},"provisioner":"kubernetes.io/no-provisioner"}]`,
			`[{"metadata":{"name":"small"},"spec":{"storageClassName":"local","accessModes":["ReadWriteMany"],"volumeMode":"Block","capacity":{"storage":"9Gi"}},"status":{"phase":"Available"}},`+
				`{"metadata":{"name":"reserved"},"spec":{"storageClassName":"local","accessModes":["ReadWriteMany"],"volumeMode":"Block","capacity":{"storage":"10Gi"},"claimRef":{"namespace":"other","name":"data"}},"status":{"phase":"Available"}},`+
				`{"metadata":{"name":"released"},"spec":{"storageClassName":"local","accessModes":["ReadWriteMany"],"capacity":{"storage":"10Gi"}},"status":{"phase":"Released"}},`+
				`{"metadata":{"name":"fs-bound"},"spec":{"storageClassName":"local","accessModes":["ReadWriteMany"],"capacity":{"storage":"10Gi"}},"status":{"phase":"Bound"}}]`, 1),
		seed("odd-volume-mode-and-no-request", claim(`{"storageClassName":"hostpath","accessModes":["ReadWriteMany","ReadWriteOncePod"],"volumeMode":"Neither"}`),
			`[{"metadata":{"name":"hostpath","annotations":{"workspace-webhook.io/supported-access-modes":"[\"ReadWriteMany\"","storageclass.kubesphere.io/supported-access-modes":"[\"ReadWriteOnce\"]"}},"provisioner":"k8s.io/minikube-hostpath"}]`,
			`[{"metadata":{"name":"p"},"spec":{"accessModes":["ReadWriteMany"],"volumeMode":"Neither"},"status":{"phase":"Bound"}}]`, 1),
		seed("contradicting-evidence", claim(`{"storageClassName":"gp2","accessModes":["ReadWriteMany"],"resources":{"requests":{"storage":"1Ei"}}}`),
			`[{"metadata":{"name":"gp2"},"provisioner":"kubernetes.io/aws-ebs","parameters":{"type":"io2"}}]`,
			`[{"metadata":{"name":"rwx","annotations":{"volume.beta.kubernetes.io/storage-class":"gp2"}},"spec":{"storageClassName":"other","accessModes":["ReadWriteMany"],"capacity":{"storage":"1Ki"}},"status":{"phase":"Bound"}}]`, 5),
	}
}
