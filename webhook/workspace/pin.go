package workspace

import (
	"fmt"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
)

// NodeNameField is the node field a matchFields requirement can select on.
const NodeNameField = "metadata.name"

// PinRequirement is the requirement that pins a pod to node.
func PinRequirement(node string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: NodeNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}
}

// hasPin tells whether a term carries the pin requirement for node. Such a term can only ever
// match that node (or nothing, when its other requirements exclude it), so it is settled:
// pinning it again would add a duplicate, and the validation must count it as pinned.
func hasPin(term corev1.NodeSelectorTerm, node string) bool {
	for _, r := range term.MatchFields {
		if r.Key == NodeNameField && r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 && r.Values[0] == node {
			return true
		}
	}
	return false
}

// termCanMatch tells whether a term can select the node. With the node object it is the
// scheduler's own matching (labels and fields); without it only the metadata.name fields can
// be judged, and a term is assumed to match unless they exclude the node. A term the API
// server will reject as invalid is left for it to reject (counted as matching here).
func termCanMatch(term corev1.NodeSelectorTerm, node string, n *corev1.Node) bool {
	if n != nil {
		ok, err := corev1helpers.MatchNodeSelectorTerms(n, &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term}})
		return ok || err != nil
	}
	for _, r := range term.MatchFields {
		if r.Key != NodeNameField {
			continue
		}
		has := contains(r.Values, node)
		if (r.Operator == corev1.NodeSelectorOpIn && !has) || (r.Operator == corev1.NodeSelectorOpNotIn && has) {
			return false
		}
	}
	return true
}

// emptyTerm matches no node at all (Kubernetes semantics); it is left alone.
func emptyTerm(t corev1.NodeSelectorTerm) bool {
	return len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0
}

func requiredTerms(pod *corev1.Pod) []corev1.NodeSelectorTerm {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	return a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
}

// IsPinned reports whether the pod can only ever run on node: bound to it, or every
// non-empty required nodeSelectorTerm requires exactly that node.
func IsPinned(pod *corev1.Pod, node string) bool {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName == node
	}
	pinned := false
	for _, t := range requiredTerms(pod) {
		if emptyTerm(t) {
			continue
		}
		if !hasPin(t, node) {
			return false
		}
		pinned = true
	}
	return pinned
}

// pinConflict explains why the pod's own node selection can never place it on node, or
// returns "". Terms are ORed: the pod conflicts only when no non-empty term can match.
func pinConflict(pod *corev1.Pod, node string, n *corev1.Node) string {
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != node {
		return fmt.Sprintf("spec.nodeName binds it to node %q", pod.Spec.NodeName)
	}
	if n != nil && len(pod.Spec.NodeSelector) > 0 && !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(n.Labels)) {
		return fmt.Sprintf("its nodeSelector %s does not match that node's labels", labels.Set(pod.Spec.NodeSelector))
	}
	terms := requiredTerms(pod)
	if len(terms) == 0 {
		return ""
	}
	for _, t := range terms {
		if !emptyTerm(t) && termCanMatch(t, node, n) {
			return ""
		}
	}
	return "no term of its required node affinity can match that node"
}

// pinOps returns the add-only operations that AND the pin into every existing required
// nodeSelectorTerm. Appending a new term instead would OR it with the others and pin nothing.
// A term that can never match node gets the pin too: it then matches no node at all, exactly
// like an empty term, instead of offering the scheduler another node.
func pinOps(pod *corev1.Pod, node string) []jsonpatch.Operation {
	if pod.Spec.NodeName == node {
		return nil
	}
	req := PinRequirement(node)
	term := corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req}}
	required := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term}}
	a := pod.Spec.Affinity
	switch {
	case a == nil:
		return []jsonpatch.Operation{add("/spec/affinity", &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: required}})}
	case a.NodeAffinity == nil:
		return []jsonpatch.Operation{add("/spec/affinity/nodeAffinity", &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: required})}
	case a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil:
		return []jsonpatch.Operation{add("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution", required)}
	}
	const termsPath = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms"
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return []jsonpatch.Operation{add(termsPath, []corev1.NodeSelectorTerm{term})}
	}
	var ops []jsonpatch.Operation
	for i, t := range terms {
		if emptyTerm(t) || hasPin(t, node) {
			continue
		}
		ops = append(ops, appendTo(fmt.Sprintf("%s/%d/matchFields", termsPath, i), len(t.MatchFields), req))
	}
	return ops
}

func contains(values []string, v string) bool {
	for _, x := range values {
		if x == v {
			return true
		}
	}
	return false
}
