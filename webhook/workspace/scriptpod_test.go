package workspace

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// assertScriptPodDecidesAlike holds the ScriptPod projection to its promise: the decisions
// on the projected pod are exactly those on the whole pod.
func assertScriptPodDecidesAlike(t *testing.T, podJSON []byte, full *corev1.Pod, f Facts) {
	t.Helper()
	var sp ScriptPod
	if err := json.Unmarshal(podJSON, &sp); err != nil {
		t.Fatalf("pod decodes but its ScriptPod does not: %v", err)
	}
	projected := sp.Pod()
	if a, b := Mutate(DefaultConfig(), full, f), Mutate(DefaultConfig(), projected, f); !reflect.DeepEqual(a, b) {
		t.Fatalf("Mutate differs on the ScriptPod projection:\nwhole pod: %+v\nprojection: %+v", a, b)
	}
	if a, b := CheckFinalState(full), CheckFinalState(projected); !reflect.DeepEqual(a, b) {
		t.Fatalf("CheckFinalState differs on the ScriptPod projection:\nwhole pod: %+v\nprojection: %+v", a, b)
	}
}

func TestScriptPodKeepsWhatDecisionsRead(t *testing.T) {
	raw := []byte(`{"metadata":{"name":"s","generateName":"g-","namespace":"ns","labels":{"a":"b"},"annotations":{"c":"d"},
		"managedFields":[{"manager":"x","fieldsV1":{"f:spec":{}}}]},
		"spec":{"nodeName":"n","volumes":[{"name":"w","persistentVolumeClaim":{"claimName":"c"}}],
		"initContainers":[{"name":"i","image":"busybox","volumeMounts":[{"name":"w","mountPath":"/octopus"}]}],
		"containers":[{"name":"s","image":"busybox","env":[{"name":"E","value":"v"}],"volumeMounts":[{"name":"w","mountPath":"/octopus","subPath":"x"}]}],
		"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["n"]}]}]}}}}}`)
	var sp ScriptPod
	if err := json.Unmarshal(raw, &sp); err != nil {
		t.Fatal(err)
	}
	var full corev1.Pod
	if err := json.Unmarshal(raw, &full); err != nil {
		t.Fatal(err)
	}
	want := full.DeepCopy()
	want.TypeMeta.APIVersion, want.TypeMeta.Kind = "v1", "Pod"
	want.ManagedFields = nil
	for _, cs := range [][]corev1.Container{want.Spec.InitContainers, want.Spec.Containers} {
		for i := range cs {
			cs[i] = corev1.Container{Name: cs[i].Name, VolumeMounts: cs[i].VolumeMounts}
		}
	}
	if got := sp.Pod(); !reflect.DeepEqual(got, want) {
		t.Fatalf("projection lost or invented fields:\ngot  %+v\nwant %+v", got, want)
	}
}
