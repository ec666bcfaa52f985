package workspace

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// Every mutated golden fixture must pass validation, and every fixture as Tentacle created it
// (before mutation) must be refused when it lacks the pin or the mount.
func TestValidateAgreesWithMutate(t *testing.T) {
	inputs := fixtureNames(t)
	for _, in := range inputs {
		t.Run(in, func(t *testing.T) {
			fx := readFixture(t, "testdata/"+in+".yaml")
			podJSON, pod := decodePod(t, fx.Pod)
			facts := fixtureFacts(fx)
			res := Mutate(DefaultConfig(), pod, facts)
			if res.Denied {
				if v := Validate(pod, facts); !v.Denied {
					t.Fatalf("mutation denied (%s) but validation admits the same pod", res.Code)
				}
				return
			}
			_, admitted := decodePod(t, applyPatch(t, podJSON, res))
			if v := Validate(admitted, facts); v.Denied {
				t.Fatalf("validation refuses the mutated pod: %s: %s", v.Code, v.Message)
			}
			// The pod as created, before mutation: refused for what the mutation had to add.
			before := Validate(pod, facts)
			want := reason.WorkspaceValid
			switch {
			case claimVolumeName(pod, facts.ClaimName) == "" || !anyMounts(pod, claimVolumeName(pod, facts.ClaimName)):
				want = reason.WorkspaceNotMounted
			case res.Mode == ModePin && !IsPinned(pod, facts.Node):
				want = reason.WorkspaceNotPinned
			}
			if before.Code != want {
				t.Fatalf("pod before mutation: got %s, want %s", before.Code, want)
			}
		})
	}
}

func TestValidateRefusesUnmountedWorkspace(t *testing.T) {
	fx := readFixture(t, "testdata/minimal-no-volumes.yaml")
	_, pod := decodePod(t, fx.Pod)
	if v := Validate(pod, fixtureFacts(fx)); v.Code != reason.WorkspaceNotMounted {
		t.Fatalf("got %s, want %s", v.Code, reason.WorkspaceNotMounted)
	}
	// Referenced but mounted by no container.
	pod.Spec.Volumes = []corev1.Volume{{Name: "tentacle-home", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: fx.Facts.ClaimName}}}}
	if v := Validate(pod, fixtureFacts(fx)); v.Code != reason.WorkspaceNotMounted {
		t.Fatalf("got %s, want %s", v.Code, reason.WorkspaceNotMounted)
	}
}

// A Tentacle that moves between the mutating call, a reinvocation and the validating call
// gives one explained refusal (WorkspaceMoved, both nodes named), never a self-contradiction
// such as "not pinned" or "can never run there" about a pin the webhook itself added.
func TestVolumeMovedBetweenInvocations(t *testing.T) {
	fx := readFixture(t, "testdata/chart-v2-rwo-os-arch-affinity.yaml")
	podJSON, pod := decodePod(t, fx.Pod)
	before := fixtureFacts(fx)
	before.Node = "node-1"
	res := Mutate(DefaultConfig(), pod, before)
	if res.Denied || res.Node != "node-1" {
		t.Fatalf("first invocation: %+v", res)
	}
	_, admitted := decodePod(t, applyPatch(t, podJSON, res))
	moved := before
	moved.Node, moved.NodeSource = "node-2", "Tentacle pod octopus-agent-prod/octopus-agent-tentacle-new is running there"
	for name, got := range map[string]Result{"reinvocation": Mutate(DefaultConfig(), admitted, moved), "validation": Validate(admitted, moved)} {
		if !got.Denied || got.Code != reason.WorkspaceMoved {
			t.Fatalf("%s: got %s (%s), want WorkspaceMoved", name, got.Code, got.Message)
		}
		for _, want := range []string{`"node-1"`, `"node-2"`, "create it again"} {
			if !strings.Contains(got.Message, want) {
				t.Fatalf("%s: message lacks %s: %s", name, want, got.Message)
			}
		}
	}
	// Not moved: both admit.
	if got := Validate(admitted, before); got.Denied {
		t.Fatalf("validation with unchanged facts: %s", got.Message)
	}
}
