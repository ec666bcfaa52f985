package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
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
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// sidecarInjector is another cluster's mutating webhook that adds a container to script pods
// after ours has run (its configuration sorts after ours).
type sidecarInjector struct{}

func (sidecarInjector) Handle(_ context.Context, req admission.Request) admission.Response {
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return admission.Errored(400, err)
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == "mesh-proxy" {
			return admission.Allowed("already injected")
		}
	}
	return admission.Patched("sidecar", jsonpatch.Operation{Operation: "add", Path: "/spec/containers/-",
		Value: corev1.Container{Name: "mesh-proxy", Image: "envoyproxy/envoy:v1.34"}})
}

// With reinvocationPolicy IfNeeded, our webhook runs again after a later webhook adds a
// container, and gives that container the workspace too, without duplicating anything.
func TestReinvocationMountsTheWorkspaceInContainersAddedLater(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	wio := cp.WebhookInstallOptions
	host, portStr, _ := net.SplitHostPort(freeAddr())
	port, _ := strconv.Atoi(portStr)
	srv := webhook.NewServer(webhook.Options{Host: host, Port: port, CertDir: wio.LocalServingCertDir})
	srv.Register("/inject", &webhook.Admission{Handler: sidecarInjector{}})
	srvCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = srv.Start(srvCtx) }()
	eventually(t, ctx, "sidecar injector serving", func() (bool, string) { return srv.StartedChecker()(nil) == nil, "" })

	url := fmt.Sprintf("https://%s:%d/inject", host, port)
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "zz-sidecar-injector"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "sidecar.example.com", AdmissionReviewVersions: []string{"v1"},
			SideEffects:        ptr.To(admissionregistrationv1.SideEffectClassNone),
			ReinvocationPolicy: ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
			FailurePolicy:      ptr.To(admissionregistrationv1.Fail),
			ClientConfig:       admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: wio.LocalServingCAData},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{"CREATE"},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "octopus-agent-mesh"}},
		}},
	}
	must(t, cp.Client.Create(ctx, cfg))
	defer func() { _ = cp.Client.Delete(context.Background(), cfg) }()

	a := tentacle.Agent{Namespace: "octopus-agent-mesh", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-3")}
	installAgent(t, ctx, a, true)
	time.Sleep(time.Second) // webhook configurations are picked up by the API server asynchronously
	pod := a.ScriptPod("mesh01", tentacle.StyleV2)
	must(t, createScriptPod(t, ctx, pod))

	var proxy *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == "mesh-proxy" {
			proxy = &pod.Spec.Containers[i]
		}
	}
	if proxy == nil {
		t.Fatal("the sidecar injector did not run")
	}
	mounts := 0
	for _, m := range proxy.VolumeMounts {
		if m.Name == "tentacle-home" && m.MountPath == "/octopus" {
			mounts++
		}
	}
	if mounts != 1 {
		t.Fatalf("sidecar added after our webhook has %d workspace mounts, want 1: %+v", mounts, proxy.VolumeMounts)
	}
	r := record(t, pod)
	if len(r.MountedIn) != 1 || r.MountedIn[0] != "mesh-proxy" || r.Node != "node-3" {
		t.Fatalf("record %+v, want the mount in mesh-proxy and the pin to node-3", r)
	}
	if !workspace.IsPinned(pod, "node-3") || len(pod.Spec.Volumes) != countVolumes(a.ScriptPod("x", tentacle.StyleV2))+1 {
		t.Fatalf("pin or volumes wrong after reinvocation: %+v %+v", pod.Spec.Affinity, pod.Spec.Volumes)
	}
}

// countVolumes is the number of volumes Tentacle gives a pod (the service-account token
// volume is added on top by the API server).
func countVolumes(p *corev1.Pod) int { return len(p.Spec.Volumes) }
