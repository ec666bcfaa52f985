package agent

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// NodeOfRunningTentacle returns the node of the agent's oldest running, not-terminating
// Tentacle pod that mounts claim (for the webhook and doctor alike). A running pod proves the
// volume is attached there, also mid-rollout while a new Tentacle pod waits on another node.
func NodeOfRunningTentacle(tentacles []corev1.Pod, claim string) (node, source string) {
	var running []*corev1.Pod
	for i := range tentacles {
		p := &tentacles[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" && mountsClaim(p, claim) {
			running = append(running, p)
		}
	}
	if len(running) == 0 {
		return "", ""
	}
	sort.Slice(running, func(i, j int) bool {
		a, b := running[i], running[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
	p := running[0]
	return p.Spec.NodeName, fmt.Sprintf("Tentacle pod %s/%s is running there", p.Namespace, p.Name)
}

// nodeOfAttachment returns the node an attached VolumeAttachment of volume names.
func nodeOfAttachment(attachments []storagev1.VolumeAttachment, volume string) (node, source string) {
	var names []string
	for _, va := range attachments {
		if va.Spec.Source.PersistentVolumeName != nil && *va.Spec.Source.PersistentVolumeName == volume &&
			va.Status.Attached && va.DeletionTimestamp == nil {
			names = append(names, va.Name)
			if node == "" {
				node = va.Spec.NodeName
				source = fmt.Sprintf("VolumeAttachment %s attaches volume %s there", va.Name, volume)
			}
		}
	}
	return node, source
}

// whyNoNode explains, for a denial, why no node holds the volume yet.
func whyNoNode(tentacles []corev1.Pod, claim, volume string) string {
	var states []string
	for _, p := range tentacles {
		if !mountsClaim(&p, claim) {
			continue
		}
		s := fmt.Sprintf("Tentacle pod %s/%s is %s", p.Namespace, p.Name, p.Status.Phase)
		if p.Spec.NodeName == "" {
			s += " and not scheduled"
		}
		if p.DeletionTimestamp != nil {
			s += " and terminating"
		}
		states = append(states, s)
	}
	if len(states) == 0 {
		states = append(states, "no Tentacle pod mounts it")
	}
	if volume == "" {
		return strings.Join(states, "; ") + "; the claim is not bound to a volume"
	}
	return strings.Join(states, "; ") + fmt.Sprintf("; volume %s is attached to no node", volume)
}
