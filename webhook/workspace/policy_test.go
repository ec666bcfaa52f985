package workspace

import (
	"context"
	"strconv"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/octopus-agent-tools/workspace-webhook/manifests/base"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// shippedPolicy is the ValidatingAdmissionPolicy of manifests/base, compiled the way the API
// server compiles it (k8s.io/apiserver's validating policy plugin: its CEL environment, its
// variable composition, its match conditions), so a unit test runs the very expressions
// the cluster runs. The e2e tests run it in a real kube-apiserver as well.
type shippedPolicy struct {
	validator validating.Validator
	policy    *admissionregistrationv1.ValidatingAdmissionPolicy
}

func compileShippedPolicy(t testing.TB) *shippedPolicy {
	t.Helper()
	policy, _, err := base.ScriptPodPolicy()
	if err != nil {
		t.Fatal(err)
	}
	// As validating.compilePolicy does (unexported there): no params, an authorizer variable.
	vars := cel.OptionalVariableDeclarations{HasParams: false, HasAuthorizer: true}
	compiler, err := cel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		t.Fatal(err)
	}
	named := make([]cel.NamedExpressionAccessor, len(policy.Spec.Variables))
	for i, v := range policy.Spec.Variables {
		named[i] = &validating.Variable{Name: v.Name, Expression: v.Expression}
	}
	compiler.CompileAndStoreVariables(named, vars, environment.StoredExpressions)
	conditions := make([]cel.ExpressionAccessor, len(policy.Spec.MatchConditions))
	for i := range policy.Spec.MatchConditions {
		conditions[i] = (*matchconditions.MatchCondition)(&policy.Spec.MatchConditions[i])
	}
	validations := make([]cel.ExpressionAccessor, len(policy.Spec.Validations))
	messages := make([]cel.ExpressionAccessor, len(policy.Spec.Validations))
	for i, v := range policy.Spec.Validations {
		validations[i] = &validating.ValidationCondition{Expression: v.Expression, Message: v.Message, Reason: v.Reason}
		if v.MessageExpression != "" {
			messages[i] = &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}
		}
	}
	audits := make([]cel.ExpressionAccessor, len(policy.Spec.AuditAnnotations))
	for i, a := range policy.Spec.AuditAnnotations {
		audits[i] = &validating.AuditAnnotationCondition{Key: a.Key, ValueExpression: a.ValueExpression}
	}
	v := validating.NewValidator(
		compiler.CompileCondition(validations, vars, environment.StoredExpressions),
		matchconditions.NewMatcher(compiler.CompileCondition(conditions, vars, environment.StoredExpressions), policy.Spec.FailurePolicy, "policy", "validate", policy.Name),
		compiler.CompileCondition(audits, vars, environment.StoredExpressions),
		compiler.CompileCondition(messages, cel.OptionalVariableDeclarations{HasParams: false, HasAuthorizer: false}, environment.StoredExpressions),
		policy.Spec.FailurePolicy, nil)
	// Compile errors surface only on evaluation: evaluate once on a marked pod to find them.
	p := &shippedPolicy{validator: v, policy: policy}
	probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "ns", Annotations: map[string]string{VolumeMark: "w"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	for _, d := range p.decide(t, probe).decisions {
		if d.Evaluation == validating.EvalError {
			t.Fatalf("the shipped policy does not evaluate: %s", d.Message)
		}
	}
	return p
}

// policyVerdict is what the API server makes of the policy's result for one pod.
type policyVerdict struct {
	matched   bool
	denied    bool
	message   string // the first refusal's, as the API server reports it
	reason    string // the audit annotation "reason", "" when the policy published none
	decisions []validating.PolicyDecision
}

func (p *shippedPolicy) decide(t testing.TB, pod *corev1.Pod) policyVerdict {
	t.Helper()
	gvk := schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	attrs := admission.NewAttributesRecord(pod, nil, gvk, pod.Namespace, pod.Name, gvr, "", admission.Create, &metav1.CreateOptions{}, false, nil)
	res := p.validator.Validate(context.Background(), gvr, &admission.VersionedAttributes{Attributes: attrs, VersionedKind: gvk, VersionedObject: pod},
		nil, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: pod.Namespace}}, celconfig.RuntimeCELCostBudget, nil)
	v := policyVerdict{decisions: res.Decisions, matched: len(res.Decisions) > 0}
	for _, d := range res.Decisions {
		if d.Evaluation == validating.EvalError {
			t.Fatalf("policy expression failed on pod %s: %s", pod.Name, d.Message)
		}
		if d.Action == validating.ActionDeny && !v.denied {
			v.denied, v.message = true, d.Message
			if d.Reason != metav1.StatusReasonForbidden {
				t.Fatalf("refusal reason %q, want Forbidden like the webhook's", d.Reason)
			}
		}
	}
	for _, a := range res.AuditAnnotations {
		if a.Action == validating.AuditAnnotationActionError {
			t.Fatalf("audit annotation %s failed: %s", a.Key, a.Error)
		}
		if a.Key == "reason" && a.Action == validating.AuditAnnotationActionPublish {
			v.reason = a.Value
		}
	}
	return v
}

// assertPolicyAgrees holds the shipped policy to its Go twin on one pod: same scope, same
// verdict, same message, and the reason code as the audit annotation.
func assertPolicyAgrees(t testing.TB, p *shippedPolicy, pod *corev1.Pod) policyVerdict {
	t.Helper()
	if pod.Namespace == "" {
		pod = pod.DeepCopy()
		pod.Namespace = "octopus-agent-prod"
	}
	got, want := p.decide(t, pod), CheckFinalState(pod)
	switch {
	case got.matched != (want.Code != reason.OutOfScope):
		t.Fatalf("scope differs: policy matched=%v, Go %s (%s)", got.matched, want.Code, want.Message)
	case got.denied != want.Denied:
		t.Fatalf("verdict differs: policy denied=%v (%s), Go %s (%s)", got.denied, got.message, want.Code, want.Message)
	case got.denied && got.message != want.Message:
		t.Fatalf("message differs:\npolicy %s\nGo     %s", got.message, want.Message)
	case got.denied && got.reason != string(want.Code):
		t.Fatalf("audit reason %q, Go code %s", got.reason, want.Code)
	case !got.denied && got.reason != "":
		t.Fatalf("admitted, but the policy published reason %q", got.reason)
	}
	return got
}

// The policy and CheckFinalState agree on every golden fixture as Tentacle created it and as
// Mutate admitted it, and on every breakage a later webhook can cause.
func TestShippedPolicyAgreesWithCheckFinalState(t *testing.T) {
	p := compileShippedPolicy(t)
	for _, in := range fixtureNames(t) {
		t.Run(in, func(t *testing.T) {
			fx := readFixture(t, "testdata/"+in+".yaml")
			podJSON, pod := decodePod(t, fx.Pod)
			assertPolicyAgrees(t, p, pod)
			res := Mutate(DefaultConfig(), pod, fixtureFacts(fx))
			if res.Denied {
				return
			}
			_, admitted := decodePod(t, applyPatch(t, podJSON, res))
			if v := assertPolicyAgrees(t, p, admitted); !v.matched || v.denied {
				t.Fatalf("the policy does not admit the mutated pod: %+v", v)
			}
		})
	}
	for _, tc := range finalStateBreakages(t) {
		t.Run("broken/"+tc.name, func(t *testing.T) {
			pod := tc.pod.DeepCopy()
			tc.change(pod)
			if v := assertPolicyAgrees(t, p, pod); v.denied != (tc.code != reason.WorkspaceValid) {
				t.Fatalf("policy denied=%v, want code %s", v.denied, tc.code)
			}
		})
	}
}

// Hostile sizes stay inside the API server's CEL cost budget and message limits.
func TestShippedPolicyOnHugePods(t *testing.T) {
	p := compileShippedPolicy(t)
	pod := admittedFixture(t, "chart-v3-pod-affinity")
	for i := 0; i < 5000; i++ {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "c" + strconv.Itoa(i),
			VolumeMounts: []corev1.VolumeMount{{Name: "a", MountPath: "/a"}, {Name: "b", MountPath: "/b"}, {Name: "c", MountPath: "/c"}}})
	}
	v := assertPolicyAgrees(t, p, pod)
	if !v.denied || len(v.message) > 1024 {
		t.Fatalf("5,000 unmounted containers: denied=%v, message of %d bytes", v.denied, len(v.message))
	}
}
