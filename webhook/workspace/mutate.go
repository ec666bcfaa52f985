package workspace

import (
	"fmt"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// Mutate decides what a script pod needs: the workspace volume, a mount in every container
// that lacks one, and for ReadWriteOnce claims the pin to the volume's node. Running it again
// on its own output yields no operations, so reinvocation is safe.
func Mutate(cfg Config, pod *corev1.Pod, f Facts) Result {
	if denied, ok := checkFacts(f); !ok {
		return denied
	}
	mode := ModeOf(f.Claim)
	if mode == ModeExclusive {
		return deny(reason.ReadWriteOncePodWorkspace, fmt.Sprintf(
			"workspace claim %s/%s is ReadWriteOncePod: no second pod can ever mount it, so script pods cannot share the Tentacle's workspace; "+
				"recreate the agent's claim with accessModes [ReadWriteOnce] (or [ReadWriteMany] on a class that can serve it)",
			f.Agent.Namespace, f.ClaimName))
	}

	rec := priorRecord(pod)
	var ops []jsonpatch.Operation

	volume := claimVolumeName(pod, f.ClaimName)
	if volume == "" {
		v, ok := volumeToInject(cfg, pod, f.ClaimName)
		if !ok {
			return deny(reason.WorkspaceNotMounted, fmt.Sprintf(
				"cannot add the workspace claim %q: the pod already has unrelated volumes named %q and %q; rename one of them",
				f.ClaimName, cfg.VolumeName, cfg.FallbackVolumeName))
		}
		ops = append(ops, appendTo("/spec/volumes", len(pod.Spec.Volumes), v))
		volume = v.Name
		rec.addInjected("volume")
	}

	if c, p, bad := workspacePathSpelledOtherwise(pod, volume, cfg.MountPath); bad {
		return deny(reason.WorkspaceNotMounted, fmt.Sprintf(
			"container %q mounts a volume at %q, which is the workspace path %s written another way, so the workspace claim %q cannot be mounted there beside it; "+
				"write the mount path as %s in the pod or the agent's script pod template", c, p, cfg.MountPath, f.ClaimName, cfg.MountPath))
	}
	mountOps, mountedIn := mountOps(pod, volume, cfg.MountPath)
	ops = append(ops, mountOps...)
	for _, c := range mountedIn {
		rec.addMountedIn(c)
	}
	if len(mountOps) > 0 {
		rec.addInjected("volumeMounts")
	}
	if len(mountedIn) == 0 && !anyMounts(pod, volume) {
		return deny(reason.WorkspaceNotMounted, fmt.Sprintf(
			"no container of the pod can mount the workspace claim %q at %s: every container already uses that path for another volume; "+
				"free %s in the script container or mount volume %q there", f.ClaimName, cfg.MountPath, cfg.MountPath, volume))
	}

	res := Result{Mode: mode, Claim: f.ClaimName}
	m := marks{volume: volume, mountPath: cfg.MountPath}
	if mode == ModePin {
		if denied, ok := pinRefusal(pod, f, rec); !ok {
			return denied
		}
		if pin := pinOps(pod, f.Node); len(pin) > 0 {
			ops = append(ops, pin...)
			rec.addInjected("nodeAffinity")
			rec.Node, rec.NodeSource = f.Node, f.NodeSource
		}
		if cordonedFor(pod, f.NodeInfo) {
			ops = append(ops, tolerateCordonOps(pod)...)
			rec.addInjected("toleration")
			res.Warnings = append(res.Warnings, cordonWarning(f.NodeInfo, f.Agent.Namespace+"/"+f.ClaimName))
		}
		res.Node, m.node = f.Node, f.Node
	}

	annotations := markAnnotations(pod, m)
	if len(ops) == 0 && len(annotations) == 0 {
		res.Code = reason.AlreadyComplete
		res.Message = "the pod already mounts its workspace" + pinnedSuffix(res)
		res.Record = rec
		return res
	}
	rec.Claim, rec.Volume, rec.MountPath, rec.Mode = f.ClaimName, volume, cfg.MountPath, mode
	res.Patch = append(ops, annotationOps(pod, append(annotations, [2]string{RecordAnnotation, rec.value()}))...)
	res.Record = rec
	res.Code = reason.WorkspaceShared
	if mode == ModePin {
		res.Code = reason.WorkspacePinned
	}
	res.Message = fmt.Sprintf("workspace claim %q mounted at %s", f.ClaimName, cfg.MountPath) + pinnedSuffix(res)
	return res
}

func pinnedSuffix(r Result) string {
	if r.Node == "" {
		return ""
	}
	return fmt.Sprintf("; pinned to node %q", r.Node)
}

// pinRefusal is every reason a ReadWriteOnce script pod cannot be pinned to the node that
// holds its volume: no node yet, the volume moved since an earlier invocation pinned the pod,
// a node that cannot run it, or the pod's own node selection excluding that node. Mutate and
// Validate both ask it, so they never disagree.
func pinRefusal(pod *corev1.Pod, f Facts, rec Record) (Result, bool) {
	claim := f.Agent.Namespace + "/" + f.ClaimName
	if f.Node == "" {
		return deny(reason.WorkspaceNodeUnknown, fmt.Sprintf(
			"workspace claim %s is ReadWriteOnce and no node holds it yet (%s): the script pod would fail with a Multi-Attach error on any other node; "+
				"retry once the Tentacle pod is running", claim, f.NodeSource)), false
	}
	if rec.Node != "" && rec.Node != f.Node && IsPinned(pod, rec.Node) {
		return deny(reason.WorkspaceMoved, fmt.Sprintf(
			"workspace claim %s moved from node %q to node %q (%s) while this pod was being admitted (a Tentacle rollout or eviction); "+
				"the pod is pinned to the old node and would fail with a Multi-Attach error there; create it again and it will be pinned to %q "+
				"(from a copied manifest: without its metadata.name node affinity and workspace-webhook.io annotations)",
			claim, rec.Node, f.Node, f.NodeSource, f.Node)), false
	}
	if denied, ok := nodeRefusal(pod, f); !ok {
		return denied, false
	}
	if why := pinConflict(pod, f.Node, f.NodeInfo); why != "" {
		return deny(reason.ConflictingNodePin, fmt.Sprintf(
			"workspace claim %s is ReadWriteOnce and attached to node %q (%s), but the pod can never run there: %s; "+
				"remove that node selection from the pod or the agent's script pod template", claim, f.Node, f.NodeSource, why)), false
	}
	return Result{}, true
}

// checkFacts turns missing facts into the denial that explains them.
func checkFacts(f Facts) (Result, bool) {
	switch {
	case f.ClaimName == "" && f.TentaclePods == 0:
		return deny(reason.AgentNotFound, fmt.Sprintf(
			"no Tentacle pod of agent %s exists in namespace %q and the pod references no workspace claim, so its workspace cannot be found; "+
				"create script pods through the agent, in the agent's namespace", f.Agent, f.Agent.Namespace)), false
	case f.ClaimName == "":
		return deny(reason.WorkspaceClaimUnknown, fmt.Sprintf(
			"the Tentacle pod of agent %s mounts no PersistentVolumeClaim as its workspace (%s); "+
				"check the agent's persistence settings", f.Agent, f.ClaimSource)), false
	case f.Claim == nil:
		return deny(reason.WorkspaceClaimNotFound, fmt.Sprintf(
			"workspace claim %s/%s (%s) does not exist; reinstall or repair agent %s so that its claim exists",
			f.Agent.Namespace, f.ClaimName, f.ClaimSource, f.Agent)), false
	case f.Claim.DeletionTimestamp != nil:
		// The scheduler's volume binding refuses every new pod of a claim being deleted.
		return deny(reason.WorkspaceClaimTerminating, fmt.Sprintf(
			"workspace claim %s/%s (%s) is being deleted (since %s; it stays while the Tentacle pod uses it): Kubernetes schedules no new pod that uses it, "+
				"so the script pod would stay Pending; reinstall or repair agent %s so that its claim exists",
			f.Agent.Namespace, f.ClaimName, f.ClaimSource, f.Claim.DeletionTimestamp.UTC().Format(time.RFC3339), f.Agent)), false
	}
	return Result{}, true
}

// mountOps adds the workspace mount to each init and app container that needs it.
func mountOps(pod *corev1.Pod, volume, mountPath string) ([]jsonpatch.Operation, []string) {
	var ops []jsonpatch.Operation
	var names []string
	for _, group := range []struct {
		path       string
		containers []corev1.Container
	}{{"/spec/initContainers", pod.Spec.InitContainers}, {"/spec/containers", pod.Spec.Containers}} {
		for i := range group.containers {
			c := &group.containers[i]
			if !needsMount(c, volume, mountPath) {
				continue
			}
			ops = append(ops, appendTo(fmt.Sprintf("%s/%d/volumeMounts", group.path, i), len(c.VolumeMounts), workspaceMount(volume, mountPath)))
			names = append(names, c.Name)
		}
	}
	return ops, names
}

func anyMounts(pod *corev1.Pod, volume string) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			for _, m := range cs[i].VolumeMounts {
				if m.Name == volume {
					return true
				}
			}
		}
	}
	return false
}
