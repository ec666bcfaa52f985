package workspace

import (
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

// The marks are plain-string annotations the mutating webhook leaves on every script pod it
// admits, so the final state can be checked without facts and without parsing JSON: by
// CheckFinalState here and by the ValidatingAdmissionPolicy in manifests/base, which the API
// server runs in-process after every mutating webhook (CEL reads strings, not our record).
const (
	// VolumeMark names the pod volume that carries the workspace claim.
	VolumeMark = "workspace-webhook.io/volume"
	// MountPathMark is the workspace path every container mounts the volume at (or has taken).
	MountPathMark = "workspace-webhook.io/mount-path"
	// NodeMark is the node the pod is pinned to: set for ReadWriteOnce workspaces, empty or
	// absent when the pod may run anywhere.
	NodeMark = "workspace-webhook.io/node"
)

// marks are the values of the mark annotations for one pod.
type marks struct {
	volume, mountPath, node string
}

// markAnnotations lists the annotations to write, in a fixed order: the marks whose value
// differs from the pod's, and the record when anything else changes. A node mark left by
// someone else on a pod that is not pinned is blanked (an add replaces it; nothing is removed).
func markAnnotations(pod *corev1.Pod, m marks) [][2]string {
	var kv [][2]string
	for _, mark := range [][2]string{{VolumeMark, m.volume}, {MountPathMark, m.mountPath}, {NodeMark, m.node}} {
		have, ok := pod.Annotations[mark[0]]
		if have == mark[1] && (ok || mark[0] == NodeMark) {
			continue // a missing node mark means "not pinned" already
		}
		kv = append(kv, mark)
	}
	return kv
}

// annotationOps adds the annotations kv: one operation creating the map when the pod has
// none, else one per key (an add on an existing key replaces its value).
func annotationOps(pod *corev1.Pod, kv [][2]string) []jsonpatch.Operation {
	if len(kv) == 0 {
		return nil
	}
	if len(pod.Annotations) == 0 {
		m := make(map[string]string, len(kv))
		for _, p := range kv {
			m[p[0]] = p[1]
		}
		return []jsonpatch.Operation{add("/metadata/annotations", m)}
	}
	ops := make([]jsonpatch.Operation, 0, len(kv))
	for _, p := range kv {
		ops = append(ops, add("/metadata/annotations/"+escapePointer(p[0]), p[1]))
	}
	return ops
}
