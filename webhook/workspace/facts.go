package workspace

import corev1 "k8s.io/api/core/v1"

// Config is what the admin can change about the workspace.
type Config struct {
	// MountPath is where script containers expect the workspace (Tentacle: /octopus).
	MountPath string
	// VolumeName is the name given to an injected workspace volume (Tentacle: tentacle-home).
	VolumeName string
	// FallbackVolumeName is used when VolumeName is already taken by an unrelated volume.
	FallbackVolumeName string
}

// DefaultConfig matches what every Tentacle build uses.
func DefaultConfig() Config {
	return Config{MountPath: "/octopus", VolumeName: "tentacle-home", FallbackVolumeName: "tentacle-workspace"}
}

// Facts are what the webhook learned from the cluster about the agent a script pod belongs to.
// The facts layer (package agent) gathers them; this package only reads them.
type Facts struct {
	// Agent identifies the agent: its namespace and Helm release ("" when the pod names none).
	Agent AgentRef
	// TentaclePods is the number of Tentacle pods of this agent found in the namespace.
	TentaclePods int
	// TentaclePod names one of them (the newest), "" when there is none.
	TentaclePod string
	// ClaimName is the agent's workspace claim ("" when it could not be determined).
	ClaimName string
	// ClaimSource says how ClaimName was found, for messages and the record.
	ClaimSource string
	// Claim is the workspace claim, nil when it does not exist.
	Claim *corev1.PersistentVolumeClaim
	// Node is the node holding the workspace volume, "" when no node can be known yet.
	Node string
	// NodeSource says why Node holds the volume (which Tentacle pod or VolumeAttachment).
	NodeSource string
	// NodeInfo is the Node object named by Node (labels, taints, cordon, Ready condition), nil
	// when it was not looked up or does not exist.
	NodeInfo *corev1.Node
	// NodeMissing: Node was looked up and does not exist (deleted with the pod still on it).
	NodeMissing bool
}

// AgentRef names an agent.
type AgentRef struct {
	Namespace string
	Release   string
}

func (a AgentRef) String() string {
	if a.Release == "" {
		return a.Namespace
	}
	return a.Namespace + "/" + a.Release
}
