package workspace

import (
	"fmt"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

// NodeNameField is the node field a matchFields requirement can select on.
const NodeNameField = "metadata.name"

// PinRequirement is the requirement that pins a pod to node.
func PinRequirement(node string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: NodeNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}
}

type termPin int

const (
	termUnpinned  termPin = iota // says nothing that settles the node
	termPinned                   // already requires exactly this node
	termElsewhere                // can never match this node
)

// pinOfTerm tells how a nodeSelectorTerm relates to node through its metadata.name fields.
func pinOfTerm(term corev1.NodeSelectorTerm, node string) termPin {
	state := termUnpinned
	for _, r := range term.MatchFields {
		if r.Key != NodeNameField {
			continue
		}
		has := contains(r.Values, node)
		switch r.Operator {
		case corev1.NodeSelectorOpIn:
			if !has {
				return termElsewhere
			}
			if len(r.Values) == 1 {
				state = termPinned
			}
		case corev1.NodeSelectorOpNotIn:
			if has {
				return termElsewhere
			}
		}
	}
	return state
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
		if pinOfTerm(t, node) != termPinned {
			return false
		}
		pinned = true
	}
	return pinned
}

// pinConflict explains why the pod can never run on node, or returns "".
func pinConflict(pod *corev1.Pod, node string) string {
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != node {
		return fmt.Sprintf("spec.nodeName binds it to node %q", pod.Spec.NodeName)
	}
	terms := requiredTerms(pod)
	if len(terms) == 0 {
		return ""
	}
	for _, t := range terms {
		if !emptyTerm(t) && pinOfTerm(t, node) != termElsewhere {
			return ""
		}
	}
	return "no term of its required node affinity can match that node"
}

// pinOps returns the add-only operations that AND the pin into every existing required
// nodeSelectorTerm. Appending a new term instead would OR it with the others and pin nothing.
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
		if emptyTerm(t) || pinOfTerm(t, node) == termPinned {
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
