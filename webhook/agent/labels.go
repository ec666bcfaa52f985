package agent

// Labels, annotations and env vars every Tentacle build sets (Octopus Kubernetes agent chart).
const (
	ComponentLabel    = "agent.octopus.com/component"
	TentacleValue     = "tentacle"
	InstanceLabel     = "app.kubernetes.io/instance"
	ReleaseAnnotation = "meta.helm.sh/release-name"
	ClaimNameEnv      = "OCTOPUS__K8STENTACLE__PODVOLUMECLAIMNAME"
)
