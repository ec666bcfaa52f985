package e2e

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// installAgent creates an agent the way its Helm chart does, with a pre-bound volume, and
// waits for the Tentacle pod to run (on the node its NodeSelector names).
func installAgent(t *testing.T, ctx context.Context, a tentacle.Agent, waitRunning bool) {
	t.Helper()
	_, err := cp.CreateNamespace(ctx, a.Namespace)
	must(t, err)
	must(t, a.Install(ctx, cp.Client))
	if waitRunning {
		waitTentacleRunning(t, ctx, a)
	}
}

func createWorkspace(t *testing.T, ctx context.Context, a tentacle.Agent) {
	t.Helper()
	must(t, a.CreateWorkspace(ctx, cp.Client))
}

func waitTentacleRunning(t *testing.T, ctx context.Context, a tentacle.Agent) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	eventually(t, ctx, "Tentacle pod of "+a.Namespace+"/"+a.Release+" running", func() (bool, string) {
		var err error
		if found, err = a.RunningTentacle(ctx, cp.Client); err != nil {
			return false, err.Error()
		}
		return found != nil, "none running"
	})
	return found
}

// createScriptPod creates a script pod as Tentacle does. Right after a Tentacle pod starts,
// the webhook's informer may not have seen it yet; like a retrying client, the create is
// retried only on that specific, retryable refusal.
func createScriptPod(t *testing.T, ctx context.Context, pod *corev1.Pod) error {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := pod.DeepCopy()
		err := cp.Client.Create(ctx, p)
		if err == nil {
			*pod = *p
			return nil
		}
		if !strings.Contains(err.Error(), "no node holds it yet") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitScheduled(t *testing.T, ctx context.Context, pod *corev1.Pod) string {
	t.Helper()
	eventually(t, ctx, "pod "+pod.Name+" scheduled", func() (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return false, err.Error()
		}
		return pod.Spec.NodeName != "", string(pod.Status.Phase)
	})
	return pod.Spec.NodeName
}

func eventually(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last: %s)", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// decisions reads the webhook's workspace_webhook_decisions_total series from its metrics
// endpoint: "webhook/decision/reason" -> count.
func decisions(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "workspace_webhook_decisions_total{") {
			continue
		}
		labels := line[strings.Index(line, "{")+1 : strings.Index(line, "}")]
		v, err := strconv.ParseFloat(strings.TrimSpace(line[strings.Index(line, "}")+1:]), 64)
		must(t, err)
		kv := map[string]string{}
		for _, l := range strings.Split(labels, ",") {
			if k, val, ok := strings.Cut(l, "="); ok {
				kv[k] = strings.Trim(val, `"`)
			}
		}
		out[kv["webhook"]+"/"+kv["decision"]+"/"+kv["reason"]] = v
	}
	return out
}

func total(m map[string]float64) float64 {
	s := 0.0
	for _, v := range m {
		s += v
	}
	return s
}
