package bench

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	wh "github.com/octopus-agent-tools/workspace-webhook/webhook"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// noopPath serves the floor: the same server, mux, metrics wrapper and review server
// (AdmissionReview decoded once, its object left as raw bytes, response encoded) with a
// handler that decides nothing. controllerRuntimeNoopPath serves the same no-op handler
// through controller-runtime's admission.Webhook.ServeHTTP, which most webhooks use: context
// for how much the review server saves.
const (
	noopPath                  = "/bench-noop"
	controllerRuntimeNoopPath = "/bench-noop-controller-runtime"
)

var noop = admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
	return admission.Allowed("")
})

// inProcess is the real webhook (app.NewManager: scoped informer cache, handlers, probes)
// running in this test binary against the shared kube-apiserver, with the no-op handler
// registered on the same webhook server.
type inProcess struct {
	mux        http.Handler // the webhook server's mux: what its TLS listener serves
	addr       string       // 127.0.0.1:port of the HTTPS listener
	pool       *x509.CertPool
	node       string
	mutateBody []byte // AdmissionReview of a Tentacle v3 script pod CREATE
}

var inproc struct {
	once sync.Once
	w    *inProcess
	err  error
}

// inProcessWebhook starts the webhook once per test binary; it stops when the binary ends.
func inProcessWebhook(t testing.TB) *inProcess {
	t.Helper()
	cp := apiserverOnly(t)
	inproc.once.Do(func() { inproc.w, inproc.err = startInProcess(t, cp) })
	if inproc.err != nil {
		t.Fatal(inproc.err)
	}
	return inproc.w
}

func startInProcess(t testing.TB, cp *controlplane.ControlPlane) (*inProcess, error) {
	ctx, cancel := context.WithCancel(context.Background())
	dir, err := os.MkdirTemp("", "bench-inprocess-")
	if err != nil {
		cancel()
		return nil, err
	}
	atExit(func() { cancel(); time.Sleep(100 * time.Millisecond); _ = os.RemoveAll(dir) })

	w := &inProcess{node: "node-1", pool: webhookprocess.WriteServingCerts(t, dir)}
	a := benchAgent("octopus-agent-inprocess")
	if _, err := seedAgent(ctx, cp.Client, a, w.node); err != nil {
		return nil, fmt.Errorf("seeding the agent: %w", err)
	}
	opts := app.DefaultOptions()
	opts.Host, opts.CertDir = "127.0.0.1", dir
	w.addr, opts.Port = webhookprocess.FreeAddr(t)
	opts.MetricsAddr, _ = webhookprocess.FreeAddr(t)
	opts.ProbeAddr, _ = webhookprocess.FreeAddr(t)
	opts.Namespace = "octopus-workspace-webhook"
	mgr, err := app.NewManager(cp.Config, opts, discardLogger())
	if err != nil {
		return nil, err
	}
	srv := mgr.GetWebhookServer()
	srv.Register(noopPath, wh.NewReviewServer(noop, false, discardLogger()))
	srv.Register(controllerRuntimeNoopPath, &webhook.Admission{Handler: noop})
	w.mux = srv.WebhookMux()
	go func() { _ = mgr.Start(ctx) }()
	if err := controlplane.WaitOK(ctx, "http://"+opts.ProbeAddr+"/readyz", time.Minute); err != nil {
		return nil, err
	}

	pod, err := scriptPodObject(ctx, cp.Client, a, "9f1c2b3a4d5e")
	if err != nil {
		return nil, err
	}
	podJSON, err := json.Marshal(pod)
	if err != nil {
		return nil, err
	}
	w.mutateBody = admissionReview(podJSON, a.Namespace, pod.Name)
	resp, err := webhookprocess.DecodeResponse(serveOnce(w.mux, app.MutatePodPath, w.mutateBody).Body.Bytes())
	if err != nil {
		return nil, err
	}
	if !resp.Allowed || len(resp.Patch) == 0 || !strings.Contains(string(resp.Patch), w.node) {
		return nil, fmt.Errorf("the mutating webhook did not pin the script pod to %s: allowed=%v result=%v patch=%s", w.node, resp.Allowed, resp.Result, resp.Patch)
	}
	final, err := admitted(podJSON, resp.Patch)
	if err != nil {
		return nil, err
	}
	var finalPod corev1.Pod
	if err := json.Unmarshal(final, &finalPod); err != nil {
		return nil, err
	}
	if v := workspace.CheckFinalState(&finalPod); v.Denied || v.Code != reason.WorkspaceValid {
		return nil, fmt.Errorf("the final-state check refuses the mutated pod: %s %s", v.Code, v.Message)
	}
	return w, nil
}

// request is a reusable POST of body to path, as the webhook server's listener would
// produce it; each call to next returns a fresh shallow copy with a fresh body reader.
type request struct {
	tmpl http.Request
	rd   bytes.Reader
	body []byte
}

func newRequest(path string, body []byte) *request {
	r := &request{body: body}
	r.tmpl = http.Request{Method: http.MethodPost, URL: &url.URL{Path: path}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, ContentLength: int64(len(body)), Host: "127.0.0.1", RequestURI: path,
		RemoteAddr: "127.0.0.1:50000"}
	r.tmpl = *r.tmpl.WithContext(context.Background())
	return r
}

func (r *request) next() *http.Request {
	r.rd.Reset(r.body)
	req := r.tmpl
	req.Body = io.NopCloser(&r.rd)
	return &req
}

func serveOnce(h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest(path, body).next())
	return rec
}
