package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
)

// gkeLikeAdmission configures ResourceQuota admission as GKE does (and as the Kubernetes docs
// suggest under "Limit Priority Class consumption by default"): pods of the system-* priority
// classes need a ResourceQuota covering that scope in their namespace.
const gkeLikeAdmission = `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: ResourceQuota
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: ResourceQuotaConfiguration
      limitedResources:
        - resource: pods
          matchScopes:
            - scopeName: PriorityClass
              operator: In
              values: ["system-node-critical", "system-cluster-critical"]
`

// Every kustomization and every chart value set renders and the API server accepts every
// object (server-side dry-run, strict field validation, create and server-side apply,
// cert-manager's CRDs and a ServiceMonitor CRD installed), so a schema mistake fails the build.
// The pod the Deployment would create is dry-run created too, so the admission a real pod meets
// (Pod Security enforced on the namespace, Priority, ResourceQuota) judges it.
func TestManifestsApplyWithServerSideDryRun(t *testing.T) {
	admissionFile := filepath.Join(t.TempDir(), "admission.yaml")
	must(t, os.WriteFile(admissionFile, []byte(gkeLikeAdmission), 0o600))
	crds, err := filepath.Abs(filepath.Join("testdata", "crds"))
	must(t, err)
	cp := start(t, controlplane.Options{
		CRDInstallOptions:  envtest.CRDInstallOptions{Paths: []string{certManagerCRDs(t), crds}},
		ExtraAPIServerArgs: map[string][]string{"admission-control-config-file": {admissionFile}},
	})
	if len(cp.CRDs) < 7 {
		t.Fatalf("%d CRDs installed, want cert-manager's 6 and ServiceMonitor", len(cp.CRDs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, flavour := range manifests.Flavours {
		for _, components := range [][]string{nil, {manifests.NetworkPolicyComponent}, {manifests.AuditOnlyComponent}} {
			netpol := slices.Contains(components, manifests.NetworkPolicyComponent)
			t.Run(fmt.Sprintf("%s%v", flavour, components), func(t *testing.T) {
				kinds := dryRunInstall(ctx, t, cp, renderWith(t, flavour, components...))
				want := map[string]int{"Namespace": 1, "PriorityClass": 1, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
					"ConfigMap": 1, "Deployment": 1, "Service": 1, "PodDisruptionBudget": 1,
					"MutatingWebhookConfiguration": 1, "ValidatingWebhookConfiguration": 1,
					"ValidatingAdmissionPolicy": 1, "ValidatingAdmissionPolicyBinding": 2}
				switch flavour {
				case "cert-manager":
					want["Certificate"], want["Issuer"] = 2, 2
				case "self-managed":
					want["Role"], want["RoleBinding"], want["ClusterRole"], want["ClusterRoleBinding"] = 1, 1, 2, 2
				}
				if netpol {
					want["NetworkPolicy"] = 1
				}
				for k, n := range want {
					if kinds[k] != n {
						t.Errorf("%d %s rendered, want %d", kinds[k], k, n)
					}
				}
				for k := range kinds {
					if _, ok := want[k]; !ok {
						t.Errorf("unexpected %s rendered", k)
					}
				}
			})
		}
	}
	// The chart installs into a namespace that exists (README: created first, with the
	// kustomization's Pod Security labels), so the API server's admission judges its pod there.
	var ns corev1.Namespace
	find(t, render(t, "cert-manager", false), "Namespace", webhookNS, &ns)
	for _, c := range chartCases {
		t.Run("chart/"+c.name, func(t *testing.T) {
			objs := renderChart(t, c.namespace, c.flags...)
			release := &unstructured.Unstructured{}
			release.SetAPIVersion("v1")
			release.SetKind("Namespace")
			release.SetName(c.namespace)
			release.SetLabels(ns.Labels)
			kinds := dryRunInstall(ctx, t, cp, append([]*unstructured.Unstructured{release}, objs...))
			if c.name == "every-option" && (kinds["ServiceMonitor"] != 1 || kinds["NetworkPolicy"] != 1) {
				t.Errorf("want the optional ServiceMonitor and NetworkPolicy applied: %v", kinds)
			}
		})
	}

	// The admission above was live: a pod the restricted profile forbids is refused there, and
	// so is the same pod with system-cluster-critical (why base/priorityclass.yaml exists).
	var d appsv1.Deployment
	find(t, render(t, "cert-manager", false), "Deployment", "workspace-webhook", &d)
	loose := podOf(&d)
	loose.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
	if err := cp.Client.Create(ctx, loose, client.DryRunAll); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("Pod Security is not enforced in %s: want Forbidden by PodSecurity, got %v", webhookNS, err)
	}
	critical := podOf(&d)
	critical.Spec.PriorityClassName = "system-cluster-critical"
	if err := cp.Client.Create(ctx, critical, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "insufficient quota to match these scopes") {
		t.Errorf("with system-*-critical limited to quota-covered namespaces, want system-cluster-critical refused in %s, got %v", webhookNS, err)
	} else {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			t.Logf("system-cluster-critical in %s on a GKE-like API server: HTTP %d %s: %v", webhookNS, status.Status().Code, status.Status().Reason, err)
		}
	}
}

// dryRunInstall creates the Namespace and PriorityClass of objs for real (dry-runs of
// namespaced objects need their Namespace, and the pod its PriorityClass), dry-runs every object
// with create and with server-side apply under strict field validation, then the pod the
// Deployment would create, and counts the kinds.
func dryRunInstall(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, objs []*unstructured.Unstructured) map[string]int {
	t.Helper()
	real := func(o *unstructured.Unstructured) bool {
		return o.GetKind() == "Namespace" || o.GetKind() == "PriorityClass"
	}
	for _, o := range objs {
		if real(o) {
			if err := cp.Client.Create(ctx, o.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
		what := o.GetKind() + " " + o.GetName()
		if err := cp.Client.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict")); err != nil && !(apierrors.IsAlreadyExists(err) && real(o)) {
			t.Errorf("%s rejected on create: %v", what, err)
		}
		if err := cp.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner("kubectl"), client.ForceOwnership, client.DryRunAll); err != nil {
			t.Errorf("%s rejected on server-side apply: %v", what, err)
		}
	}
	var d appsv1.Deployment
	find(t, objs, "Deployment", "workspace-webhook", &d)
	if err := cp.Client.Create(ctx, podOf(&d), client.DryRunAll); err != nil {
		t.Errorf("the Deployment's pod is refused by admission: %v", err)
	}
	return kinds
}

// podOf is the pod a ReplicaSet of d would create.
func podOf(d *appsv1.Deployment) *corev1.Pod {
	t := d.Spec.Template.DeepCopy()
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-dryrun", Namespace: d.Namespace, Labels: t.Labels, Annotations: t.Annotations}, Spec: t.Spec}
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
			if w.Name == "tentacle-pod-placement.workspace-webhook.io" {
				// Tentacle pods: never block an agent install or upgrade; never script pods;
				// only the agent chart's pods reach the webhook.
				sel := w.ObjectSelector.String()
				if *w.FailurePolicy != admissionregistrationv1.Ignore || !strings.Contains(sel, "octopus.com/scriptTicketId") ||
					!strings.Contains(sel, "DoesNotExist") || !strings.Contains(sel, "helm.sh/chart") ||
					len(w.MatchConditions) != 1 || !strings.Contains(w.MatchConditions[0].Expression, "kubernetes-agent-") {
					t.Errorf("%s/%s: want failurePolicy Ignore, script pods excluded, the agent chart's pods only: %s %+v", flavour, w.Name, sel, w.MatchConditions)
				}
				continue
			}
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
	for _, flavour := range manifests.Flavours {
		var d appsv1.Deployment
		find(t, render(t, flavour, false), "Deployment", "workspace-webhook", &d)
		if why := podSecurityRestricted(t, &d.Spec.Template); why != "" {
			t.Errorf("%s: Deployment fails Pod Security restricted: %s", flavour, why)
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

// Every argument of the Deployment is a flag the binary accepts, with values it validates;
// the audit-only component sets --enforcement=warn.
func TestDeploymentArgsAreAcceptedByTheBinary(t *testing.T) {
	for _, flavour := range manifests.Flavours {
		for _, auditOnly := range []bool{false, true} {
			var d appsv1.Deployment
			var components []string
			want := enforcement.Enforce
			if auditOnly {
				components, want = []string{manifests.AuditOnlyComponent}, enforcement.Warn
			}
			find(t, renderWith(t, flavour, components...), "Deployment", "workspace-webhook", &d)
			opts, err := parseArgs(d.Spec.Template.Spec.Containers[0].Args, webhookNS)
			if err != nil {
				t.Errorf("%s%v: %v", flavour, components, err)
				continue
			}
			if err := opts.Validate(); err != nil {
				t.Errorf("%s%v: %v", flavour, components, err)
			}
			if opts.Enforcement != want {
				t.Errorf("%s%v: --enforcement=%s, want %s", flavour, components, opts.Enforcement, want)
			}
		}
		var d appsv1.Deployment
		find(t, render(t, flavour, false), "Deployment", "workspace-webhook", &d)
		hasEnv := false
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			hasEnv = hasEnv || (e.Name == "POD_NAMESPACE" && e.ValueFrom != nil)
		}
		if !hasEnv {
			t.Errorf("%s: POD_NAMESPACE must come from the downward API", flavour)
		}
	}
}
