package e2e

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	wh "github.com/octopus-agent-tools/workspace-webhook/webhook"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/explain"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// explain with its facts read from a real cluster (the webhook's own Finder over a live
// client, as `workspace-webhook explain --kubeconfig` runs it) predicts exactly what the
// webhook then does to the same script pod created through the API server.
func TestExplainFromTheClusterPredictsTheWebhook(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-explained", Release: "explained", Generation: 2, Storage: tentacle.StorageClass,
		StorageClass: "e2e-explain-rwo", AccessModes: rwo, NodeSelector: onNode("node-3")}
	createClasses(t, ctx, class("e2e-explain-rwo", "ebs.csi.aws.com", nil))
	installAgent(t, ctx, a, true)

	e := &explain.Explainer{Config: workspace.DefaultConfig(), ScriptPodLabel: "octopus.com/scriptTicketId",
		Facts:  &agent.Finder{Cache: cp.Client, LegacyPods: cp.Client, Live: cp.Client, MountPath: "/octopus"},
		Claims: &wh.ClaimJudge{Cache: cp.Client, Live: cp.Client}}
	pod := a.ScriptPod("explained01", a.NormalStyle())
	raw, err := json.Marshal(pod)
	must(t, err)
	rep, err := e.Pod(ctx, raw)
	must(t, err)
	if rep.Code != "WorkspacePinned" || rep.Validation == nil || rep.Validation.Decision != "allowed" {
		t.Fatalf("explain: %+v", rep)
	}
	var predicted corev1.Pod
	must(t, json.Unmarshal(rep.Admitted, &predicted))

	must(t, createScriptPod(t, ctx, pod))
	if !reflect.DeepEqual(pod.Spec.Affinity.NodeAffinity, predicted.Spec.Affinity.NodeAffinity) ||
		pod.Annotations[workspace.RecordAnnotation] != predicted.Annotations[workspace.RecordAnnotation] {
		t.Fatalf("webhook and explain differ:\nwebhook %+v %s\nexplain %+v %s", pod.Spec.Affinity.NodeAffinity, pod.Annotations[workspace.RecordAnnotation],
			predicted.Spec.Affinity.NodeAffinity, predicted.Annotations[workspace.RecordAnnotation])
	}
	if got := waitScheduled(t, ctx, pod); got != "node-3" {
		t.Fatalf("scheduled to %s, want node-3 as explained", got)
	}

	// A claim, judged from the cluster's classes: the refusal the claim webhook gives.
	claim := tentacle.Agent{Namespace: a.Namespace, Release: "explained-rwx", Generation: 3, Storage: tentacle.StorageClass,
		StorageClass: "e2e-explain-rwo", AccessModes: rwx}.Claim()
	raw, err = json.Marshal(claim)
	must(t, err)
	crep, err := e.Claim(ctx, raw)
	must(t, err)
	err = cp.Client.Create(ctx, claim)
	if crep.Decision != "denied" || crep.Code != "ReadWriteManyUnsupported" || err == nil || !strings.Contains(err.Error(), crep.Message) {
		t.Fatalf("explain said %s %s %q; the webhook said %v", crep.Decision, crep.Code, crep.Message, err)
	}
}
