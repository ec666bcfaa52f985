package workspace

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// CheckFinalState judges a script pod as it will be stored, after every mutating webhook,
// from the pod alone: what the mutating webhook established (its marks) must still hold.
// The workspace volume is still a claim volume of the pod, some container mounts it, every
// container mounts it or has the workspace path taken, and a pinned pod is still pinned.
//
// It is the Go twin of the ValidatingAdmissionPolicy the API server runs in-process
// (manifests/base/script-pod-policy.yaml): same checks, same order, same messages, held
// equal by a test over every golden fixture and fuzz input. The refusals that need facts
// (claim mode, node state, class capability) are the mutating webhook's, not this one's.
func CheckFinalState(pod *corev1.Pod) Result {
	volume, marked := pod.Annotations[VolumeMark]
	if !marked {
		return Result{Code: reason.OutOfScope, Message: "the pod carries no " + VolumeMark + " mark: the final-state policy does not apply"}
	}
	mountPath, node := pod.Annotations[MountPathMark], pod.Annotations[NodeMark]
	name := podName(pod)
	const fix = "exclude script pods (label octopus.com/scriptTicketId) from that webhook"
	if !hasClaimVolume(pod, volume) {
		return deny(reason.WorkspaceNotMounted, policyMessage("script pod "+name+": its workspace volume \""+volume+"\" is no longer a PersistentVolumeClaim volume of the pod: "+
			"a mutating webhook that ran after the workspace webhook removed or changed it; "+fix,
			"the script pod's workspace volume is no longer a PersistentVolumeClaim volume of the pod (a later mutating webhook changed it)"))
	}
	if !anyMounts(pod, volume) {
		return deny(reason.WorkspaceNotMounted, policyMessage("script pod "+name+": no container mounts its workspace volume \""+volume+"\", so the script cannot reach its files: "+
			"a mutating webhook that ran after the workspace webhook removed the mounts; "+fix,
			"no container of the script pod mounts its workspace volume (a later mutating webhook removed the mounts)"))
	}
	if missing := containersWithoutWorkspace(pod, volume, mountPath); len(missing) > 0 {
		return deny(reason.WorkspaceNotMounted, policyMessage("script pod "+name+": containers "+firstFew(missing)+" do not mount the workspace volume \""+volume+"\" at "+mountPath+": "+
			"a mutating webhook that ran after the workspace webhook added them; "+fix+" or have it mount \""+volume+"\" at "+mountPath,
			"containers of the script pod do not mount its workspace volume (a later mutating webhook added them)"))
	}
	if node != "" && !IsPinned(pod, node) {
		return deny(reason.WorkspaceNotPinned, policyMessage("script pod "+name+": its ReadWriteOnce workspace is held by node \""+node+"\", but the pod is no longer pinned there "+
			"(every required node affinity term must carry metadata.name In ["+node+"]) and would fail with a Multi-Attach error elsewhere: "+
			"a mutating webhook that ran after the workspace webhook changed its node selection; "+fix,
			"the script pod is no longer pinned to the node holding its ReadWriteOnce workspace (a later mutating webhook changed its node selection)"))
	}
	res := Result{Code: reason.WorkspaceValid, Node: node, Message: "workspace volume \"" + volume + "\" mounted"}
	return res
}

// policyMessage is the message the API server reports for a policy refusal: the policy's
// messageExpression (detailed), trimmed, unless it is empty, holds a line break or is longer
// than the API server accepts; then the validation's static message (fallback). Names and
// marks come from the pod, so either can happen (k8s.io/apiserver validating.validator).
func policyMessage(detailed, fallback string) string {
	m := strings.TrimSpace(detailed)
	if m == "" || strings.Contains(m, "\n") || len(m) > celconfig.MaxEvaluatedMessageExpressionSizeBytes {
		return fallback
	}
	return m
}

// firstFew lists up to three names, then how many more, keeping a message short whatever
// the pod (the API server drops a policy message over 5 KiB).
func firstFew(names []string) string {
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:3], ", ") + " and " + strconv.Itoa(len(names)-3) + " more"
}

// podName names a pod in a message: its name, or its generateName with a star.
func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName + "*"
}

func hasClaimVolume(pod *corev1.Pod, name string) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Name == name && v.PersistentVolumeClaim != nil {
			return true
		}
	}
	return false
}

// containersWithoutWorkspace lists the init and app containers that neither mount the
// workspace volume nor have the workspace path taken: the ones Mutate would have given the
// mount had they existed when it ran.
func containersWithoutWorkspace(pod *corev1.Pod, volume, mountPath string) []string {
	var names []string
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if needsMount(&cs[i], volume, mountPath) {
				names = append(names, cs[i].Name)
			}
		}
	}
	return names
}
