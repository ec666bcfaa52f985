package workspace

import (
	"encoding/json"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

// RecordAnnotation holds, on each mutated pod, what the webhook did and why.
const RecordAnnotation = "workspace-webhook.io/workspace"

// Record is the value of RecordAnnotation.
type Record struct {
	Claim      string   `json:"claim"`
	Volume     string   `json:"volume"`
	MountPath  string   `json:"mountPath"`
	Mode       Mode     `json:"mode"`
	MountedIn  []string `json:"mountedIn,omitempty"`  // containers the webhook added the mount to
	Node       string   `json:"node,omitempty"`       // node the pod was pinned to
	NodeSource string   `json:"nodeSource,omitempty"` // why that node holds the volume
	Injected   []string `json:"injected,omitempty"`   // what was added: volume, mounts, nodeAffinity
}

// priorRecord reads the record of an earlier invocation; a missing or unreadable one is empty.
func priorRecord(pod *corev1.Pod) Record {
	var r Record
	if v, ok := pod.Annotations[RecordAnnotation]; ok {
		_ = json.Unmarshal([]byte(v), &r) // an unreadable record is replaced, never trusted
	}
	return r
}

func (r *Record) addMountedIn(container string) {
	if !contains(r.MountedIn, container) {
		r.MountedIn = append(r.MountedIn, container)
	}
}

func (r *Record) addInjected(what string) {
	if !contains(r.Injected, what) {
		r.Injected = append(r.Injected, what)
	}
}

// value is the record as its annotation holds it.
func (r Record) value() string {
	b, _ := json.Marshal(r) // a struct of strings always marshals
	return string(b)
}

func recordOp(pod *corev1.Pod, r Record) jsonpatch.Operation {
	return annotationOps(pod, [][2]string{{RecordAnnotation, r.value()}})[0]
}
