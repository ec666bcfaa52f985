package install

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

// Every kustomization renders and the API server accepts every object (server-side dry-run,
// cert-manager's CRDs installed), so a schema mistake fails the build.
func TestManifestsApplyWithServerSideDryRun(t *testing.T) {
	cp := start(t, controlplane.Options{CRDInstallOptions: envtest.CRDInstallOptions{Paths: []string{certManagerCRDs(t)}}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, flavour := range manifests.Flavours {
		for _, netpol := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/network-policy=%v", flavour, netpol), func(t *testing.T) {
				objs := render(t, flavour, netpol)
				for _, o := range objs {
					if o.GetKind() == "Namespace" { // namespaced dry-runs need it to exist
						if err := cp.Client.Create(ctx, o.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
							t.Fatal(err)
						}
					}
				}
				kinds := map[string]int{}
				for _, o := range objs {
					kinds[o.GetKind()]++
					if err := cp.Client.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict")); err != nil && !apierrors.IsAlreadyExists(err) {
						t.Errorf("%s %s rejected: %v", o.GetKind(), o.GetName(), err)
					}
				}
				want := map[string]int{"Deployment": 1, "Service": 1, "PodDisruptionBudget": 1, "MutatingWebhookConfiguration": 1, "ValidatingWebhookConfiguration": 1}
				if flavour == "cert-manager" {
					want["Certificate"], want["Issuer"] = 2, 2
				}
				if netpol {
					want["NetworkPolicy"] = 1
				}
				for k, n := range want {
					if kinds[k] != n {
						t.Errorf("%d %s rendered, want %d", kinds[k], k, n)
					}
				}
			})
		}
	}
}

// The webhook configurations are as safe as the issue requires.
func TestWebhookConfigurationsAreScopedAndShort(t *testing.T) {
	for _, flavour := range manifests.Flavours {
		objs := render(t, flavour, false)
		var m admissionregistrationv1.MutatingWebhookConfiguration
		var v admissionregistrationv1.ValidatingWebhookConfiguration
		find(t, objs, "MutatingWebhookConfiguration", "", &m)
		find(t, objs, "ValidatingWebhookConfiguration", "", &v)
		check := func(name string, nsSel fmt.Stringer, se *admissionregistrationv1.SideEffectClass,
			timeout *int32, fp *admissionregistrationv1.FailurePolicyType, rules []admissionregistrationv1.RuleWithOperations) {
			if se == nil || *se != admissionregistrationv1.SideEffectClassNone || timeout == nil || *timeout > 10 || fp == nil {
				t.Errorf("%s/%s: sideEffects None, a short timeout and an explicit failurePolicy are required", flavour, name)
			}
			for _, r := range rules {
				if len(r.Operations) != 1 || r.Operations[0] != admissionregistrationv1.Create {
					t.Errorf("%s/%s: operations %v, want CREATE only", flavour, name, r.Operations)
				}
			}
			for _, excluded := range []string{"kube-system", "kube-node-lease", webhookNS} {
				if !strings.Contains(nsSel.String(), excluded) {
					t.Errorf("%s/%s: namespaceSelector %s does not exclude %s", flavour, name, nsSel, excluded)
				}
			}
		}
		for _, w := range m.Webhooks {
			check(w.Name, w.NamespaceSelector, w.SideEffects, w.TimeoutSeconds, w.FailurePolicy, w.Rules)
			if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
				t.Errorf("%s/%s: reinvocationPolicy must be IfNeeded", flavour, w.Name)
			}
			if !strings.Contains(w.ObjectSelector.String(), "octopus.com/scriptTicketId") {
				t.Errorf("%s/%s: objectSelector %s does not select script pods only", flavour, w.Name, w.ObjectSelector)
			}
		}
		for _, w := range v.Webhooks {
			check(w.Name, w.NamespaceSelector, w.SideEffects, w.TimeoutSeconds, w.FailurePolicy, w.Rules)
		}
	}
}

// The rendered Deployment passes the Pod Security "restricted" profile, in both flavours.
func TestDeploymentPassesRestrictedPodSecurity(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, flavour := range manifests.Flavours {
		var d appsv1.Deployment
		find(t, render(t, flavour, false), "Deployment", "workspace-webhook", &d)
		results := evaluator.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec)
		if agg := policy.AggregateCheckResults(results); !agg.Allowed {
			t.Errorf("%s: Deployment fails Pod Security restricted: %s: %s", flavour, agg.ForbiddenReason(), agg.ForbiddenDetail())
		}
		if *d.Spec.Replicas < 2 {
			t.Errorf("%s: %d replicas, want at least 2", flavour, *d.Spec.Replicas)
		}
		c := d.Spec.Template.Spec.Containers[0]
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() || c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("%s: resources and probes are required: %+v", flavour, c)
		}
	}
}

// The PodDisruptionBudget never blocks a drain with one replica left.
func TestPodDisruptionBudgetNeverBlocksADrain(t *testing.T) {
	var pdb policyv1.PodDisruptionBudget
	find(t, render(t, "cert-manager", false), "PodDisruptionBudget", "", &pdb)
	if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() < 1 {
		t.Fatalf("PDB must use maxUnavailable >= 1, got %+v", pdb.Spec)
	}
}

// Every argument of the Deployment is a flag the binary accepts, with values it validates.
func TestDeploymentArgsAreAcceptedByTheBinary(t *testing.T) {
	for _, flavour := range manifests.Flavours {
		var d appsv1.Deployment
		find(t, render(t, flavour, false), "Deployment", "workspace-webhook", &d)
		opts := app.DefaultOptions()
		opts.Namespace = webhookNS // from POD_NAMESPACE via the downward API
		fs := flag.NewFlagSet("workspace-webhook", flag.ContinueOnError)
		opts.BindFlags(fs)
		if err := fs.Parse(d.Spec.Template.Spec.Containers[0].Args); err != nil {
			t.Errorf("%s: %v", flavour, err)
			continue
		}
		if err := opts.Validate(); err != nil {
			t.Errorf("%s: %v", flavour, err)
		}
		hasEnv := false
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			hasEnv = hasEnv || (e.Name == "POD_NAMESPACE" && e.ValueFrom != nil)
		}
		if !hasEnv {
			t.Errorf("%s: POD_NAMESPACE must come from the downward API", flavour)
		}
	}
}
