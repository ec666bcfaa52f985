package agent

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheByObject scopes the informer cache to what the webhook reads on every request:
// chart v3 Tentacle pods (component label, any nameOverride) and the agent chart's claims,
// both by label and trimmed to the fields used, plus Nodes trimmed to what decides whether a
// pod can run there. Never every pod or claim of the cluster: memory must not grow with the
// cluster (issue 6 measured 22 MiB for 10,000 claims, volumes and attachments even when
// trimmed). Chart v1/v2 Tentacle pods carry no component label: see LegacyPodsCache. Other
// claims are one live GET; volumes and attachments are read live on the rare paths.
func CacheByObject() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&corev1.Pod{}: {
			Label:     labels.SelectorFromSet(labels.Set{ComponentLabel: TentacleValue}),
			Transform: trimTentaclePod,
		},
		&corev1.PersistentVolumeClaim{}: {
			Label:     labels.SelectorFromSet(labels.Set{ChartNameLabel: ChartName}),
			Transform: trimClaim,
		},
		&corev1.Node{}: {Transform: trimNode},
	}
}

// LegacyPodsByObject scopes the second pod cache: pods with the chart's default name label,
// which is how chart v1 and v2 Tentacle pods (no component label) can be selected. It also
// holds the pre-install hook pod (v2 and later), which is no Tentacle (see IsTentacle). A
// label selector cannot OR two labels, so this is a cache of its own; a v1/v2 agent
// installed with nameOverride is found by a live, label-selected list instead.
func LegacyPodsByObject() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&corev1.Pod{}: {
			Label:     labels.SelectorFromSet(labels.Set{ChartNameLabel: ChartName}),
			Transform: trimTentaclePod,
		},
	}
}

func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Labels: m.Labels, CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
	}
}

// trimTentaclePod keeps name, labels, node, phase, claim volumes and the claim env var.
var trimTentaclePod toolscache.TransformFunc = func(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{ObjectMeta: trimMeta(p.ObjectMeta)}
	out.Spec.NodeName = p.Spec.NodeName
	out.Status.Phase = p.Status.Phase
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out.Spec.Volumes = append(out.Spec.Volumes, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.PersistentVolumeClaim.ClaimName}}})
		}
	}
	for _, c := range p.Spec.Containers {
		tc := corev1.Container{Name: c.Name, VolumeMounts: c.VolumeMounts}
		for _, e := range c.Env {
			if e.Name == ClaimNameEnv {
				tc.Env = append(tc.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
			}
		}
		out.Spec.Containers = append(out.Spec.Containers, tc)
	}
	return out, nil
}

// trimNode keeps what decides whether a pod pinned to the node can run there: labels (node
// affinity), cordon, taints and the Ready condition.
var trimNode toolscache.TransformFunc = func(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{ObjectMeta: trimMeta(n.ObjectMeta)}
	out.Spec.Unschedulable = n.Spec.Unschedulable
	out.Spec.Taints = n.Spec.Taints
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{{Type: c.Type, Status: c.Status, Reason: c.Reason, LastTransitionTime: c.LastTransitionTime}}
		}
	}
	return out, nil
}

var trimClaim toolscache.TransformFunc = func(obj any) (any, error) {
	c, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return obj, nil
	}
	out := &corev1.PersistentVolumeClaim{ObjectMeta: trimMeta(c.ObjectMeta)}
	out.Annotations = pick(c.Annotations, corev1.BetaStorageClassAnnotation)
	out.Spec.AccessModes = c.Spec.AccessModes
	out.Spec.StorageClassName = c.Spec.StorageClassName
	out.Spec.VolumeName = c.Spec.VolumeName
	out.Spec.VolumeMode = c.Spec.VolumeMode
	out.Status.Phase = c.Status.Phase
	out.Status.AccessModes = c.Status.AccessModes
	return out, nil
}

func pick(m map[string]string, keys ...string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
