package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// Finder gathers workspace facts for script pods.
type Finder struct {
	// Cache is the scoped informer cache (see CacheByObject): v3 Tentacle pods, the chart's
	// claims, Nodes.
	Cache client.Reader
	// LegacyPods is the cache of pods with the chart's default name label (LegacyPodsByObject),
	// where chart v1/v2 Tentacle pods are; nil skips it.
	LegacyPods client.Reader
	// Live answers a cache miss with one GET against the API server, lists the release's pods
	// (label-selected, page by page) when no cache holds its Tentacle (a v1/v2 agent with
	// nameOverride), and lists VolumeAttachments (page by page) when no Tentacle pod runs.
	Live client.Reader
	// MountPath is the workspace path (Tentacle: /octopus).
	MountPath string
	// Watches, when set, says whether the caches are being kept current (see Watches). While
	// they are not, facts are read live (bounded by LiveTimeout); see unwatched.
	Watches interface{ Fresh() (bool, string) }
	// LiveTimeout, when set, caps those live reads (see liveBudget).
	LiveTimeout time.Duration
}

// DefaultLiveTimeout bounds the live reads of a request without a deadline. A request served
// by the webhook has one (80% of the API server's timeout): the live reads get what is left
// of it less liveReserve.
const DefaultLiveTimeout = 2 * time.Second

// liveReserve is kept from the request's deadline for what follows the live reads: the cached
// fallback, the decision and the answer.
const liveReserve = 250 * time.Millisecond

// CannotReadCurrentState starts the error of a ReadWriteOnce decision whose facts could be
// neither trusted from the cache nor read live.
const CannotReadCurrentState = "cannot read the cluster's current state"

// Facts returns what the cluster says about the agent of pod. pod.Namespace must be set.
// An error means the facts could not be read (the API server or cache failed); missing
// objects are facts, not errors.
func (f *Finder) Facts(ctx context.Context, pod *corev1.Pod) (workspace.Facts, error) {
	return f.read(ctx, func(f *Finder, ctx context.Context) (workspace.Facts, error) { return f.facts(ctx, pod) })
}

// TentacleFacts returns what the cluster says about the agent of a Tentacle pod being
// created: its workspace claim, and the node that holds the claim's volume now (another
// running Tentacle pod of the release, else a VolumeAttachment).
func (f *Finder) TentacleFacts(ctx context.Context, pod *corev1.Pod) (workspace.Facts, error) {
	return f.read(ctx, func(f *Finder, ctx context.Context) (workspace.Facts, error) { return f.tentacleFacts(ctx, pod) })
}

// read gathers facts from the caches while they are kept current, else with unwatched.
func (f *Finder) read(ctx context.Context, gather func(*Finder, context.Context) (workspace.Facts, error)) (workspace.Facts, error) {
	if f.Watches == nil || f.Live == nil {
		return gather(f, ctx)
	}
	if fresh, down := f.Watches.Fresh(); !fresh {
		return f.unwatched(ctx, down, gather)
	}
	return gather(f, ctx)
}

// unwatched gathers facts while a watch is down (the API server restarting, the network to it
// dropped): the cache may miss a change made meanwhile, such as a Tentacle that moved to
// another node, and a pin taken from it would send the script pod where its ReadWriteOnce
// volume no longer is. So everything is read live. When that fails too, the cached facts
// still serve a workspace that no node holds (ReadWriteMany, NFS), where nothing depends on
// where the Tentacle runs; a ReadWriteOnce workspace gets an error, which refuses the script
// pod (retryably) and leaves a new Tentacle pod unpinned.
func (f *Finder) unwatched(ctx context.Context, down string, gather func(*Finder, context.Context) (workspace.Facts, error)) (workspace.Facts, error) {
	live := &Finder{Cache: f.Live, LegacyPods: f.Live, Live: f.Live, MountPath: f.MountPath}
	liveCtx, cancel := context.WithTimeout(ctx, f.liveBudget(ctx))
	facts, err := gather(live, liveCtx)
	cancel()
	if err == nil {
		return facts, nil
	}
	// The caches alone: a live read now would fail as the ones above did.
	cached, cerr := gather(&Finder{Cache: f.Cache, LegacyPods: f.LegacyPods, MountPath: f.MountPath}, ctx)
	if cerr == nil && cached.Claim != nil && workspace.ModeOf(cached.Claim) != workspace.ModePin {
		return cached, nil
	}
	return facts, fmt.Errorf("%s: the webhook's watch of the API server is down (%s), so its cached facts may be stale, and reading them live failed: %w; "+
		"a ReadWriteOnce workspace may have moved to another node meanwhile and nothing is pinned on old facts; retry once the webhook reaches the API server again", CannotReadCurrentState, down, err)
}

// liveBudget is how long the live reads of an unwatched request may take. A burst of script
// pods is when watches drop (the API server closes watchers that fall behind) and when the
// API server answers slowest, so the reads get all the time the request has left, less
// liveReserve; a fixed 2 s refused pods in a 5,000-pod burst whose reads took 2–3 s.
func (f *Finder) liveBudget(ctx context.Context) time.Duration {
	budget := DefaultLiveTimeout
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		budget = max(left-liveReserve, left/2)
	}
	if f.LiveTimeout > 0 {
		budget = min(budget, f.LiveTimeout)
	}
	return budget
}

func (f *Finder) facts(ctx context.Context, pod *corev1.Pod) (workspace.Facts, error) {
	facts := workspace.Facts{Agent: workspace.AgentRef{Namespace: pod.Namespace, Release: pod.Annotations[ReleaseAnnotation]}}
	tentacles, err := f.tentaclePods(ctx, facts.Agent)
	if err != nil {
		return facts, err
	}
	facts.TentaclePods = len(tentacles)
	facts.TentaclePod = newest(tentacles)

	claims := map[string]string{} // claim -> source
	for i := range tentacles {
		if c, src := tentacleClaim(&tentacles[i], f.MountPath); c != "" {
			if _, seen := claims[c]; !seen {
				claims[c] = src
			}
		}
	}
	known := map[string]bool{}
	for c := range claims {
		known[c] = true
	}
	facts.ClaimName, facts.ClaimSource = scriptPodClaim(pod, known, f.MountPath)
	if facts.ClaimName == "" {
		facts.ClaimName, facts.ClaimSource = onlyClaim(claims, tentacles, f.MountPath)
	}
	if facts.ClaimName == "" {
		return facts, nil
	}

	facts.Claim, err = f.claim(ctx, pod.Namespace, facts.ClaimName)
	if err != nil || facts.Claim == nil || workspace.ModeOf(facts.Claim) != workspace.ModePin {
		return facts, err
	}

	return facts, f.locate(ctx, &facts, tentacles)
}

func (f *Finder) tentacleFacts(ctx context.Context, pod *corev1.Pod) (workspace.Facts, error) {
	facts := workspace.Facts{Agent: workspace.AgentRef{Namespace: pod.Namespace, Release: pod.Labels[InstanceLabel]}}
	facts.ClaimName, facts.ClaimSource = tentacleClaim(pod, f.MountPath)
	if facts.ClaimName == "" {
		return facts, nil
	}
	var err error
	facts.Claim, err = f.claim(ctx, pod.Namespace, facts.ClaimName)
	if err != nil || facts.Claim == nil || workspace.ModeOf(facts.Claim) != workspace.ModePin {
		return facts, err
	}
	all, err := f.tentaclePods(ctx, facts.Agent)
	if err != nil {
		return facts, err
	}
	var others []corev1.Pod
	for _, p := range all {
		if (pod.UID == "" || p.UID != pod.UID) && (pod.Name == "" || p.Name != pod.Name) {
			others = append(others, p)
		}
	}
	facts.TentaclePods, facts.TentaclePod = len(others), newest(others)
	return facts, f.locate(ctx, &facts, others)
}

// locate finds the node holding the workspace volume of an RWO claim: a running Tentacle pod
// that mounts it, else an attached VolumeAttachment; and that node's state.
func (f *Finder) locate(ctx context.Context, facts *workspace.Facts, tentacles []corev1.Pod) error {
	facts.Node, facts.NodeSource = NodeOfRunningTentacle(tentacles, facts.ClaimName)
	volume := facts.Claim.Spec.VolumeName
	if facts.Node == "" && volume != "" && f.Live != nil {
		vas, err := attachmentsOf(ctx, f.Live, volume)
		if err != nil {
			return err
		}
		facts.Node, facts.NodeSource = nodeOfAttachment(vas, volume)
	}
	if facts.Node == "" {
		facts.NodeSource = whyNoNode(tentacles, facts.ClaimName, volume)
		return nil
	}
	var err error
	facts.NodeInfo, facts.NodeMissing, err = f.node(ctx, facts.Node)
	return err
}

// node reads the node holding the volume from the cache, which holds every Node: a miss
// means it is gone.
func (f *Finder) node(ctx context.Context, name string) (*corev1.Node, bool, error) {
	var n corev1.Node
	err := f.Cache.Get(ctx, types.NamespacedName{Name: name}, &n, client.UnsafeDisableDeepCopy) // read-only
	switch {
	case apierrors.IsNotFound(err):
		return nil, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("reading node %s: %w", name, err)
	}
	return &n, false, nil
}

// onlyClaim picks the agent's claim when the script pod references none. Several different
// claims (several agents in one namespace and no release named) cannot be told apart.
func onlyClaim(claims map[string]string, tentacles []corev1.Pod, mountPath string) (string, string) {
	switch len(claims) {
	case 1:
		for c, src := range claims {
			return c, src
		}
	case 0:
		if len(tentacles) > 0 {
			return "", fmt.Sprintf("Tentacle pod %s/%s has no PersistentVolumeClaim volume at %s and no %s",
				tentacles[0].Namespace, tentacles[0].Name, mountPath, ClaimNameEnv)
		}
		return "", ""
	}
	names := make([]string, 0, len(claims))
	for c := range claims {
		names = append(names, c)
	}
	sort.Strings(names)
	return "", fmt.Sprintf("Tentacle pods of several agents use different claims (%s) and the script pod names no release in annotation %s",
		strings.Join(names, ", "), ReleaseAnnotation)
}

// tentaclePods finds the agent's Tentacle pods, every chart generation: the v3 cache
// (component label), the v1/v2 cache (default name label), and when neither holds one, a
// live list of the release's pods (nameOverride on v1/v2). Only pods IsTentacle accepts.
func (f *Finder) tentaclePods(ctx context.Context, agent workspace.AgentRef) ([]corev1.Pod, error) {
	if agent.Release != "" && len(validation.IsValidLabelValue(agent.Release)) > 0 {
		// No pod carries it in its instance label, and the API server refuses it in a
		// selector: the pod names a release that has no Tentacle pod.
		return nil, nil
	}
	list := func(r client.Reader, sel client.MatchingLabels) ([]corev1.Pod, error) {
		if agent.Release != "" {
			sel[InstanceLabel] = agent.Release
		}
		var pods corev1.PodList
		// Read-only use: skip the deep copy of every cached pod.
		if err := r.List(ctx, &pods, client.InNamespace(agent.Namespace), sel, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("listing Tentacle pods in %s: %w", agent.Namespace, err)
		}
		return pods.Items, nil
	}
	out, err := list(f.Cache, client.MatchingLabels{ComponentLabel: TentacleValue})
	if err != nil {
		return nil, err
	}
	out = keepTentacles(out, f.MountPath)
	seen := map[types.UID]bool{}
	for i := range out {
		seen[out[i].UID] = true
	}
	if f.LegacyPods != nil {
		legacy, err := list(f.LegacyPods, client.MatchingLabels{ChartNameLabel: ChartName})
		if err != nil {
			return nil, err
		}
		// A chart v3 pod with the default name is in both caches; only v1/v2 pods are added.
		out = appendTentacles(out, seen, legacy, f.MountPath)
	}
	if len(out) > 0 || f.Live == nil {
		return out, nil
	}
	return f.liveTentaclePods(ctx, agent, seen)
}

// keepTentacles filters pods in place (no copies on the hot path).
func keepTentacles(pods []corev1.Pod, mountPath string) []corev1.Pod {
	kept := pods[:0]
	for i := range pods {
		if IsTentacle(&pods[i], mountPath) {
			kept = append(kept, pods[i])
		}
	}
	return kept
}

// liveTentaclePods lists, page by page, the pods of the agent's release (or of any release
// when the script pod names none) in its namespace, keeping the Tentacle pods.
func (f *Finder) liveTentaclePods(ctx context.Context, agent workspace.AgentRef, seen map[types.UID]bool) ([]corev1.Pod, error) {
	var sel client.ListOption = client.HasLabels{InstanceLabel}
	if agent.Release != "" {
		sel = client.MatchingLabels{InstanceLabel: agent.Release}
	}
	var out []corev1.Pod
	cont := ""
	for {
		var page corev1.PodList
		if err := f.Live.List(ctx, &page, client.InNamespace(agent.Namespace), sel, client.Limit(PageSize), client.Continue(cont)); err != nil {
			return nil, fmt.Errorf("listing the pods of agent %s: %w", agent, err)
		}
		out = appendTentacles(out, seen, page.Items, f.MountPath)
		if cont = page.Continue; cont == "" {
			return out, nil
		}
	}
}

func appendTentacles(out []corev1.Pod, seen map[types.UID]bool, pods []corev1.Pod, mountPath string) []corev1.Pod {
	for i := range pods {
		p := &pods[i]
		if seen[p.UID] || !IsTentacle(p, mountPath) {
			continue
		}
		seen[p.UID] = true
		out = append(out, *p)
	}
	return out
}

// IsTentacle tells a Tentacle pod from the other pods an agent's release labels alike: the
// pre-install hook pod (same labels, an emptyDir at the workspace path and no claim), the NFS
// server, script pods. Chart v3 marks it with the component label; in every generation it
// mounts the workspace claim and names it in ClaimNameEnv.
func IsTentacle(p *corev1.Pod, mountPath string) bool {
	if _, script := p.Labels[ScriptTicketLabel]; script {
		return false
	}
	if p.Labels[ComponentLabel] == TentacleValue {
		return true
	}
	claim, _ := tentacleClaim(p, mountPath)
	return claim != "" && mountsClaim(p, claim)
}

// claim reads a claim from the cache, falling back to one live GET on a miss (a claim
// created a moment ago may not have reached the cache). nil means it does not exist.
func (f *Finder) claim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	var pvc corev1.PersistentVolumeClaim
	err := f.Cache.Get(ctx, key, &pvc)
	if apierrors.IsNotFound(err) && f.Live != nil {
		err = f.Live.Get(ctx, key, &pvc)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading claim %s: %w", key, err)
	}
	return &pvc, nil
}

func newest(pods []corev1.Pod) string {
	name := ""
	var best *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if best == nil || best.CreationTimestamp.Before(&p.CreationTimestamp) ||
			(best.CreationTimestamp.Equal(&p.CreationTimestamp) && p.Name > best.Name) {
			best, name = p, p.Name
		}
	}
	return name
}
