package faults

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

var rwo = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}

func onNode(n string) map[string]string { return map[string]string{corev1.LabelHostname: n} }

// rwoAgent is a chart v3 agent on ReadWriteOnce storage (the chart's default), its Tentacle on node.
func rwoAgent(namespace, node string) tentacle.Agent {
	return tentacle.Agent{Namespace: namespace, Release: "prod", AccessModes: rwo, NodeSelector: onNode(node)}
}

// installAgent installs a as its chart does (Deployment, claim, pre-bound volume) and waits
// for its Tentacle pod to run.
func installAgent(t *testing.T, ctx context.Context, a tentacle.Agent) *corev1.Pod {
	t.Helper()
	_, err := cp.CreateNamespace(ctx, a.Namespace)
	must(t, err)
	must(t, a.Install(ctx, cp.Client))
	return waitTentacle(t, ctx, a)
}

func waitTentacle(t *testing.T, ctx context.Context, a tentacle.Agent) *corev1.Pod {
	t.Helper()
	var running *corev1.Pod
	eventually(t, ctx, time.Minute, "the Tentacle pod of "+a.Namespace+" running", func() (bool, string) {
		var err error
		running, err = a.RunningTentacle(ctx, cp.Client)
		if err != nil {
			return false, err.Error()
		}
		return running != nil, "none running"
	})
	return running
}

// installBareAgent creates the agent's workspace and ServiceAccounts but no Deployment: its
// Tentacle pods are placed by the test (placeTentacle), so a move happens exactly when and
// where the test says, with no controller in the way (they too reconnect after an API server
// restart, at their own pace).
func installBareAgent(t *testing.T, ctx context.Context, a tentacle.Agent) {
	t.Helper()
	_, err := cp.CreateNamespace(ctx, a.Namespace)
	must(t, err)
	for _, sa := range a.ServiceAccounts() {
		if err := cp.Client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	must(t, a.CreateWorkspace(ctx, cp.Client))
}

// placeTentacle creates a Tentacle pod of a bound to node and marks it Running, as the
// scheduler and the kubelet would (kwok then keeps it so).
func placeTentacle(ctx context.Context, a tentacle.Agent, name, node string) (*corev1.Pod, error) {
	a.NodeSelector = onNode(node)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.Namespace, Labels: a.TentacleLabels()},
		Spec:       a.Deployment().Spec.Template.Spec,
	}
	pod.Spec.NodeName = node
	if err := cp.Client.Create(ctx, pod); err != nil {
		return nil, fmt.Errorf("creating Tentacle pod %s: %w", name, err)
	}
	// kwok may get there first (it runs pods bound to its nodes): then the pod already runs.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		if pod.Status.Phase == corev1.PodRunning {
			return nil
		}
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: ptr.To(metav1.Now()), Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}}
		return cp.Client.Status().Update(ctx, pod)
	})
	if err != nil {
		return nil, fmt.Errorf("marking Tentacle pod %s Running: %w", name, err)
	}
	return pod, nil
}

// removeTentacle deletes a Tentacle pod at once (grace period 0: gone from the API, as after
// its kubelet confirmed the stop) and waits until it is gone.
func removeTentacle(ctx context.Context, pod *corev1.Pod) error {
	if err := cp.Client.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	for {
		err := cp.Client.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Tentacle pod %s not gone: %w", pod.Name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// reviewer posts AdmissionReviews straight to the webhook's address, as an API server does:
// for the moments when the test's own API server cannot (it is stopped).
type reviewer struct {
	c   *http.Client
	url string
}

func newReviewer() *reviewer {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cp.WebhookInstallOptions.LocalServingCAData)
	return &reviewer{
		c: &http.Client{Timeout: 6 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}, MaxIdleConnsPerHost: 4}},
		url: "https://" + hooks.lb.Addr() + app.MutatePodPath,
	}
}

// scriptPod sends the review of a's script pod ticket and sorts the answer like classify.
func (r *reviewer) scriptPod(ctx context.Context, a tentacle.Agent, ticket string) outcome {
	pod := a.ScriptPod(ticket, a.NormalStyle())
	podJSON, _ := json.Marshal(pod)
	start := time.Now()
	o := r.post(ctx, webhookprocess.AdmissionReview(podJSON, a.Namespace, pod.Name, false), podJSON)
	o.Start, o.End = start, time.Now()
	return o
}

func (r *reviewer) post(ctx context.Context, body, podJSON []byte) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return outcome{Kind: kindError, Err: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.c.Do(req)
	if err != nil {
		return outcome{Kind: kindWebhookFailed, Err: err.Error()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return outcome{Kind: kindWebhookFailed, Err: err.Error()}
	}
	res, err := webhookprocess.DecodeResponse(b)
	if err != nil {
		return outcome{Kind: kindWebhookFailed, Err: err.Error()}
	}
	if !res.Allowed {
		status := metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden}
		if res.Result != nil {
			status = *res.Result
		}
		// As the API server words it, so that classify reads it the same way.
		status.Message = fmt.Sprintf("admission webhook %q denied the request: %s", scriptPodWebhook, status.Message)
		return classify(nil, &apierrors.StatusError{ErrStatus: status})
	}
	pod := &corev1.Pod{}
	if len(res.Patch) > 0 {
		p, err := jsonpatch.DecodePatch(res.Patch)
		if err != nil {
			return outcome{Kind: kindError, Err: err.Error()}
		}
		patched, err := p.Apply(podJSON)
		if err != nil {
			return outcome{Kind: kindError, Err: err.Error()}
		}
		if err := json.Unmarshal(patched, pod); err != nil {
			return outcome{Kind: kindError, Err: err.Error()}
		}
	}
	return classify(pod, nil)
}

// rwxAgent installs a chart v3 agent whose claim asks for ReadWriteMany on a class that can
// serve it (Azure Files, from the built-in table), and waits for its Tentacle.
func rwxAgent(t *testing.T, ctx context.Context, namespace string) tentacle.Agent {
	t.Helper()
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "faults-azurefile"}, Provisioner: "file.csi.azure.com"}
	if err := cp.Client.Create(ctx, class); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	a := tentacle.Agent{Namespace: namespace, Release: "prod", Storage: tentacle.StorageClass, StorageClass: class.Name,
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, NodeSelector: onNode("node-2")}
	installAgent(t, ctx, a)
	return a
}
