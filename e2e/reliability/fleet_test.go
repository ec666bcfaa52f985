package reliability

import (
	"context"
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// The agents both scenarios install: every chart generation in each storage mode
// (tentacle.Shapes), half of them again with nameOverride, on StorageClasses that say what
// they can serve as real ones do.

const (
	rwoClass      = "reliability-gp3"     // EBS: ReadWriteOnce only (built-in table)
	rwxClass      = "reliability-efs"     // EFS access points: ReadWriteMany (built-in table)
	defaultClass  = "reliability-default" // the cluster's default class (chart v3's default storage)
	workspacePath = "/octopus"
)

func storageClasses() []client.Object {
	wffc := ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)
	return []client.Object{
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: rwoClass}, Provisioner: "ebs.csi.aws.com", VolumeBindingMode: wffc},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: rwxClass}, Provisioner: "efs.csi.aws.com", VolumeBindingMode: wffc,
			Parameters: map[string]string{"provisioningMode": "efs-ap"}},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: defaultClass, Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
			Provisioner: "ebs.csi.aws.com", VolumeBindingMode: wffc},
	}
}

// fleetAgent is one installed agent and where its Tentacle runs.
type fleetAgent struct {
	shape tentacle.Shape
	agent tentacle.Agent
	node  string // the node its Tentacle pod runs on: RWO script pods must be pinned there
}

// kind is the agent's shape, with +nameOverride when installed with one.
func (f fleetAgent) kind() string {
	if f.agent.NameOverride != "" {
		return f.shape.Name + "+nameOverride"
	}
	return f.shape.Name
}

func (f fleetAgent) String() string { return f.agent.Namespace + " (" + f.kind() + ")" }

// fleet is n agents cycling through the shapes in an order that mixes generations and access
// modes in any first few (the second round of each with nameOverride), their Tentacles spread
// over nodes node-1..node-<nodes>.
func fleet(prefix string, n, nodes int) []fleetAgent {
	shapes := tentacle.Shapes(rwoClass, rwxClass)
	out := make([]fleetAgent, n)
	for i := range n {
		s := shapes[(i*5)%len(shapes)] // 5 is coprime with the 8 shapes: each round visits all
		a := s.Agent
		a.Namespace = fmt.Sprintf("%s-%04d-%s", prefix, i, s.Name)
		a.Release = fmt.Sprintf("r%04d", i) // distinct: the chart's NFS volume is cluster-scoped, named by release
		if (i/len(shapes))%2 == 1 {
			a.NameOverride = "build-agent"
		}
		node := fmt.Sprintf("node-%d", i%nodes+1)
		a.NodeSelector = map[string]string{corev1.LabelHostname: node}
		out[i] = fleetAgent{shape: s, agent: a, node: node}
	}
	return out
}

// shapeCounts describes a fleet: how many agents of each shape, pinned (RWO) or spread (RWX).
func shapeCounts(agents []fleetAgent) string {
	count := map[string]int{}
	for _, a := range agents {
		count[a.kind()]++
	}
	var parts []string
	for k, v := range count {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// checkScriptPod holds an admitted script pod to what the webhook promises: the agent's claim
// in exactly one volume, exactly one mount at the workspace path in every container, pinned to
// the Tentacle's node when the claim is ReadWriteOnce and not pinned at all otherwise.
func checkScriptPod(pod *corev1.Pod, f fleetAgent) error {
	if err := checkWorkspace(pod, f); err != nil {
		return err
	}
	return checkPin(pod, f)
}

// checkWorkspace: the agent's claim in exactly one volume, one mount at the workspace path in
// every container.
func checkWorkspace(pod *corev1.Pod, f fleetAgent) error {
	claim := f.agent.ClaimName()
	n := 0
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("pod %s/%s: claim %s in %d volumes, want 1", pod.Namespace, pod.Name, claim, n)
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			at := 0
			for _, m := range c.VolumeMounts {
				if path.Clean(m.MountPath) == workspacePath {
					at++
				}
			}
			if at != 1 {
				return fmt.Errorf("pod %s/%s: container %s has %d mounts at %s, want 1", pod.Namespace, pod.Name, c.Name, at, workspacePath)
			}
		}
	}
	return nil
}

// checkPin: pinned to the Tentacle's node when the claim is ReadWriteOnce, not pinned at all
// otherwise.
func checkPin(pod *corev1.Pod, f fleetAgent) error {
	if f.shape.Pinned {
		if !workspace.IsPinned(pod, f.node) || pod.Annotations[workspace.NodeMark] != f.node {
			return fmt.Errorf("pod %s/%s (RWO): not pinned to the Tentacle's node %s (mark %q, affinity %+v)", pod.Namespace, pod.Name, f.node, pod.Annotations[workspace.NodeMark], pod.Spec.Affinity)
		}
		return nil
	}
	if namePinned(pod) || pod.Annotations[workspace.NodeMark] != "" {
		return fmt.Errorf("pod %s/%s (RWX): pinned (mark %q, affinity %+v)", pod.Namespace, pod.Name, pod.Annotations[workspace.NodeMark], pod.Spec.Affinity)
	}
	return nil
}

// namePinned says whether any required node term selects nodes by name.
func namePinned(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, r := range t.MatchFields {
			if r.Key == workspace.NodeNameField {
				return true
			}
		}
	}
	return false
}

// scriptStyle is the k-th script pod's style: mostly the agent's own, one in ten a raw-script
// pod (the claim in an init container), one in ten from a ScriptPodTemplate naming no workspace.
func scriptStyle(a tentacle.Agent, k int) tentacle.Style {
	switch k % 10 {
	case 8:
		return tentacle.StyleRawScript
	case 9:
		return tentacle.StyleTemplate
	}
	return a.NormalStyle()
}

// webhookTally is what the webhook process counted: its decisions on script pods, the HTTP
// answers of its script-pod endpoint, and how long its decisions took.
type webhookTally struct {
	decisions map[string]float64 // "decision/reason" -> count, mutate-pod only
	answers   map[string]float64 // HTTP status code -> count, /mutate-script-pod
	took      map[string]float64 // histogram bucket upper bound ("le") -> cumulative count, mutate-pod
	reads     map[string]float64 // HTTP status code -> count of the webhook's own GETs and LISTs to the API server (live reads; watches are long-running)
}

func tallyOf(p *webhookprocess.Process) (webhookTally, error) {
	page, err := p.MetricsText()
	if err != nil {
		return webhookTally{}, err
	}
	t := webhookTally{decisions: map[string]float64{}, answers: map[string]float64{}, took: map[string]float64{}, reads: map[string]float64{}}
	decisions, err := webhookprocess.Samples(page, "workspace_webhook_decisions_total")
	if err != nil {
		return t, err
	}
	for _, s := range decisions {
		if s.Labels["webhook"] == audit.MutatePod {
			t.decisions[s.Labels["decision"]+"/"+s.Labels["reason"]] += s.Value
		}
	}
	answers, err := webhookprocess.Samples(page, "controller_runtime_webhook_requests_total")
	if err != nil {
		return t, err
	}
	for _, s := range answers {
		if s.Labels["webhook"] == "/mutate-script-pod" {
			t.answers[s.Labels["code"]] += s.Value
		}
	}
	took, err := webhookprocess.Samples(page, "workspace_webhook_admission_duration_seconds_bucket")
	if err != nil {
		return t, err
	}
	for _, s := range took {
		if s.Labels["webhook"] == audit.MutatePod {
			t.took[s.Labels["le"]] += s.Value
		}
	}
	reads, err := webhookprocess.Samples(page, "rest_client_requests_total")
	if err != nil {
		return t, err
	}
	for _, s := range reads {
		if s.Labels["method"] == "GET" {
			t.reads[s.Labels["code"]] += s.Value
		}
	}
	return t, nil
}

// tookAtMost is the smallest histogram bound within which fraction q of the decisions were
// made ("+Inf" beyond the largest bound), and how many took longer than one second.
func (t webhookTally) tookAtMost(q float64) (bound string, overOneSecond float64) {
	type bucket struct {
		le    float64
		count float64
	}
	var buckets []bucket
	for le, n := range t.took {
		if v, err := strconv.ParseFloat(le, 64); err == nil && !math.IsInf(v, 1) {
			buckets = append(buckets, bucket{v, n})
		}
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].le < buckets[j].le })
	total := t.took["+Inf"]
	bound = "+Inf"
	for _, b := range buckets {
		if b.count >= q*total {
			bound = bench.Ms(time.Duration(b.le * float64(time.Second)))
			break
		}
	}
	return bound, total - t.took["1"]
}

// since is what was counted after before.
func (t webhookTally) since(before webhookTally) webhookTally {
	d := webhookTally{decisions: map[string]float64{}, answers: map[string]float64{}, took: map[string]float64{}, reads: map[string]float64{}}
	for k, v := range t.decisions {
		if v -= before.decisions[k]; v != 0 {
			d.decisions[k] = v
		}
	}
	for k, v := range t.answers {
		if v -= before.answers[k]; v != 0 {
			d.answers[k] = v
		}
	}
	for k, v := range t.took {
		d.took[k] = v - before.took[k]
	}
	for k, v := range t.reads {
		if v -= before.reads[k]; v != 0 {
			d.reads[k] = v
		}
	}
	return d
}

// liveReads is how many GETs and LISTs the webhook sent the API server.
func (t webhookTally) liveReads() float64 {
	n := 0.0
	for _, v := range t.reads {
		n += v
	}
	return n
}

func (t webhookTally) calls() float64 {
	n := 0.0
	for _, v := range t.answers {
		n += v
	}
	return n
}

// errors counts refusals and failures: denied decisions, InternalError, non-200 answers.
func (t webhookTally) errors() float64 {
	n := 0.0
	for k, v := range t.decisions {
		if strings.HasPrefix(k, string(reason.Denied)+"/") || strings.HasSuffix(k, "/"+string(reason.InternalError)) {
			n += v
		}
	}
	for code, v := range t.answers {
		if code != "200" {
			n += v
		}
	}
	return n
}

func (t webhookTally) String() string {
	return fmt.Sprintf("decisions %v, HTTP answers %v; the webhook's own time per decision (its histogram): %s; its live reads (GET/LIST to the API server) by status %v",
		sortedMap(t.decisions), sortedMap(t.answers), t.timing(), sortedMap(t.reads))
}

// timing is the webhook's own time per decision from its histogram: bucket bounds of p50 and
// p99, and how many took over a second.
func (t webhookTally) timing() string {
	p50, _ := t.tookAtMost(0.50)
	p99, slow := t.tookAtMost(0.99)
	return fmt.Sprintf("p50 <= %s, p99 <= %s, %.0f over 1 s", p50, p99, slow)
}

func sortedMap(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%.0f", k, m[k])
	}
	return "{" + b.String() + "}"
}

// createIgnoringExisting creates each object, leaving one that exists.
func createIgnoringExisting(ctx context.Context, c client.Client, objs ...client.Object) error {
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// poll runs cond every interval until it holds, or fails naming the last state after timeout.
func poll(ctx context.Context, what string, interval, timeout time.Duration, cond func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		last = state
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s (last: %s)", timeout, what, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w waiting for %s (last: %s)", ctx.Err(), what, last)
		case <-time.After(interval):
		}
	}
}
