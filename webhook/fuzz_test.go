package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/internal/fuzzcorpus"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/internal/patchtest"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

var update = flag.Bool("update", false, "rewrite the committed fuzz seeds")

// The webhook's paths, as webhook/app registers them (app imports this package).
var fuzzPaths = []string{"/mutate-script-pod", "/mutate-tentacle-pod", "/validate-script-pod", "/validate-workspace-claim"}

const fuzzClaim = "octopus-agent-prod-pvc"

// fuzzFacts are what the fact finders report, picked by the fuzzer: every decision path
// of the handlers, without a cluster.
var fuzzFacts = func() []workspace.Facts {
	claim := func(class string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: fuzzClaim, Namespace: "octopus-agent-prod"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: modes, StorageClassName: ptr.To(class)}}
	}
	node := func(cordoned bool) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-2", Labels: map[string]string{corev1.LabelHostname: "node-2", corev1.LabelOSStable: "linux"}},
			Spec:   corev1.NodeSpec{Unschedulable: cordoned},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	}
	agent := workspace.Facts{TentaclePods: 1, TentaclePod: "octopus-agent-tentacle-0", ClaimName: fuzzClaim, ClaimSource: "fuzz", Node: "node-2", NodeSource: "fuzz"}
	with := func(f func(*workspace.Facts)) workspace.Facts { c := agent; f(&c); return c }
	return []workspace.Facts{
		with(func(f *workspace.Facts) { f.Claim, f.NodeInfo = claim("gp3", corev1.ReadWriteOnce), node(false) }),
		with(func(f *workspace.Facts) { f.Claim, f.NodeInfo = claim("gp3", corev1.ReadWriteOnce), node(true) }),
		with(func(f *workspace.Facts) { f.Claim = claim("efs", corev1.ReadWriteMany) }),
		with(func(f *workspace.Facts) { f.Claim = claim("ebs", corev1.ReadWriteMany) }),
		with(func(f *workspace.Facts) { f.Claim = claim("mystery", corev1.ReadWriteMany) }),
		with(func(f *workspace.Facts) { f.Claim, f.Node = claim("gp3", corev1.ReadWriteOnce), "" }),
		with(func(f *workspace.Facts) { f.Claim = claim("gp3", corev1.ReadWriteOncePod) }),
		with(func(f *workspace.Facts) { f.Claim = nil }),
		{},
	}
}()

// fuzzFinder reports one of fuzzFacts for script pods and Tentacle pods alike.
type fuzzFinder struct{ f *workspace.Facts }

func (s fuzzFinder) Facts(_ context.Context, p *corev1.Pod) (workspace.Facts, error) {
	f := *s.f
	f.Agent.Namespace = p.Namespace
	return f, nil
}

func (s fuzzFinder) TentacleFacts(ctx context.Context, p *corev1.Pod) (workspace.Facts, error) {
	return s.Facts(ctx, p)
}

// fuzzMux is the webhook server's mux (controller-runtime's, with its metrics wrapper) with
// every handler of webhook/app registered at its path, over fakes: the facts in *facts, and
// StorageClasses ebs (cannot serve ReadWriteMany), efs (can) and mystery (unknown, the
// default). Panics are not recovered, so that the fuzzer reports them with their stack.
func fuzzMux(facts *workspace.Facts) http.Handler {
	classes := []storagev1.StorageClass{storageClass("ebs", "ebs.csi.aws.com", false), storageClass("mystery", "csi.example.com", true)}
	efs := storageClass("efs", "efs.csi.aws.com", false)
	efs.Parameters = map[string]string{"provisioningMode": "efs-ap"}
	classes = append(classes, efs)
	judge := &ClaimJudge{Cache: &classReader{classes: classes, nodes: 3}, Live: &classReader{}}
	recorder := &audit.Recorder{Log: logr.Discard()}
	finder := fuzzFinder{facts}
	handlers := []admission.Handler{
		&PodMutator{Finder: finder, Config: workspace.DefaultConfig(), ScriptPodLabel: "octopus.com/scriptTicketId", Claims: judge, Recorder: recorder},
		&TentacleMutator{Finder: finder, MountPath: "/octopus", Recorder: recorder},
		&FinalStateValidator{ScriptPodLabel: "octopus.com/scriptTicketId", Recorder: recorder},
		&ClaimValidator{Decoder: admission.NewDecoder(clientgoscheme.Scheme), Claims: judge, ExcludedNamespaces: map[string]bool{"kube-system": true}, Recorder: recorder},
	}
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{}).(*ctrlwebhook.DefaultServer)
	for i, h := range handlers {
		rs := NewReviewServer(h, fuzzPaths[i] != "/validate-workspace-claim", logr.Discard())
		rs.Webhook.RecoverPanic = ptr.To(false)
		srv.Register(fuzzPaths[i], rs)
	}
	return srv.WebhookMux()
}

// FuzzReviewHTTP sends any body with any content type to any of the webhook's paths, over
// every kind of facts, through the server's own mux. Every answer is HTTP 200 with an
// AdmissionReview (the API server reads the verdict inside), never a 5xx verdict (a panic
// or an internal error: none can come from these fakes), a refusal always says why, an
// answer to a request echoes its UID, the Tentacle pod webhook never refuses a request it
// could read, the validating paths never patch, and a patch applies to the object as the
// API server encodes it, decodes strictly as a Pod, loses nothing, and sent back as a
// reinvocation changes nothing more.
func FuzzReviewHTTP(f *testing.F) {
	facts := new(workspace.Facts)
	mux := fuzzMux(facts)
	f.Fuzz(func(t *testing.T, path byte, contentType string, body []byte, factsChoice byte) {
		*facts = fuzzFacts[int(factsChoice)%len(fuzzFacts)]
		p := fuzzPaths[int(path)%len(fuzzPaths)]
		resp := serveOnce(t, mux, p, contentType, body)
		var sent admissionv1.AdmissionReview
		decoded := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &sent) == nil && sent.Request != nil
		if resp.UID != "" && (!decoded || resp.UID != sent.Request.UID) {
			t.Fatalf("answer carries UID %q, not the request's", resp.UID)
		}
		handled := resp.UID != "" // only an answer from a handler carries the UID
		if p == "/mutate-tentacle-pod" && handled && !resp.Allowed {
			t.Fatalf("the Tentacle pod webhook refused a request: %+v", resp.Result)
		}
		if len(resp.Patch) == 0 {
			return
		}
		if !strings.HasPrefix(p, "/mutate-") {
			t.Fatalf("%s answered with a patch", p)
		}
		if !decoded {
			t.Fatal("a patch for a request that does not decode")
		}
		pod, err := patchtest.DecodePod(sent.Request.Object.Raw)
		if err != nil {
			return // the API server never sends a pod it cannot decode; it would not apply this
		}
		canonical := patchtest.Canonical(pod)
		out, _, err := patchtest.Apply(canonical, resp.Patch)
		if err != nil {
			t.Fatal(err)
		}
		if err := patchtest.Keeps(canonical, out, patchtest.Pointer("/metadata/annotations", workspace.RecordAnnotation)); err != nil {
			t.Fatalf("the patch loses part of the pod: %v\npatch %s", err, resp.Patch)
		}
		sent.Request.Object.Raw, sent.Request.Object.Object = out, nil
		again, err := json.Marshal(sent)
		if err != nil {
			t.Fatal(err)
		}
		if second := serveOnce(t, mux, p, "application/json", again); !second.Allowed || len(second.Patch) > 0 {
			t.Fatalf("reinvocation on the patched pod: allowed=%v patch %s (%+v)", second.Allowed, second.Patch, second.Result)
		}
	})
}

// serveOnce posts one request and checks the answer's form.
func serveOnce(t *testing.T, mux http.Handler, path, contentType string, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("HTTP %d %q: the API server expects 200 with the verdict inside", w.Code, w.Header().Get("Content-Type"))
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response == nil || out.Kind != "AdmissionReview" ||
		(out.APIVersion != "admission.k8s.io/v1" && out.APIVersion != "admission.k8s.io/v1beta1") {
		t.Fatalf("not an AdmissionReview answer (%v): %s", err, w.Body)
	}
	resp := out.Response
	switch {
	case resp.Result != nil && resp.Result.Code >= 500:
		t.Fatalf("server error %d: %s", resp.Result.Code, resp.Result.Message)
	case !resp.Allowed && (resp.Result == nil || resp.Result.Message == "" || resp.Result.Code < 400):
		t.Fatalf("a refusal that does not say why: %+v", resp.Result)
	case len(resp.Patch) > 0 && (resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch):
		t.Fatalf("patch of type %v", resp.PatchType)
	}
	return resp
}

// FuzzDecodeReview: the single-pass decoding (the review and a pod's decision fields at once)
// never panics, and agrees with the general path (the review, its object left raw): whenever
// the general path reads a review, so does the single pass, to the same version and request,
// and its pod is the ScriptPod of the raw object; and then the script pod mutator answers both
// alike whenever the raw object decodes as a whole Pod (as every object the API server sends).
func FuzzDecodeReview(f *testing.F) {
	fast, general := &ReviewServer{DecodePod: true}, &ReviewServer{DecodePod: false}
	facts := new(workspace.Facts)
	mutate := mutator(fuzzFinder{facts})
	f.Fuzz(func(t *testing.T, body []byte, factsChoice byte) {
		*facts = fuzzFacts[int(factsChoice)%len(fuzzFacts)]
		fv, freq, ferr := fast.decode(body)
		gv, greq, gerr := general.decode(body)
		if gerr != nil {
			return // the single pass may read what the general path refuses (e.g. a malformed "response")
		}
		if ferr != nil || fv != gv {
			t.Fatalf("the general path reads %s, the single pass %s: %v", gv, fv, ferr)
		}
		pod, single := freq.Object.Object.(*corev1.Pod)
		if single {
			var sp workspace.ScriptPod
			if err := sigsjson.UnmarshalCaseSensitivePreserveInts(greq.Object.Raw, &sp); err != nil {
				t.Fatalf("the single pass decoded a pod whose raw object is not a ScriptPod: %v", err)
			}
			if want := sp.Pod(); !reflect.DeepEqual(pod, want) {
				t.Fatalf("single-pass pod differs from the raw object's:\n%+v\n%+v", pod, want)
			}
		}
		fo, gobj := freq.Object, greq.Object
		if single {
			freq.Object, greq.Object = runtime.RawExtension{}, runtime.RawExtension{}
		}
		if !reflect.DeepEqual(freq.AdmissionRequest, greq.AdmissionRequest) {
			t.Fatalf("the requests differ:\n%+v\n%+v", freq.AdmissionRequest, greq.AdmissionRequest)
		}
		freq.Object, greq.Object = fo, gobj
		if _, err := patchtest.DecodePod(greq.Object.Raw); !single || err != nil {
			return
		}
		a, b := mutate.Handle(context.Background(), freq), mutate.Handle(context.Background(), greq)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("the mutator answers the single pass and the general path differently:\n%+v\n%+v", a, b)
		}
	})
}

// TestHostileReviewSeeds keeps testdata/fuzz/FuzzReviewHTTP and FuzzDecodeReview (the same
// bodies and facts) equal to reviewSeeds (go test ./webhook -run TestHostileReviewSeeds
// -update rewrites them).
func TestHostileReviewSeeds(t *testing.T) {
	seeds := reviewSeeds()
	fuzzcorpus.Sync(t, "FuzzReviewHTTP", *update, seeds)
	for i, s := range seeds {
		seeds[i].Values = s.Values[2:]
	}
	fuzzcorpus.Sync(t, "FuzzDecodeReview", *update, seeds)
}

// reviewSeeds are requests for each path and kind of facts: what the API server sends, and
// what it never would.
func reviewSeeds() []fuzzcorpus.Seed {
	const (
		mutatePod byte = iota
		mutateTentacle
		validatePod
		validateClaim
	)
	ns := "octopus-agent-prod"
	wrap := func(apiVersion, request string) []byte {
		return []byte(`{"apiVersion":"` + apiVersion + `","kind":"AdmissionReview","request":` + request + `}`)
	}
	request := func(kind, resource, operation, object string) string {
		return `{"uid":"7f0b2c1e-0000-4000-8000-000000000001","kind":{"group":"","version":"v1","kind":"` + kind + `"},` +
			`"resource":{"group":"","version":"v1","resource":"` + resource + `"},"namespace":"` + ns + `","operation":"` + operation + `",` +
			`"userInfo":{"username":"system:serviceaccount:` + ns + `:octopus-agent-tentacle"},"object":` + object + `}`
	}
	podReview := func(pod string) []byte { return wrap("admission.k8s.io/v1", request("Pod", "pods", "CREATE", pod)) }
	scriptPod := func(extraMeta, spec string) string {
		return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"octopus-script-1","namespace":"` + ns + `","labels":{"octopus.com/scriptTicketId":"1"}` + extraMeta +
			`},"spec":{` + spec + `}}`
	}
	container := func(name, mounts string) string {
		return `{"name":"` + name + `","image":"octopusdeploy/kubernetes-agent-tools-base:latest","volumeMounts":[` + mounts + `]}`
	}
	tentacleStyle := scriptPod(`,"annotations":{"meta.helm.sh/release-name":"prod"}`,
		`"volumes":[{"name":"tentacle-home","persistentVolumeClaim":{"claimName":"`+fuzzClaim+`"}}],"containers":[`+container("script", `{"name":"tentacle-home","mountPath":"/octopus"}`)+`],`+
			`"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/os","operator":"In","values":["linux"]}]}]}}}`)
	template := scriptPod("", `"containers":[`+container("script", "")+`]`)
	tentaclePod := `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"octopus-agent-tentacle-","namespace":"` + ns + `","labels":{"agent.octopus.com/component":"tentacle","app.kubernetes.io/instance":"prod","helm.sh/chart":"kubernetes-agent-3.13.2"}},` +
		`"spec":{"volumes":[{"name":"tentacle-home","persistentVolumeClaim":{"claimName":"` + fuzzClaim + `"}}],"containers":[` + container("tentacle", `{"name":"tentacle-home","mountPath":"/octopus"}`) + `]}}`
	claim := func(spec string) []byte {
		return wrap("admission.k8s.io/v1", request("PersistentVolumeClaim", "persistentvolumeclaims", "CREATE",
			`{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"`+fuzzClaim+`","namespace":"`+ns+`","labels":{"helm.sh/chart":"kubernetes-agent-3.13.2"}},"spec":`+spec+`}`))
	}
	many := func(n int, item func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = item(i)
		}
		return strings.Join(parts, ",")
	}
	seed := func(name string, path byte, contentType string, body []byte, facts byte) fuzzcorpus.Seed {
		return fuzzcorpus.Seed{Name: name, Values: []any{path, contentType, body, facts}}
	}
	const json = "application/json"
	var seeds []fuzzcorpus.Seed
	for i := range fuzzFacts {
		seeds = append(seeds,
			seed("script-pod-facts-"+strconv.Itoa(i), mutatePod, json, podReview(tentacleStyle), byte(i)),
			seed("template-pod-facts-"+strconv.Itoa(i), mutatePod, json, podReview(template), byte(i)),
			seed("validate-script-pod-facts-"+strconv.Itoa(i), validatePod, json, podReview(tentacleStyle), byte(i)),
			seed("tentacle-pod-facts-"+strconv.Itoa(i), mutateTentacle, json, podReview(tentaclePod), byte(i)))
	}
	return append(seeds,
		seed("claim-rwx-ebs", validateClaim, json, claim(`{"accessModes":["ReadWriteMany"],"storageClassName":"ebs","resources":{"requests":{"storage":"10Gi"}}}`), 0),
		seed("claim-rwx-default-unknown", validateClaim, json, claim(`{"accessModes":["ReadWriteMany"],"resources":{"requests":{"storage":"10Gi"}}}`), 0),
		seed("claim-names-missing-volume", validateClaim, json, claim(`{"accessModes":["ReadWriteMany"],"storageClassName":"","volumeName":"pv-gone","resources":{"requests":{"storage":"10Gi"}}}`), 0),
		seed("claim-in-kube-system", validateClaim, json, bytes.Replace(claim(`{"accessModes":["ReadWriteMany"]}`), []byte(`"namespace":"`+ns+`"`), []byte(`"namespace":"kube-system"`), 1), 0),
		seed("claim-sent-to-the-pod-path", mutatePod, json, claim(`{"accessModes":["ReadWriteMany"]}`), 0),
		seed("pod-sent-to-the-claim-path", validateClaim, json, podReview(template), 0),
		seed("empty-body", mutatePod, json, nil, 0),
		seed("wrong-content-type", mutatePod, "text/plain", podReview(template), 0),
		seed("content-type-with-charset", mutatePod, "application/json; charset=utf-8", podReview(template), 0),
		seed("not-json", mutatePod, json, []byte(`apiVersion: admission.k8s.io/v1`), 0),
		seed("trailing-garbage", mutatePod, json, append(podReview(template), `{}`...), 0),
		seed("object-nested-deeper-than-json-allows", mutatePod, json, podReview(strings.Repeat(`[`, 10001)+strings.Repeat(`]`, 10001)), 0),
		seed("wrong-kind", mutatePod, json, bytes.Replace(podReview(template), []byte(`"kind":"AdmissionReview"`), []byte(`"kind":"AdmissionResponse"`), 1), 0),
		seed("v1beta1", mutatePod, json, wrap("admission.k8s.io/v1beta1", request("Pod", "pods", "CREATE", template)), 0),
		seed("v2", mutatePod, json, wrap("admission.k8s.io/v2", request("Pod", "pods", "CREATE", template)), 0),
		seed("no-uid", mutatePod, json, bytes.Replace(podReview(template), []byte(`"uid":"7f0b2c1e-0000-4000-8000-000000000001",`), nil, 1), 0),
		seed("uid-twice-and-upper-case", mutatePod, json, bytes.Replace(podReview(template), []byte(`"uid":`), []byte(`"UID":"x","uid":"first","uid":`), 1), 0),
		seed("object-null", mutatePod, json, podReview(`null`), 0),
		seed("object-a-string", mutatePod, json, podReview(`"pod"`), 0),
		seed("containers-not-a-list", mutatePod, json, podReview(scriptPod("", `"containers":{"name":"x"}`)), 0),
		seed("image-a-number", mutatePod, json, podReview(scriptPod("", `"containers":[{"name":"c","image":5}]`)), 0),
		seed("delete-with-old-object", mutatePod, json, wrap("admission.k8s.io/v1", strings.Replace(request("Pod", "pods", "DELETE", `null`), `"object":null`, `"oldObject":`+template, 1)), 0),
		seed("status-subresource", mutatePod, json, wrap("admission.k8s.io/v1", strings.Replace(request("Pod", "pods", "CREATE", template), `"operation"`, `"subResource":"status","operation"`, 1)), 0),
		seed("300-containers", mutatePod, json, podReview(scriptPod("", `"containers":[`+many(300, func(i int) string { return container("c"+strconv.Itoa(i), "") })+`]`)), 0),
		seed("annotation-keys-with-slash-and-tilde", mutatePod, json, podReview(scriptPod(`,"annotations":{"example.com/a~b":"1","~1/~0":"2"}`, `"containers":[`+container("c", "")+`]`)), 0),
		seed("another-volume-at-the-workspace-path", mutatePod, json, podReview(scriptPod("", `"volumes":[{"name":"scratch","emptyDir":{}}],"containers":[`+container("c", `{"name":"scratch","mountPath":"/octopus/"}`)+`]`)), 0),
		seed("tentacle-home-names-another-claim", mutatePod, json, podReview(scriptPod("", `"volumes":[{"name":"tentacle-home","persistentVolumeClaim":{"claimName":"another-agents-pvc"}}],"containers":[`+container("c", `{"name":"tentacle-home","mountPath":"/octopus"}`)+`]`)), 2),
		seed("deeply-nested-affinity", mutatePod, json, podReview(scriptPod("", `"containers":[`+container("c", "")+`],"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[`+
			many(30, func(i int) string {
				return `{"matchExpressions":[` + many(10, func(j int) string {
					return `{"key":"k` + strconv.Itoa(j) + `","operator":"In","values":["v` + strconv.Itoa(i) + `"]}`
				}) + `]}`
			})+`]}}}`)), 0),
	)
}
