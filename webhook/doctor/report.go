// Package doctor tells a cluster admin what the webhook would tell them one object at a
// time, for the whole cluster at once: which StorageClasses can serve ReadWriteMany, every
// agent's storage and where its volume is, and each problem with the fix to apply. Diagnose
// is pure (a Snapshot in, a Report out) and judges with the webhook's own code (storage.Judge,
// agent.IsTentacle, workspace.ModeOf); Gather reads the Snapshot from a cluster.
package doctor

// Severity of a problem; --fail-on picks the lowest that fails the command.
type Severity string

const (
	Warning Severity = "warning"
	Error   Severity = "error"
)

// Report is the doctor's answer.
type Report struct {
	Classes  []ClassRow `json:"storageClasses"`
	Agents   []AgentRow `json:"agents"`
	Problems []Problem  `json:"problems"`
}

// ClassRow is one StorageClass with its ReadWriteMany verdict (Filesystem volumes).
type ClassRow struct {
	Name          string `json:"name"`
	Provisioner   string `json:"provisioner"`
	Default       bool   `json:"default"`
	BindingMode   string `json:"bindingMode"`
	ReadWriteMany string `json:"readWriteMany"` // Supported, Unsupported, Unknown
	Source        string `json:"source"`        // StorageClassAnnotation, OverrideFile, BuiltInTable, ClusterEvidence, None
	Reason        string `json:"reason"`
}

// AgentRow is one installed agent (Helm release) and its workspace.
type AgentRow struct {
	Namespace       string         `json:"namespace"`
	Release         string         `json:"release"`
	Name            string         `json:"name"` // the chart's name: nameOverride or octopus-agent
	ChartVersion    string         `json:"chartVersion,omitempty"`
	TentacleVersion string         `json:"tentacleVersion,omitempty"`
	Worker          bool           `json:"worker"`
	Claim           string         `json:"claim"`
	AccessModes     []string       `json:"accessModes"`
	StorageClass    string         `json:"storageClass"`
	Mode            string         `json:"mode"` // RWO pinned, RWX spread, in-cluster NFS, RWOP (broken), no claim
	Node            string         `json:"node,omitempty"`
	ScriptPods      map[string]int `json:"scriptPods,omitempty"` // node ("" = not scheduled) -> count
}

// Problem is one thing to fix, on one object, with how.
type Problem struct {
	Severity Severity `json:"severity"`
	Object   string   `json:"object"`
	Problem  string   `json:"problem"`
	Fix      string   `json:"fix"`
}

// Worst is the highest severity among the problems ("" when there are none).
func (r Report) Worst() Severity {
	worst := Severity("")
	for _, p := range r.Problems {
		if p.Severity == Error {
			return Error
		}
		worst = Warning
	}
	return worst
}

// Modes an agent's workspace can be in.
const (
	ModePinned   = "RWO pinned"
	ModeSpread   = "RWX spread"
	ModeNFS      = "in-cluster NFS"
	ModeRWOP     = "ReadWriteOncePod (broken)"
	ModeNoClaim  = "no claim"
	modeUnknown  = "unknown"
	chartPrefix  = "kubernetes-agent-"
	chartOCI     = "oci://registry-1.docker.io/octopusdeploy/kubernetes-agent"
	nfsDriver    = "nfs.csi.k8s.io"
	defaultClass = "storageclass.kubernetes.io/is-default-class"
)
