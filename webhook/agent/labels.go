package agent

// Labels, annotations and env vars of the Octopus Kubernetes agent (chart charts/kubernetes-agent
// and Tentacle's script pod creator), by chart generation where they differ.
const (
	// ComponentLabel marks the Tentacle pod from chart v3 on; v1 and v2 Tentacle pods lack it.
	ComponentLabel = "agent.octopus.com/component"
	TentacleValue  = "tentacle"
	// ChartNameLabel is the chart's name label on every object of it but the NFS volume and
	// claim: nameOverride, default ChartName, in every generation.
	ChartNameLabel = "app.kubernetes.io/name"
	ChartName      = "octopus-agent"
	// InstanceLabel is the Helm release, on every object of the chart but the NFS ones.
	InstanceLabel = "app.kubernetes.io/instance"
	// ChartLabel is "kubernetes-agent-<chart version>" on the chart's objects, every generation.
	ChartLabel = "helm.sh/chart"
	// ChartLabelPrefix starts ChartLabel's value for this chart (whatever nameOverride says).
	ChartLabelPrefix = "kubernetes-agent-"
	// ScriptTicketLabel is on every script pod (Tentacle lists its pods by it).
	ScriptTicketLabel = "octopus.com/scriptTicketId"
	ReleaseAnnotation = "meta.helm.sh/release-name"
	// ClaimNameEnv is set on the Tentacle container in every generation (never on script pods).
	ClaimNameEnv = "OCTOPUS__K8STENTACLE__PODVOLUMECLAIMNAME"
)
