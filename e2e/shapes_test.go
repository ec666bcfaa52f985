package e2e

import (
	"context"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

func agentShapes() []tentacle.Shape { return tentacle.Shapes("e2e-shapes-rwo", "e2e-shapes-rwx") }

// Every chart generation and install shape, each also with nameOverride: script pods of every
// kind (normal, raw-script, without workspace) are admitted with the workspace exactly once,
// pinned exactly when the claim is ReadWriteOnce, and RWO ones scheduled onto the Tentacle's
// node; the pre-install hook pod (same labels, on another node) is never taken for the Tentacle.
func TestEveryAgentShape(t *testing.T) {
	ctx := ctxFor(t, 8*time.Minute)
	createClasses(t, ctx,
		class("e2e-shapes-rwo", "ebs.csi.aws.com", nil),
		withParams(class("e2e-shapes-rwx", "efs.csi.aws.com", nil), "provisioningMode", "efs-ap"))
	defaultClass := ensureDefaultClass(t, ctx)
	t.Logf("default StorageClass: %s", defaultClass)

	nodes := []string{"node-1", "node-2", "node-3"}
	type installed struct {
		shape tentacle.Shape
		agent tentacle.Agent
		node  string
	}
	var agents []installed
	for i, s := range agentShapes() {
		for _, override := range []string{"", "build-agent"} {
			a := s.Agent
			a.NameOverride = override
			// Release names differ: the chart's NFS volume (cluster-scoped) is named by release.
			a.Namespace, a.Release = "shape-"+s.Name, s.Name
			if override != "" {
				a.Namespace += "-override"
				a.Release += "-second"
			}
			node := nodes[(i+len(agents))%len(nodes)]
			a.NodeSelector = onNode(node)
			if a.Generation >= 2 {
				// The hook pod runs on another node; if it were taken for the Tentacle, RWO
				// script pods would be pinned there.
				hook := a.HookPod()
				hook.Spec.NodeSelector = onNode(nodes[(i+len(agents)+1)%len(nodes)])
				installHookPod(t, ctx, a, hook)
			}
			installAgent(t, ctx, a, false)
			agents = append(agents, installed{s, a, node})
		}
	}
	for _, in := range agents {
		waitTentacleRunning(t, ctx, in.agent)
	}

	for _, in := range agents {
		a, label := in.agent, in.shape.Name
		if a.NameOverride != "" {
			label += "+nameOverride"
		}
		claim := a.Claim()
		must(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(claim), claim))
		if in.shape.Pinned != (workspace.ModeOf(claim) == workspace.ModePin) {
			t.Fatalf("%s: fixture claim modes %v do not match the shape", label, claim.Spec.AccessModes)
		}
		for _, style := range []tentacle.Style{a.NormalStyle(), tentacle.StyleRawScript, tentacle.StyleTemplate} {
			ticket := strings.ToLower(fmt.Sprintf("%s-%s-%s", in.shape.Name, a.Release, style))
			pod := a.ScriptPod(ticket, style)
			if err := createScriptPod(t, ctx, pod); err != nil {
				t.Fatalf("%s %s: refused: %v", label, style, err)
			}
			if err := workspaceOnce(pod, a.ClaimName()); err != nil {
				t.Fatalf("%s %s: %v", label, style, err)
			}
			pinned := workspace.IsPinned(pod, in.node)
			if pinned != in.shape.Pinned || (!in.shape.Pinned && hasNamePin(pod)) {
				t.Fatalf("%s %s: pinned=%v (to %s), want %v: %+v", label, style, pinned, in.node, in.shape.Pinned, pod.Spec.Affinity)
			}
			got := waitScheduled(t, ctx, pod)
			if in.shape.Pinned && got != in.node {
				t.Fatalf("%s %s: scheduled to %s, want the Tentacle's node %s", label, style, got, in.node)
			}
		}
	}
	t.Logf("%d agents x 3 script pods admitted and scheduled as expected", len(agents))
}

// workspaceOnce checks the pod has the claim exactly once and every container that uses the
// workspace path has exactly one mount there.
func workspaceOnce(pod *corev1.Pod, claim string) error {
	n := 0
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("claim %s is in %d volumes, want 1: %+v", claim, n, pod.Spec.Volumes)
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			at := 0
			for _, m := range c.VolumeMounts {
				if path.Clean(m.MountPath) == "/octopus" {
					at++
				}
			}
			if at != 1 {
				return fmt.Errorf("container %s has %d mounts at /octopus, want 1: %+v", c.Name, at, c.VolumeMounts)
			}
		}
	}
	return nil
}

func hasNamePin(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range t.MatchFields {
			if f.Key == workspace.NodeNameField {
				return true
			}
		}
	}
	return false
}

// installHookPod creates the pre-install hook pod the way Helm runs it before the release.
func installHookPod(t *testing.T, ctx context.Context, a tentacle.Agent, hook *corev1.Pod) {
	t.Helper()
	_, err := cp.CreateNamespace(ctx, a.Namespace)
	must(t, err)
	for _, sa := range a.ServiceAccounts() {
		must(t, cp.Client.Create(ctx, sa))
	}
	must(t, cp.Client.Create(ctx, hook))
}

// ensureDefaultClass returns the cluster's default StorageClass, creating one (RWO, like a
// cloud's block storage) when there is none.
func ensureDefaultClass(t *testing.T, ctx context.Context) string {
	t.Helper()
	var list storagev1.StorageClassList
	must(t, cp.Client.List(ctx, &list))
	for _, c := range list.Items {
		if c.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
			return c.Name
		}
	}
	def := class("e2e-default-gp3", "ebs.csi.aws.com", map[string]string{"storageclass.kubernetes.io/is-default-class": "true"})
	createClasses(t, ctx, def)
	// Other tests judge class-less claims with no default class: leave none behind (bound
	// claims keep the class they were given).
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), def) })
	return def.Name
}
