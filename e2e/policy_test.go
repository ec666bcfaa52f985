package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// lateBreaker is another team's mutating webhook that runs after ours with reinvocation
// IfNeeded: each call adds a container without the workspace (or an ORed node term without
// the pin). Its first change gets ours reinvoked, which repairs it; ours then changed the
// pod, so the breaker is reinvoked too and breaks it again, and ours has had its one
// additional call. Only the final-state policy can catch what is left.
type lateBreaker struct{ breakPin bool }

func (b lateBreaker) Handle(_ context.Context, req admission.Request) admission.Response {
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return admission.Errored(400, err)
	}
	if _, marked := pod.Annotations[workspace.VolumeMark]; !marked {
		return admission.Allowed("not ours to break")
	}
	if b.breakPin {
		n := len(pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms)
		return admission.Patched("pool term", jsonpatch.Operation{Operation: "add",
			Path:  "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/-",
			Value: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "pool-" + strconv.Itoa(n), Operator: corev1.NodeSelectorOpExists}}}})
	}
	return admission.Patched("sidecar", jsonpatch.Operation{Operation: "add", Path: "/spec/containers/-",
		Value: corev1.Container{Name: "late-" + strconv.Itoa(len(pod.Spec.Containers)), Image: "busybox:1.37"}})
}

// startLateBreaker serves lateBreaker and registers it, in a configuration named name (it
// must sort after "octopus-workspace-webhook" to be called after ours), for the script pods of
// each namespace: breaking the pin (true) or adding a container without the workspace (false).
func startLateBreaker(t *testing.T, ctx context.Context, name string, namespaces map[string]bool) {
	t.Helper()
	wio := cp.WebhookInstallOptions
	host, portStr, _ := net.SplitHostPort(freeAddr())
	port, _ := strconv.Atoi(portStr)
	srv := webhook.NewServer(webhook.Options{Host: host, Port: port, CertDir: wio.LocalServingCertDir})
	srv.Register("/sidecar", &webhook.Admission{Handler: lateBreaker{}})
	srv.Register("/pin", &webhook.Admission{Handler: lateBreaker{breakPin: true}})
	srvCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go func() { _ = srv.Start(srvCtx) }()
	eventually(t, ctx, "late breaker serving", func() (bool, string) { return srv.StartedChecker()(nil) == nil, "" })

	entry := func(name, path, ns string) admissionregistrationv1.MutatingWebhook {
		url := fmt.Sprintf("https://%s:%d%s", host, port, path)
		return admissionregistrationv1.MutatingWebhook{
			Name: name, AdmissionReviewVersions: []string{"v1"},
			SideEffects:        ptr.To(admissionregistrationv1.SideEffectClassNone),
			ReinvocationPolicy: ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
			FailurePolicy:      ptr.To(admissionregistrationv1.Fail),
			ClientConfig:       admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: wio.LocalServingCAData},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{"CREATE"},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			ObjectSelector:    &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "octopus.com/scriptTicketId", Operator: metav1.LabelSelectorOpExists}}},
		}
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for ns, breakPin := range namespaces {
		if breakPin {
			cfg.Webhooks = append(cfg.Webhooks, entry("pin-"+ns+".example.com", "/pin", ns))
		} else {
			cfg.Webhooks = append(cfg.Webhooks, entry("sidecar-"+ns+".example.com", "/sidecar", ns))
		}
	}
	must(t, cp.Client.Create(ctx, cfg))
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), cfg) })
}

// A mutating webhook that undoes our work after our last call is caught by the
// ValidatingAdmissionPolicy, run by the real API server: the pod is refused with the policy's
// message, and the audit log carries the refusal and its reason code. Our webhook is called
// once per pod (plus the reinvocation the breaker's change causes).
func TestPolicyRefusesWhatALaterWebhookUndid(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	sidecarNS, pinNS := "octopus-agent-late-sidecar", "octopus-agent-late-pin"
	startLateBreaker(t, ctx, "zz-e2e-late-breaker", map[string]bool{sidecarNS: false, pinNS: true})

	for _, tc := range []struct {
		ns    string
		code  reason.Code
		words []string
	}{
		{sidecarNS, reason.WorkspaceNotMounted, []string{`containers late-2 do not mount the workspace volume "tentacle-home" at /octopus`,
			"a mutating webhook that ran after the workspace webhook added them", "exclude script pods (label octopus.com/scriptTicketId) from that webhook"}},
		{pinNS, reason.WorkspaceNotPinned, []string{`its ReadWriteOnce workspace is held by node "node-2", but the pod is no longer pinned there`,
			"metadata.name In [node-2]", "changed its node selection"}},
	} {
		t.Run(string(tc.code), func(t *testing.T) {
			a := tentacle.Agent{Namespace: tc.ns, Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-2")}
			installAgent(t, ctx, a, true)
			time.Sleep(time.Second) // webhook configurations are picked up by the API server asynchronously
			before := decisions(t)
			pod := a.ScriptPod("late01", tentacle.StyleV2)
			err := createScriptPod(t, ctx, pod)
			if err == nil {
				t.Fatalf("a pod whose final state breaks the workspace was admitted: %+v", pod.Spec)
			}
			want := "ValidatingAdmissionPolicy 'octopus-workspace-script-pods' with binding 'octopus-workspace-script-pods' denied request: script pod " + pod.Name + ": "
			for _, w := range append(tc.words, want) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal lacks %q:\n%v", w, err)
				}
			}
			// Our webhook answered twice (the call and the one reinvocation the breaker caused),
			// and admitted both times: the refusal is the policy's alone.
			after := decisions(t)
			if got := after["mutate-pod/mutated/WorkspacePinned"] - before["mutate-pod/mutated/WorkspacePinned"]; got != 2 {
				t.Errorf("mutating decisions moved by %v, want 2: %v", got, after)
			}
			ev := findAudit(t, "pods", pod.Namespace, pod.Name)
			if ev.ResponseStatus.Code != 403 {
				t.Errorf("audit status %d, want 403", ev.ResponseStatus.Code)
			}
			if got := ev.Annotations["octopus-workspace-script-pods/reason"]; got != string(tc.code) {
				t.Errorf("audit annotation octopus-workspace-script-pods/reason = %q, want %s (all: %v)", got, tc.code, ev.Annotations)
			}
			failure := ev.Annotations["validation.policy.admission.k8s.io/validation_failure"]
			if !strings.Contains(failure, `"policy":"octopus-workspace-script-pods"`) || !strings.Contains(failure, tc.words[1]) {
				t.Errorf("audit validation_failure %q lacks the policy or its message", failure)
			}
		})
	}
}
