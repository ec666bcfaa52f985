package install

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/helm"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
)

// helm lint --strict passes for every value set (it also validates values.schema.json).
func TestChartLints(t *testing.T) {
	bin := helm.Require(t)
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"lint", chartDir(t), "--strict", "--namespace", c.namespace}, c.flags...)
			out, err := helm.Run(bin, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("helm lint: %s", out)
			}
		})
	}
}

// Bad values fail helm install (and template) before anything is applied, naming the value.
func TestChartRejectsBadValues(t *testing.T) {
	for _, c := range []struct {
		flags []string
		want  string // in helm's error
	}{
		{[]string{"--set", "certificates.mode=vault"}, "at '/certificates/mode': value must be one of 'cert-manager', 'self-managed', 'service-ca'"},
		{[]string{"--set", "failurePolicy.scriptPods=Never"}, "at '/failurePolicy/scriptPods': value must be one of 'Fail', 'Ignore'"},
		{[]string{"--set", "enforcement=audit"}, "at '/enforcement': value must be one of 'enforce', 'warn'"},
		{[]string{"--set", "replicas=0"}, "at '/replicas': minimum: got 0, want 1"},
		{[]string{"--set", "replica=3"}, "additional properties 'replica' not allowed"},
		{[]string{"--set", "logLevel=verbose"}, "at '/logLevel'"},
		{[]string{"--set", "excludedNamespaces={Team_A}"}, "at '/excludedNamespaces/0'"},
		{[]string{"--set", "image.digest=latest"}, "at '/image/digest'"},
		{[]string{"--set", "priorityClass.name="}, "at '/priorityClass/name'"},
		{[]string{"--set", "networkPolicy.apiServerPorts={70000}"}, "at '/networkPolicy/apiServerPorts/0'"},
		{[]string{"--set", "serviceMonitor.interval=30 seconds"}, "at '/serviceMonitor/interval'"},
		{[]string{"--set", "certificates.certManager.issuerRef.kind=ClusterIssuer"}, "at '/certificates/certManager/issuerRef'"},
		{[]string{"--set-string", "capabilityOverrides="}, "at '/capabilityOverrides'"},
		{[]string{"--set-json", `capabilityOverrides="overrides: ["`}, "capabilityOverrides is not a YAML mapping"},
	} {
		t.Run(strings.Join(c.flags, " "), func(t *testing.T) {
			out, err := helmTemplate(t, webhookNS, c.flags...)
			if err == nil {
				t.Fatalf("accepted; rendered %d bytes", len(out))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
		})
	}
}

// The only differences the chart may have from the kustomizations (defaults, same namespace).
var (
	// kustomizeOnly are the objects only the kustomizations render, and why.
	kustomizeOnly = map[string]string{
		"Namespace/" + webhookNS: "Helm stores its release in the release namespace before it creates any object, so a chart cannot create its own namespace; the README creates it, with the same Pod Security labels",
	}
	// helmLabels are Helm's standard labels, on every object's metadata (never on selectors
	// or pod templates), with the value each must have.
	helmLabels = map[string]string{
		"helm.sh/chart": "workspace-webhook-0.1.0", "app.kubernetes.io/instance": chartRelease,
		"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/version": "dev",
	}
)

// The chart renders exactly what the kustomizations render, field for field, object for object,
// except the differences listed above; so the two install paths cannot drift apart.
func TestChartMatchesKustomize(t *testing.T) {
	for _, c := range []struct {
		flavour    string
		components []string
		flags      []string
	}{
		{"cert-manager", nil, nil},
		{"self-managed", nil, []string{"--set", "certificates.mode=self-managed"}},
		{"service-ca", nil, []string{"--set", "certificates.mode=service-ca"}},
		{"cert-manager", []string{manifests.NetworkPolicyComponent}, []string{"--set", "networkPolicy.enabled=true"}},
		{"self-managed", []string{manifests.NetworkPolicyComponent}, []string{"--set", "certificates.mode=self-managed,networkPolicy.enabled=true"}},
		{"cert-manager", []string{manifests.AuditOnlyComponent}, []string{"--set", "enforcement=warn"}},
		{"self-managed", []string{manifests.NetworkPolicyComponent, manifests.AuditOnlyComponent}, []string{"--set", "certificates.mode=self-managed,networkPolicy.enabled=true,enforcement=warn"}},
	} {
		t.Run(fmt.Sprintf("%s%v", c.flavour, c.components), func(t *testing.T) {
			chart := renderChart(t, webhookNS, c.flags...)
			kustomized := map[string]*unstructured.Unstructured{}
			for _, o := range renderWith(t, c.flavour, c.components...) {
				kustomized[objectKey(o)] = o
			}
			for _, o := range chart {
				k := objectKey(o)
				labels := o.GetLabels()
				for l, want := range helmLabels {
					if labels[l] != want {
						t.Errorf("%s: label %s=%q, want %q", k, l, labels[l], want)
					}
					delete(labels, l)
				}
				if len(labels) == 0 {
					unstructured.RemoveNestedField(o.Object, "metadata", "labels")
				} else {
					o.SetLabels(labels)
				}
				want, ok := kustomized[k]
				if !ok {
					t.Errorf("%s: rendered by the chart only", k)
					continue
				}
				delete(kustomized, k)
				if !reflect.DeepEqual(want.Object, o.Object) {
					t.Errorf("%s differs from the kustomization at %v", k,
						objectDiff(t, []*unstructured.Unstructured{want}, []*unstructured.Unstructured{o}))
				}
			}
			for k := range kustomized {
				if _, allowed := kustomizeOnly[k]; !allowed {
					t.Errorf("%s: rendered by the kustomization only", k)
				}
			}
			for k := range kustomizeOnly {
				if _, rendered := kustomized[k]; !rendered {
					t.Errorf("%s is allowed as kustomization-only but no longer rendered there: drop it from the list", k)
				}
			}
		})
	}
}

// Every value of the chart changes what it should and nothing else: the render with the value
// set differs from the render without it in exactly the listed leaves (or objects), each with
// the listed value ("" when only presence counts; a trailing * matches a prefix).
func TestChartValuesChangeWhatTheyShould(t *testing.T) {
	const (
		dep  = "Deployment/workspace-webhook:"
		pod  = dep + "spec.template.spec."
		ctr  = pod + "containers[0]."
		mwc  = "MutatingWebhookConfiguration/octopus-workspace-webhook:"
		vwc  = "ValidatingWebhookConfiguration/octopus-workspace-webhook:"
		cert = "Certificate/workspace-webhook-serving:spec."
	)
	injectCA := func(v string) map[string]string {
		return map[string]string{mwc + "metadata.annotations.cert-manager.io/inject-ca-from": v, vwc + "metadata.annotations.cert-manager.io/inject-ca-from": v}
	}
	certManagerCA := map[string]string{"-Issuer/workspace-webhook-selfsigned": "", "-Certificate/workspace-webhook-ca": "", "-Issuer/workspace-webhook-ca": ""}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	const (
		vap                 = "ValidatingAdmissionPolicy/octopus-workspace-script-pods:spec."
		bindingSelector     = "ValidatingAdmissionPolicyBinding/octopus-workspace-script-pods:spec.matchResources.namespaceSelector.matchExpressions[0]."
		warnBindingSelector = "ValidatingAdmissionPolicyBinding/octopus-workspace-script-pods-warn:spec.matchResources.namespaceSelector.matchExpressions[0]."
	)
	excluded := map[string]string{}
	for _, w := range []string{mwc + "webhooks[0]", mwc + "webhooks[1]", vwc + "webhooks[0]", vwc + "webhooks[1]", vap + "matchConstraints"} {
		excluded[w+".namespaceSelector.matchExpressions[0].values[3]"] = `"team-a"`
		excluded[w+".namespaceSelector.matchExpressions[0].values[4]"] = `"team-b"`
	}
	for _, c := range []struct {
		name  string
		base  []string // flags of the render compared against (default: none)
		flags []string
		want  map[string]string
	}{
		{"image", nil, []string{"--set", "image.repository=registry.example.com/octopus/workspace-webhook,image.tag=v1.2.3"},
			map[string]string{ctr + "image": `"registry.example.com/octopus/workspace-webhook:v1.2.3"`}},
		{"image digest", nil, []string{"--set", "image.tag=v9,image.digest=sha256:" + strings.Repeat("0f", 32)},
			map[string]string{ctr + "image": `"workspace-webhook@sha256:` + strings.Repeat("0f", 32) + `"`}},
		{"image pull policy", nil, []string{"--set", "image.pullPolicy=Always"}, map[string]string{ctr + "imagePullPolicy": `"Always"`}},
		{"image pull secrets", nil, []string{"--set", "imagePullSecrets[0].name=regcred"}, map[string]string{pod + "imagePullSecrets[0].name": `"regcred"`}},
		{"certificates self-managed", nil, []string{"--set", "certificates.mode=self-managed"}, merge(certManagerCA, injectCA(""), map[string]string{
			"-Certificate/workspace-webhook-serving": "",
			"+Role/workspace-webhook-certificates":   "", "+RoleBinding/workspace-webhook-certificates": "",
			"+ClusterRole/octopus-workspace-webhook-cabundle": "", "+ClusterRoleBinding/octopus-workspace-webhook-cabundle": "",
			ctr + "args[7]": `"--cert-mode=self-managed"`, ctr + "args[8]": `"--self-managed-secret=workspace-webhook-tls"`,
			ctr + "args[9]": `"--service-name=workspace-webhook"`, ctr + "args[10]": `"--mutating-webhook-configuration=octopus-workspace-webhook"`,
			ctr + "args[11]":                 `"--validating-webhook-configuration=octopus-workspace-webhook"`,
			ctr + "volumeMounts[0].readOnly": "", pod + "volumes[0].secret.secretName": "",
			pod + "volumes[0].emptyDir.medium": `"Memory"`, pod + "volumes[0].emptyDir.sizeLimit": `"1Mi"`,
		})},
		{"certificates service-ca", nil, []string{"--set", "certificates.mode=service-ca"}, merge(certManagerCA, injectCA(""), map[string]string{
			"-Certificate/workspace-webhook-serving":                                                            "",
			"Service/workspace-webhook:metadata.annotations.service.beta.openshift.io/serving-cert-secret-name": `"workspace-webhook-serving-tls"`,
			mwc + "metadata.annotations.service.beta.openshift.io/inject-cabundle":                              `"true"`,
			vwc + "metadata.annotations.service.beta.openshift.io/inject-cabundle":                              `"true"`,
		})},
		{"own cert-manager issuer", nil, []string{"--set", "certificates.certManager.issuerRef.name=corp-ca,certificates.certManager.issuerRef.kind=ClusterIssuer"},
			merge(certManagerCA, map[string]string{cert + "issuerRef.name": `"corp-ca"`, cert + "issuerRef.kind": `"ClusterIssuer"`})},
		{"replicas", nil, []string{"--set", "replicas=3"}, map[string]string{dep + "spec.replicas": "3"}},
		{"resources", nil, []string{"--set", "resources.requests.cpu=100m,resources.limits.memory=256Mi"},
			map[string]string{ctr + "resources.requests.cpu": `"100m"`, ctr + "resources.limits.memory": `"256Mi"`}},
		{"priority class value", nil, []string{"--set", "priorityClass.value=2000"}, map[string]string{"PriorityClass/workspace-webhook-critical:value": "2000"}},
		{"priority class name", nil, []string{"--set", "priorityClass.name=webhooks-high"}, map[string]string{
			"-PriorityClass/workspace-webhook-critical": "", "+PriorityClass/webhooks-high": "", pod + "priorityClassName": `"webhooks-high"`}},
		{"existing priority class", nil, []string{"--set", "priorityClass.create=false,priorityClass.name=system-cluster-critical"}, map[string]string{
			"-PriorityClass/workspace-webhook-critical": "", pod + "priorityClassName": `"system-cluster-critical"`}},
		{"no priority class", nil, []string{"--set", "priorityClass.create=false,priorityClass.name="}, map[string]string{
			"-PriorityClass/workspace-webhook-critical": "", pod + "priorityClassName": ""}},
		{"excluded namespaces", nil, []string{"--set", "excludedNamespaces={team-a,team-b}"}, excluded},
		{"failure policy, script pods", nil, []string{"--set", "failurePolicy.scriptPods=Ignore"},
			map[string]string{mwc + "webhooks[0].failurePolicy": `"Ignore"`, vap + "failurePolicy": `"Ignore"`}},
		{"failure policy, Tentacle pods", nil, []string{"--set", "failurePolicy.tentaclePods=Fail"}, map[string]string{mwc + "webhooks[1].failurePolicy": `"Fail"`}},
		{"failure policy, claims", nil, []string{"--set", "failurePolicy.claims=Fail"},
			map[string]string{vwc + "webhooks[0].failurePolicy": `"Fail"`, vwc + "webhooks[1].failurePolicy": `"Fail"`}},
		{"capability override file", nil, []string{"--set-json", `capabilityOverrides="overrides:\n  - provisioner: nfs.csi.k8s.io\n    readWriteMany: {filesystem: true}\n"`},
			map[string]string{"ConfigMap/workspace-webhook-capabilities:data.overrides.yaml": `"overrides:\n  - provisioner: nfs.csi.k8s.io\n    readWriteMany: {filesystem: true}\n"`}},
		{"log level", nil, []string{"--set", "logLevel=debug"}, map[string]string{ctr + "args[5]": `"--zap-log-level=debug"`}},
		{"log verbosity", nil, []string{"--set", "logLevel=3"}, map[string]string{ctr + "args[5]": `"--zap-log-level=3"`}},
		// Audit-only: the webhook's flag, and the policy's bindings turned around (enforced only
		// where labelled enforce), as components/audit-only does.
		{"enforcement warn", nil, []string{"--set", "enforcement=warn"}, map[string]string{ctr + "args[6]": `"--enforcement=warn"`,
			bindingSelector + "operator": `"In"`, bindingSelector + "values[0]": `"enforce"`,
			warnBindingSelector + "operator": `"NotIn"`, warnBindingSelector + "values[0]": `"enforce"`}},
		{"network policy", nil, []string{"--set", "networkPolicy.enabled=true"}, map[string]string{"+NetworkPolicy/workspace-webhook": ""}},
		{"network policy API server ports", []string{"--set", "networkPolicy.enabled=true"}, []string{"--set", "networkPolicy.enabled=true,networkPolicy.apiServerPorts={443,6443,8443}"},
			map[string]string{"NetworkPolicy/workspace-webhook:spec.egress[0].ports[2].port": "8443", "NetworkPolicy/workspace-webhook:spec.egress[0].ports[2].protocol": `"TCP"`}},
		{"service monitor", nil, []string{"--set", "serviceMonitor.enabled=true"}, map[string]string{"+ServiceMonitor/workspace-webhook": ""}},
		{"service monitor labels and interval", []string{"--set", "serviceMonitor.enabled=true"}, []string{"--set", "serviceMonitor.enabled=true,serviceMonitor.labels.release=prometheus,serviceMonitor.interval=1m"},
			map[string]string{"ServiceMonitor/workspace-webhook:metadata.labels.release": `"prometheus"`, "ServiceMonitor/workspace-webhook:spec.endpoints[0].interval": `"1m"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, after := renderChart(t, webhookNS, c.base...), renderChart(t, webhookNS, c.flags...)
			checkChanges(t, before, after, c.want)
		})
	}
}

// checkChanges holds the differences from before to after to want (see
// TestChartValuesChangeWhatTheyShould).
func checkChanges(t *testing.T, before, after []*unstructured.Unstructured, want map[string]string) {
	t.Helper()
	matches := func(pattern, path string) bool {
		if p, ok := strings.CutSuffix(pattern, "*"); ok {
			return strings.HasPrefix(path, p)
		}
		return pattern == path
	}
	diff := objectDiff(t, before, after)
	for _, p := range diff {
		if !slices.ContainsFunc(mapKeys(want), func(w string) bool { return matches(w, p) }) {
			t.Errorf("unexpected change at %s: %s", p, leafValue(t, after, p))
		}
	}
	for w, v := range want {
		if !slices.ContainsFunc(diff, func(p string) bool { return matches(w, p) }) {
			t.Errorf("no change at %s", w)
			continue
		}
		if v != "" && !strings.HasSuffix(w, "*") {
			if got := leafValue(t, after, w); got != v {
				t.Errorf("%s = %s, want %s", w, got, v)
			}
		}
	}
}

func mapKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Installed into another namespace, every namespaced object goes there and every reference
// follows (webhook clientConfigs, namespaceSelector exclusions, cert-manager's inject-ca-from
// and DNS names, binding subjects), and nothing else changes.
func TestChartFollowsTheReleaseNamespace(t *testing.T) {
	const other = "platform-webhooks"
	const mwc, vwc = "MutatingWebhookConfiguration/octopus-workspace-webhook:", "ValidatingWebhookConfiguration/octopus-workspace-webhook:"
	for _, c := range []struct {
		mode  string
		extra []string
	}{
		{"cert-manager", []string{
			mwc + "metadata.annotations.cert-manager.io/inject-ca-from", vwc + "metadata.annotations.cert-manager.io/inject-ca-from",
			"Certificate/workspace-webhook-serving:spec.dnsNames[0]", "Certificate/workspace-webhook-serving:spec.dnsNames[1]",
		}},
		{"self-managed", []string{
			"RoleBinding/workspace-webhook-certificates:subjects[0].namespace", "ClusterRoleBinding/octopus-workspace-webhook-cabundle:subjects[0].namespace",
		}},
		{"service-ca", nil},
	} {
		t.Run(c.mode, func(t *testing.T) {
			flags := []string{"--set", "certificates.mode=" + c.mode + ",networkPolicy.enabled=true,serviceMonitor.enabled=true"}
			before, after := renderChart(t, webhookNS, flags...), renderChart(t, other, flags...)
			want := map[string]string{}
			expect := func(path string) {
				v := leafValue(t, before, path)
				if !strings.Contains(v, webhookNS) {
					t.Fatalf("%s = %s does not name %s", path, v, webhookNS)
				}
				want[path] = strings.ReplaceAll(v, webhookNS, other)
			}
			for _, o := range before {
				if o.GetNamespace() != "" {
					expect(objectKey(o) + ":metadata.namespace")
				}
			}
			expect("ServiceMonitor/workspace-webhook:spec.namespaceSelector.matchNames[0]")
			expect("ClusterRoleBinding/octopus-workspace-webhook:subjects[0].namespace")
			for _, w := range []string{mwc + "webhooks[0]", mwc + "webhooks[1]", vwc + "webhooks[0]", vwc + "webhooks[1]"} {
				expect(w + ".clientConfig.service.namespace")
				expect(w + ".namespaceSelector.matchExpressions[0].values[2]")
			}
			expect("ValidatingAdmissionPolicy/octopus-workspace-script-pods:spec.matchConstraints.namespaceSelector.matchExpressions[0].values[2]")
			for _, p := range c.extra {
				expect(p)
			}
			checkChanges(t, before, after, want)
		})
	}
}

// The namespace the README has an admin create for the chart carries the Pod Security labels
// the kustomization's Namespace carries, so a Helm install is held to the same profile.
func TestReadmeNamespaceHasThePodSecurityLabels(t *testing.T) {
	var ns corev1.Namespace
	find(t, render(t, "cert-manager", false), "Namespace", webhookNS, &ns)
	root, err := controlplane.RepoRoot()
	must(t, err)
	for _, doc := range []string{"README.md", filepath.Join("manifests", "README.md")} {
		b, err := os.ReadFile(filepath.Join(root, doc))
		must(t, err)
		text := strings.ReplaceAll(string(b), "\\\n", " ")
		var command string
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "kubectl label namespace "+webhookNS+" ") {
				command = line
			}
		}
		if command == "" {
			t.Errorf("%s: no `kubectl label namespace %s` command", doc, webhookNS)
			continue
		}
		n := 0
		for k, v := range ns.Labels {
			if strings.HasPrefix(k, "pod-security.kubernetes.io/") {
				n++
				if !slices.Contains(strings.Fields(command), k+"="+v) {
					t.Errorf("%s: the namespace command lacks %s=%s: %s", doc, k, v, command)
				}
			}
		}
		if n == 0 {
			t.Fatalf("the kustomization's Namespace has no Pod Security labels: %v", ns.Labels)
		}
	}
}
