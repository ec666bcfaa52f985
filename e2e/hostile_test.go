package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/reliability"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// The catalogue of malformed and hostile requests. Each gets a clear answer: an HTTP error
// or an AdmissionReview error from the webhook for what is not a well-formed review; for a
// pod, a refusal naming what is wrong and what to do, or admission with a patch the API
// server applied (the stored pod is right), or the API server's own refusal of an object
// it would refuse without the webhook. Never a 5xx from the webhook, never a panic. Each case
// logs one "CATALOGUE |" line (go test -v); TestHostileInput counts how the cases were answered
// and saves the figures as scenario 40 of RELIABILITY.md (hostile_report_test.go).

// TestHostileInput runs the catalogue, both levels, and saves what it observed.
func TestHostileInput(t *testing.T) {
	cat := &catalogue{}
	internalBefore := decisions(t)
	logFrom := len(webhookLog.String())
	t.Run("requests to the endpoint", func(t *testing.T) { hostileRequestsToTheEndpoint(t, cat) })
	t.Run("objects through the API server", func(t *testing.T) { hostileObjectsThroughTheAPIServer(t, cat) })
	reliability.Save(t, cat.result(internalErrors(internalBefore, decisions(t)), panicLines(webhookLog.String()[logFrom:])))
}

// Transport level: raw requests straight to the webhook's HTTPS endpoint.
func hostileRequestsToTheEndpoint(t *testing.T, cat *catalogue) {
	c, base := webhookClient(t)
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ns","labels":{"octopus.com/scriptTicketId":"1"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`
	review := func(apiVersion, kind, request string) []byte {
		return []byte(`{"apiVersion":"` + apiVersion + `","kind":"` + kind + `","request":` + request + `}`)
	}
	request := func(uid, object string) string {
		r := `{"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"ns","operation":"CREATE","object":` + object + `}`
		if uid != "" {
			r = `{"uid":"` + uid + `",` + r[1:]
		}
		return r
	}
	ok := review("admission.k8s.io/v1", "AdmissionReview", request("u-1", pod))
	huge := review("admission.k8s.io/v1", "AdmissionReview", request("u-2", `{"metadata":{"annotations":{"x":"`+strings.Repeat("a", 8<<20)+`"}}}`))
	claim := strings.Replace(request("u-3", `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"c"}}`), `"kind":"Pod"`, `"kind":"PersistentVolumeClaim"`, 1)
	cases := []struct {
		name, method, path, contentType string
		body                            []byte
		httpStatus                      int   // 200 unless another is given
		code                            int32 // the review's result code
		allowed                         bool
		says                            string
	}{
		{name: "empty body", body: nil, code: 400, says: "request body is empty"},
		{name: "wrong content type", contentType: "text/plain", body: ok, code: 400, says: "contentType=text/plain, expected application/json"},
		{name: "content type with parameters", contentType: "application/json; charset=utf-8", body: ok, code: 400, says: "contentType=application/json; charset=utf-8"},
		{name: "not JSON", body: []byte("apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n"), code: 400, says: "decoding the AdmissionReview"},
		{name: "trailing data after the review", body: append(append([]byte{}, ok...), "{}"...), code: 400, says: "decoding the AdmissionReview"},
		{name: "wrong kind", body: review("admission.k8s.io/v1", "AdmissionResponse", request("u-1", pod)), code: 400, says: `kind "AdmissionResponse": expected an AdmissionReview`},
		{name: "wrong version", body: review("admission.k8s.io/v2", "AdmissionReview", request("u-1", pod)), code: 400, says: `apiVersion "admission.k8s.io/v2"`},
		{name: "missing UID", body: review("admission.k8s.io/v1", "AdmissionReview", request("", pod)), code: 400, says: "the AdmissionReview request has no uid"},
		{name: "no request", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), code: 400, says: "the AdmissionReview has no request"},
		{name: "huge body (8 MiB)", body: huge, code: 413, says: "request entity is too large; limit is 7340032 bytes"},
		{name: "object nested deeper than JSON allows", body: review("admission.k8s.io/v1", "AdmissionReview", request("u-1", strings.Repeat("[", 10001)+strings.Repeat("]", 10001))),
			code: 400, says: "exceeded max depth"},
		{name: "object not a pod", body: review("admission.k8s.io/v1", "AdmissionReview", request("u-1", `"a pod"`)), code: 400, says: "decoding pod"},
		{name: "object missing", body: review("admission.k8s.io/v1", "AdmissionReview", request("u-1", `null`)), code: 400, says: "the request carries no pod"},
		{name: "GET without a body", method: http.MethodGet, code: 400, says: "request body is empty"},
		{name: "a claim sent to the pod webhook", body: review("admission.k8s.io/v1", "AdmissionReview", claim), code: 200, allowed: true, says: "not a pod creation"},
		{name: "unknown path", path: "/mutate-everything", body: ok, httpStatus: http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			row := cat.add(t, "endpoint", tc.name)
			method, path, ct := tc.method, tc.path, tc.contentType
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = app.MutatePodPath
			}
			if ct == "" {
				ct = "application/json"
			}
			req, err := http.NewRequest(method, base+path, bytes.NewReader(tc.body))
			must(t, err)
			req.Header.Set("Content-Type", ct)
			resp, err := c.Do(req)
			must(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var out admissionv1.AdmissionReview
			decodeErr := json.Unmarshal(body, &out)
			row.endpointAnswer(resp.StatusCode, out.Response)
			want := tc.httpStatus
			if want == 0 {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, want, body)
			}
			if want != http.StatusOK {
				logOutcome(t, row, fmt.Sprintf("HTTP %d", resp.StatusCode))
				return
			}
			if decodeErr != nil || out.Response == nil || out.Response.Result == nil {
				t.Fatalf("not an AdmissionReview answer (%v): %s", decodeErr, body)
			}
			r := out.Response
			if r.Allowed != tc.allowed || r.Result.Code != tc.code || !strings.Contains(r.Result.Message, tc.says) {
				t.Fatalf("allowed=%v %d %q; want allowed=%v %d %q", r.Allowed, r.Result.Code, r.Result.Message, tc.allowed, tc.code, tc.says)
			}
			logOutcome(t, row, fmt.Sprintf("review %d: %s", r.Result.Code, r.Result.Message))
		})
	}
	// The TLS port speaks nothing but TLS.
	t.Run("plain HTTP to the TLS port", func(t *testing.T) {
		row := cat.add(t, "endpoint", "plain HTTP to the TLS port")
		resp, err := http.Post("http://"+strings.TrimPrefix(base, "https://")+app.MutatePodPath, "application/json", bytes.NewReader(ok))
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		row.endpointAnswer(resp.StatusCode, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "Client sent an HTTP request to an HTTPS server") {
			t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
		}
		logOutcome(t, row, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body))))
	})
	assertNoPanic(t)
}

// outcome is how a hostile object ended.
type outcome int

const (
	admitted        outcome = iota // created, with the webhook's patch applied
	refusedByUs                    // the webhook refused it, saying why
	refusedByServer                // the API server refused it, as it does without the webhook
	notSent                        // the webhook configuration never sends it
	admittedAsIs                   // the webhook saw it and admitted it unchanged, with the reason in says
)

func (o outcome) String() string {
	return [...]string{"admitted", "refused by the webhook", "refused by the API server", "not sent to the webhook", "admitted unchanged"}[o]
}

// Object level: hostile pods and claims created through the real kube-apiserver.
func hostileObjectsThroughTheAPIServer(t *testing.T, cat *catalogue) {
	ctx := ctxFor(t, 6*time.Minute)
	// Agent A holds its ReadWriteOnce workspace on node-2, agent B on node-3; nsNone has no agent.
	a := tentacle.Agent{Namespace: "hostile-a", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-2")}
	b := tentacle.Agent{Namespace: "hostile-b", Release: "beta", AccessModes: rwo, NodeSelector: onNode("node-3")}
	installAgent(t, ctx, a, true)
	installAgent(t, ctx, b, true)
	const nsNone = "hostile-none"
	_, err := cp.CreateNamespace(ctx, nsNone)
	must(t, err)
	must(t, cp.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: a.ScriptServiceAccount(), Namespace: nsNone}}))
	// A claim of A's namespace that no Tentacle mounts, bound to nothing.
	scratch := a.Claim()
	scratch.Name, scratch.Spec.VolumeName, scratch.Labels = "scratch-rwo", "", nil
	must(t, cp.Client.Create(ctx, scratch))
	waitTentacleRunning(t, ctx, a)
	waitTentacleRunning(t, ctx, b)
	time.Sleep(time.Second) // the webhook's informers see the Tentacle pods

	script := func(ticket string, style tentacle.Style, edit func(*corev1.Pod)) func() *corev1.Pod {
		return func() *corev1.Pod {
			p := a.ScriptPod(ticket, style)
			if edit != nil {
				edit(p)
			}
			return p
		}
	}
	emptyDir := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	containers := func(n int) []corev1.Container {
		cs := make([]corev1.Container, n)
		for i := range cs {
			cs[i] = corev1.Container{Name: "c" + strconv.Itoa(i), Image: "busybox"}
		}
		return cs
	}
	pinnedTo := func(node string) func(*testing.T, *corev1.Pod) {
		return func(t *testing.T, p *corev1.Pod) {
			if !workspace.IsPinned(p, node) {
				t.Fatalf("not pinned to %s: %+v %+v", node, p.Spec.Affinity, p.Spec.NodeName)
			}
		}
	}
	workspaceOf := func(claim, node string) func(*testing.T, *corev1.Pod) {
		return func(t *testing.T, p *corev1.Pod) {
			t.Helper()
			assertWorkspace(t, p, claim)
			pinnedTo(node)(t, p)
		}
	}
	longName := strings.Repeat("octopus-script.", 16) + strings.Repeat("x", 253-16*15)

	cases := []struct {
		name    string
		pod     func() *corev1.Pod
		dryRun  bool
		want    outcome
		says    []string                      // words of the refusal
		check   func(*testing.T, *corev1.Pod) // what the stored pod must be
		rawBody []byte                        // POSTed as is instead of pod (the API server decodes it)
	}{
		{name: "a Tentacle script pod (control)", pod: script("h00", tentacle.StyleV2, nil), want: admitted, check: workspaceOf(a.ClaimName(), "node-2")},
		{name: "5,000 containers", pod: script("h01", tentacle.StyleTemplate, func(p *corev1.Pod) { p.Spec.Containers = containers(5000) }),
			want: admitted, check: workspaceOf(a.ClaimName(), "node-2")},
		{name: "a 253-character name with dots and a 63-character container name", pod: script("h03", tentacle.StyleV2, func(p *corev1.Pod) {
			p.Name = longName
			p.Spec.Containers[0].Name = strings.Repeat("c", 63)
			p.Labels["octopus.com/scriptTicketId"] = "A.b_c-9"
		}), want: admitted, check: workspaceOf(a.ClaimName(), "node-2")},
		{name: "generateName only", pod: script("h04", tentacle.StyleV2, func(p *corev1.Pod) { p.Name, p.GenerateName = "", "octopus-script-" }),
			want: admitted, check: workspaceOf(a.ClaimName(), "node-2")},
		{name: "an empty script ticket", pod: script("h05", tentacle.StyleV2, func(p *corev1.Pod) { p.Labels["octopus.com/scriptTicketId"] = "" }),
			want: admitted, check: workspaceOf(a.ClaimName(), "node-2")},
		{name: "'/' in annotation keys, and one of the webhook's own prefix", pod: script("h06", tentacle.StyleTemplate, func(p *corev1.Pod) {
			p.Annotations = map[string]string{"example.com/a": "1", "a.b.c/d-e_f.g": "2", "workspace-webhook.io/other": "3", "meta.helm.sh/release-name": "prod"}
		}), want: admitted, check: func(t *testing.T, p *corev1.Pod) {
			workspaceOf(a.ClaimName(), "node-2")(t, p)
			for k, v := range map[string]string{"example.com/a": "1", "a.b.c/d-e_f.g": "2", "workspace-webhook.io/other": "3"} {
				if p.Annotations[k] != v {
					t.Fatalf("annotation %s lost: %v", k, p.Annotations)
				}
			}
		}},
		{name: "'~' in an annotation key", pod: script("h07", tentacle.StyleV2, func(p *corev1.Pod) { p.Annotations["example.com/a~b"] = "x" }),
			want: refusedByServer, says: []string{"example.com/a~b", "metadata.annotations: Invalid value"}},
		{name: "another volume at the workspace path", pod: script("h08", tentacle.StyleTemplate, func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{emptyDir("scratch")}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/octopus"}}
		}), want: refusedByUs, says: []string{`no container of the pod can mount the workspace claim "` + a.ClaimName() + `" at /octopus`, "free /octopus"}},
		{name: "another volume at the workspace path spelled /octopus/", pod: script("h09", tentacle.StyleTemplate, func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{emptyDir("scratch")}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/octopus/"}}
		}), want: refusedByUs, says: []string{"every container already uses that path for another volume"}},
		{name: "the workspace path taken in one container of two", pod: script("h10", tentacle.StyleTemplate, func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{emptyDir("scratch")}
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "sidecar", Image: "busybox",
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/octopus"}}})
		}), want: admitted, check: func(t *testing.T, p *corev1.Pod) {
			pinnedTo("node-2")(t, p)
			for _, m := range p.Spec.Containers[1].VolumeMounts {
				if m.MountPath == "/octopus" && m.Name != "scratch" || m.Name == "tentacle-home" {
					t.Fatalf("the sidecar's own mount was touched: %+v", p.Spec.Containers[1].VolumeMounts)
				}
			}
			if !mountsWorkspace(&corev1.Pod{Spec: corev1.PodSpec{Volumes: p.Spec.Volumes, Containers: p.Spec.Containers[:1]}}, a.ClaimName()) {
				t.Fatalf("the free container did not get the workspace: %+v", p.Spec.Containers[0].VolumeMounts)
			}
		}},
		{name: "tentacle-home naming another claim of the namespace", pod: script("h11", tentacle.StyleV2, func(p *corev1.Pod) {
			p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName = "scratch-rwo"
		}), want: refusedByUs, says: []string{"workspace claim hostile-a/scratch-rwo is ReadWriteOnce and no node holds it yet", "no Tentacle pod mounts it"}},
		{name: "tentacle-home naming a claim that only another namespace has", pod: script("h12", tentacle.StyleV2, func(p *corev1.Pod) {
			p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName = b.ClaimName()
		}), want: refusedByUs, says: []string{"workspace claim hostile-a/" + b.ClaimName(), "does not exist"}},
		{name: "cross-namespace: B's script pod naming A's claim", pod: func() *corev1.Pod {
			p := b.ScriptPod("h13", tentacle.StyleV2)
			p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName = a.ClaimName()
			return p
		}, want: refusedByUs, says: []string{"workspace claim hostile-b/" + a.ClaimName(), "does not exist"}},
		{name: "cross-namespace: a pod of a namespace without agent naming A's release, namespace and claim", pod: func() *corev1.Pod {
			p := a.ScriptPod("h14", tentacle.StyleV2)
			p.Namespace = nsNone
			return p
		}, want: refusedByUs, says: []string{"workspace claim " + nsNone + "/" + a.ClaimName(), "does not exist"}},
		{name: "cross-namespace: a template pod of a namespace without agent naming A's release and namespace", pod: func() *corev1.Pod {
			p := a.ScriptPod("h15", tentacle.StyleTemplate)
			p.Namespace = nsNone
			return p
		}, want: refusedByUs, says: []string{"no Tentacle pod of agent " + nsNone + "/prod exists in namespace \"" + nsNone + "\""}},
		{name: "cross-namespace: B's script pod naming A's release and namespace", pod: func() *corev1.Pod {
			p := b.ScriptPod("h16", tentacle.StyleTemplate)
			p.Annotations["meta.helm.sh/release-name"], p.Annotations["meta.helm.sh/release-namespace"] = a.Release, a.Namespace
			return p
		}, want: refusedByUs, says: []string{"no Tentacle pod of agent hostile-b/prod exists in namespace \"hostile-b\""}},
		{name: "a release that does not exist", pod: script("h17", tentacle.StyleTemplate, func(p *corev1.Pod) { p.Annotations["meta.helm.sh/release-name"] = "ghost" }),
			want: refusedByUs, says: []string{"no Tentacle pod of agent hostile-a/ghost exists", "create script pods through the agent"}},
		{name: "a release name no label can carry", pod: script("h18", tentacle.StyleTemplate, func(p *corev1.Pod) { p.Annotations["meta.helm.sh/release-name"] = "ghost release!" }),
			want: refusedByUs, says: []string{`no Tentacle pod of agent hostile-a/ghost release! exists`}},
		{name: "100 node-selector terms of 10 expressions", pod: script("h19", tentacle.StyleV2, func(p *corev1.Pod) {
			terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
			for i := 1; i < 100; i++ {
				var exprs []corev1.NodeSelectorRequirement
				for j := 0; j < 10; j++ {
					exprs = append(exprs, corev1.NodeSelectorRequirement{Key: "example.com/k" + strconv.Itoa(j), Operator: corev1.NodeSelectorOpIn, Values: []string{"v" + strconv.Itoa(i)}})
				}
				terms.NodeSelectorTerms = append(terms.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchExpressions: exprs})
			}
		}), want: admitted, check: func(t *testing.T, p *corev1.Pod) {
			workspaceOf(a.ClaimName(), "node-2")(t, p)
			if n := len(p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms); n != 100 {
				t.Fatalf("%d terms stored, want 100", n)
			}
		}},
		{name: "an object nested 10,001 deep", rawBody: []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"deep","namespace":"hostile-a","labels":{"octopus.com/scriptTicketId":"h20"}},"spec":{"x":` +
			strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}}`), want: refusedByServer, says: []string{"max depth"}},
		{name: "annotations over 256 KiB", pod: script("h21", tentacle.StyleV2, func(p *corev1.Pod) { p.Annotations["example.com/big"] = strings.Repeat("x", 300<<10) }),
			want: refusedByServer, says: []string{"metadata.annotations: Too long"}},
		{name: "a body over 3 MiB", pod: script("h22", tentacle.StyleV2, func(p *corev1.Pod) { p.Annotations["example.com/huge"] = strings.Repeat("x", 4<<20) }),
			want: refusedByServer, says: []string{"too large"}},
		{name: "a nodeSelector for another node", pod: script("h23", tentacle.StyleV2, func(p *corev1.Pod) { p.Spec.NodeSelector = onNode("node-1") }),
			want: refusedByUs, says: []string{`attached to node "node-2"`, "its nodeSelector kubernetes.io/hostname=node-1 does not match", "remove that node selection"}},
		{name: "spec.nodeName of another node", pod: script("h24", tentacle.StyleV2, func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }),
			want: refusedByUs, says: []string{`spec.nodeName binds it to node "node-1"`}},
		{name: "a forged record of a pin elsewhere", pod: script("h25", tentacle.StyleV2, func(p *corev1.Pod) {
			p.Annotations[workspace.RecordAnnotation] = `{"claim":"` + a.ClaimName() + `","node":"node-1"}`
			p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields =
				[]corev1.NodeSelectorRequirement{workspace.PinRequirement("node-1")}
		}), want: refusedByUs, says: []string{"node-1", "node-2", "create it again"}},
		{name: "a record that is not JSON", pod: script("h26", tentacle.StyleV2, func(p *corev1.Pod) { p.Annotations[workspace.RecordAnnotation] = "{{{" }),
			want: admitted, check: func(t *testing.T, p *corev1.Pod) {
				workspaceOf(a.ClaimName(), "node-2")(t, p)
				if r := record(t, p); r.Claim != a.ClaimName() {
					t.Fatalf("record not replaced: %+v", r)
				}
			}},
		{name: "both workspace volume names taken", pod: script("h27", tentacle.StyleTemplate, func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{emptyDir("tentacle-home"), emptyDir("tentacle-workspace")}
		}), want: refusedByUs, says: []string{`unrelated volumes named "tentacle-home" and "tentacle-workspace"`, "rename one of them"}},
		{name: "init containers", pod: script("h28", tentacle.StyleTemplate, func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}}
		}), want: admitted, check: func(t *testing.T, p *corev1.Pod) {
			workspaceOf(a.ClaimName(), "node-2")(t, p)
			if !mountsWorkspace(&corev1.Pod{Spec: corev1.PodSpec{Volumes: p.Spec.Volumes, Containers: p.Spec.InitContainers}}, a.ClaimName()) {
				t.Fatalf("the init container has no workspace: %+v", p.Spec.InitContainers[0].VolumeMounts)
			}
		}},
		{name: "two volumes named tentacle-home", pod: script("h29", tentacle.StyleV2, func(p *corev1.Pod) { p.Spec.Volumes = append(p.Spec.Volumes, emptyDir("tentacle-home")) }),
			want: refusedByServer, says: []string{"spec.volumes[2].name: Duplicate value"}},
		{name: "a script pod in the webhook's own namespace", pod: func() *corev1.Pod {
			p := a.ScriptPod("h30", tentacle.StyleTemplate)
			p.Namespace, p.Spec.ServiceAccountName = "octopus-workspace-webhook", ""
			return p
		}, want: notSent},
		{name: "a dry run", pod: script("h31", tentacle.StyleV2, nil), dryRun: true, want: admitted, check: workspaceOf(a.ClaimName(), "node-2")},
		{name: "cross-namespace: a new Tentacle pod of B mounting A's claim", pod: func() *corev1.Pod {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-tentacle-hostile", Namespace: b.Namespace, Labels: b.TentacleLabels()},
				Spec: b.Deployment().Spec.Template.Spec}
			p.Spec.NodeSelector = nil
			p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName = a.ClaimName()
			return p
		}, want: admittedAsIs, says: []string{"mutate-tentacle-pod/allowed/TentacleClaimUnknown"}},
		{name: "a workspace claim mounted at /octopus/ by the pod itself", pod: script("h32", tentacle.StyleV2, func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts[0].MountPath = "/octopus/"
		}), want: admitted, check: func(t *testing.T, p *corev1.Pod) {
			pinnedTo("node-2")(t, p)
			n := 0
			for _, m := range p.Spec.Containers[0].VolumeMounts {
				if m.Name == "tentacle-home" {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("a second workspace mount was added: %+v", p.Spec.Containers[0].VolumeMounts)
			}
		}},
	}
	_, err = cp.CreateNamespace(ctx, "octopus-workspace-webhook")
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	internal := decisions(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			row := cat.add(t, "pod", tc.name)
			var opts []client.CreateOption
			if tc.dryRun {
				opts = append(opts, client.DryRunAll)
			}
			var pod *corev1.Pod
			var err error
			before := decisions(t)
			if tc.rawBody != nil {
				err = rawCreate(ctx, "hostile-a", tc.rawBody)
			} else {
				pod = tc.pod()
				err = cp.Client.Create(ctx, pod, opts...)
			}
			if pod != nil && err == nil && !tc.dryRun {
				t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), pod, client.GracePeriodSeconds(0)) })
			}
			// A refusal that is neither a 5xx nor the webhook's: the same pod without the script
			// label (which the webhook never sees) tells the pod's own fault from the patch's.
			var unpatched error
			twin := err != nil && pod != nil && statusCode(err) < 500 && !deniedByWebhook(err)
			if twin {
				unlabelled := tc.pod()
				delete(unlabelled.Labels, "octopus.com/scriptTicketId")
				unpatched = cp.Client.Create(ctx, unlabelled, client.DryRunAll)
			}
			row.apiAnswer(err, pod, twin, unpatched, total(decisions(t)) > total(before))
			if code := statusCode(err); code >= 500 {
				t.Fatalf("HTTP %d: %v", code, err)
			}
			switch tc.want {
			case admitted:
				must(t, err)
				if _, ok := pod.Annotations[workspace.RecordAnnotation]; !ok {
					t.Fatalf("admitted without the webhook's record: %v", pod.Annotations)
				}
				tc.check(t, pod)
				logOutcome(t, row, fmt.Sprintf("%s (%s)", tc.want, record(t, pod).Node))
			case admittedAsIs:
				must(t, err)
				if _, ok := pod.Annotations[workspace.RecordAnnotation]; ok || pod.Spec.Affinity != nil {
					t.Fatalf("changed: %v %+v", pod.Annotations, pod.Spec.Affinity)
				}
				if now := decisions(t); now[tc.says[0]] <= before[tc.says[0]] {
					t.Fatalf("no %s decision was recorded", tc.says[0])
				}
				logOutcome(t, row, fmt.Sprintf("%s (%s)", tc.want, tc.says[0]))
			case notSent:
				must(t, err)
				if _, ok := pod.Annotations[workspace.RecordAnnotation]; ok || mountsWorkspace(pod, a.ClaimName()) || pod.Spec.Affinity != nil {
					t.Fatalf("the webhook changed a pod it should never see: %+v %+v", pod.Spec.Volumes, pod.Spec.Affinity)
				}
				logOutcome(t, row, tc.want.String())
			case refusedByUs:
				if err == nil || !strings.Contains(err.Error(), `admission webhook "script-pod-workspace.workspace-webhook.io" denied the request`) {
					t.Fatalf("want the webhook's refusal, got %v", err)
				}
				saysAll(t, err, tc.says)
				logOutcome(t, row, fmt.Sprintf("%s (HTTP %d): %s", tc.want, statusCode(err), afterWebhookName(err)))
			case refusedByServer:
				if err == nil || strings.Contains(err.Error(), "admission webhook") {
					t.Fatalf("want the API server's own refusal, got %v", err)
				}
				saysAll(t, err, tc.says)
				if pod != nil {
					// The same pod, which the webhook never sees, is refused alike: the refusal is
					// the pod's, not the patch's.
					if unpatched == nil || statusCode(unpatched) != statusCode(err) {
						t.Fatalf("without the webhook: %v (with it: %v)", unpatched, err)
					}
				}
				logOutcome(t, row, fmt.Sprintf("%s (HTTP %d): %s", tc.want, statusCode(err), firstLine(err.Error(), 160)))
			}
		})
	}
	// The agent's claims, as the claim webhook sees them: admitted with a warning that says why
	// they would stay Pending.
	claims := []struct {
		name  string
		claim *corev1.PersistentVolumeClaim
		warns []string
	}{
		{"a claim naming a 253-character class that does not exist", agentClaim(a.Namespace, "c1", ptr.To(strings.Repeat("c", 253)), corev1.ReadWriteMany),
			[]string{`StorageClass "` + strings.Repeat("c", 253) + `"`, "does not exist"}},
		{"a claim naming a volume that does not exist", func() *corev1.PersistentVolumeClaim {
			c := agentClaim(a.Namespace, "c2", ptr.To(""), corev1.ReadWriteOnce)
			c.Spec.VolumeName = "pv-that-was-never-created"
			return c
		}(), []string{`PersistentVolume "pv-that-was-never-created", which it names, cannot take it`, "that volume does not exist", "stay Pending"}},
	}
	for _, tc := range claims {
		t.Run(tc.name, func(t *testing.T) {
			row := cat.add(t, "claim", tc.name)
			c, w := clientWithWarnings(t)
			err := c.Create(ctx, tc.claim)
			row.apiAnswer(err, nil, false, nil, true)
			if err == nil {
				row.detail = "admitted with a warning: " + firstLine(w.all(), 160)
			}
			must(t, err)
			t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), tc.claim) })
			for _, word := range tc.warns {
				if !strings.Contains(w.all(), word) {
					t.Errorf("no warning says %q: %s", word, w.all())
				}
			}
			logOutcome(t, row, "admitted with a warning: "+firstLine(w.all(), 160))
		})
	}

	after := decisions(t)
	for k, v := range after {
		if strings.HasSuffix(k, "/InternalError") && v != internal[k] {
			t.Errorf("the webhook answered %v InternalError during the catalogue (%s)", v-internal[k], k)
		}
	}
	assertNoPanic(t)
}

// assertWorkspace checks a stored pod: one volume of the claim, mounted at /octopus in every
// container that had the path free.
func assertWorkspace(t *testing.T, p *corev1.Pod, claim string) {
	t.Helper()
	var volumes []string
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			volumes = append(volumes, v.Name)
		}
	}
	if len(volumes) != 1 {
		t.Fatalf("%d volumes of claim %s: %v", len(volumes), claim, volumes)
	}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			n := 0
			for _, m := range c.VolumeMounts {
				if m.Name == volumes[0] && m.MountPath == "/octopus" {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("container %s mounts the workspace %d times: %+v", c.Name, n, c.VolumeMounts)
			}
		}
	}
	if r := record(t, p); r.Claim != claim || r.Volume != volumes[0] {
		t.Fatalf("record %+v", r)
	}
}

// webhookClient reaches the webhook's HTTPS endpoint as the API server does.
func webhookClient(t *testing.T) (*http.Client, string) {
	t.Helper()
	wio := cp.WebhookInstallOptions
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(wio.LocalServingCAData) {
		t.Fatal("no serving CA")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}},
		"https://" + net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort))
}

// rawCreate POSTs body as a pod of ns, as kubectl would send a file it did not parse.
func rawCreate(ctx context.Context, ns string, body []byte) error {
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	return cs.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()
}

func statusCode(err error) int {
	if err == nil {
		return 0
	}
	if s, ok := err.(apierrors.APIStatus); ok {
		return int(s.Status().Code)
	}
	return -1
}

func saysAll(t *testing.T, err error, words []string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the refusal does not say %q:\n%v", w, err)
		}
	}
}

func afterWebhookName(err error) string {
	s := err.Error()
	if i := strings.Index(s, "denied the request: "); i >= 0 {
		s = s[i+len("denied the request: "):]
	}
	return firstLine(s, 160)
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// logOutcome is one line of the catalogue: how the case ended, as the test expected it.
func logOutcome(t *testing.T, row *caseRow, what string) {
	t.Helper()
	row.detail = what
	t.Logf("CATALOGUE | %s | %s | %s |", row.level, row.name, what)
}

// assertNoPanic: no handler panicked (controller-runtime would have answered 500 and logged it).
func assertNoPanic(t *testing.T) {
	t.Helper()
	if l := strings.ToLower(webhookLog.String()); strings.Contains(l, "panic") {
		i := strings.Index(l, "panic")
		t.Fatalf("the webhook log mentions a panic: ...%s...", webhookLog.String()[max(0, i-300):min(len(l), i+300)])
	}
}
