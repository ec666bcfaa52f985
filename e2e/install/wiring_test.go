package install

import (
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/helm"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
)

// rendered is one flavour, with its Deployment's arguments parsed by the binary's own flags.
type rendered struct {
	flavour    string
	objs       []*unstructured.Unstructured
	deploy     appsv1.Deployment
	container  corev1.Container
	opts       app.Options
	service    corev1.Service
	mutating   admissionregistrationv1.MutatingWebhookConfiguration
	validating admissionregistrationv1.ValidatingWebhookConfiguration
}

func renderFlavour(t *testing.T, flavour string) rendered {
	t.Helper()
	r := rendered{flavour: flavour, objs: render(t, flavour, false)}
	find(t, r.objs, "Deployment", "workspace-webhook", &r.deploy)
	find(t, r.objs, "Service", "workspace-webhook", &r.service)
	find(t, r.objs, "MutatingWebhookConfiguration", "", &r.mutating)
	find(t, r.objs, "ValidatingWebhookConfiguration", "", &r.validating)
	if n := len(r.deploy.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("%s: %d containers, want 1", flavour, n)
	}
	r.container = r.deploy.Spec.Template.Spec.Containers[0]
	opts, err := parseArgs(r.container.Args, r.deploy.Namespace)
	if err != nil {
		t.Fatalf("%s: %v", flavour, err)
	}
	r.opts = opts
	return r
}

func (r rendered) mountAt(t *testing.T, dir string) (corev1.VolumeMount, corev1.Volume) {
	t.Helper()
	for _, m := range r.container.VolumeMounts {
		if path.Clean(m.MountPath) == path.Clean(dir) {
			for _, v := range r.deploy.Spec.Template.Spec.Volumes {
				if v.Name == m.Name {
					return m, v
				}
			}
			t.Fatalf("%s: volume %s mounted at %s is not defined", r.flavour, m.Name, dir)
		}
	}
	t.Fatalf("%s: nothing mounted at %s", r.flavour, dir)
	return corev1.VolumeMount{}, corev1.Volume{}
}

func port(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}

func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("no container port named %s", name)
	return 0
}

// The pieces of each flavour fit together: the ports the binary listens on are the ones the
// Service, the probes and the webhook configurations use; the certificate lands where the
// binary reads it; the self-managed names are the ones its RBAC grants; the pod is scheduled,
// sized and identified as the issue asks.
func TestFlavoursAreWiredTogether(t *testing.T) {
	for _, flavour := range manifests.Flavours {
		t.Run(flavour, func(t *testing.T) {
			r := renderFlavour(t, flavour)
			c, spec := r.container, r.deploy.Spec.Template.Spec
			if err := r.opts.Validate(); err != nil {
				t.Fatal(err)
			}

			// Ports: webhook 9443 behind Service 443, metrics 8080, probes 8081.
			if got := containerPort(t, c, "webhook"); got != int32(r.opts.Port) || got != 9443 {
				t.Errorf("webhook port %d, --port %d, want 9443", got, r.opts.Port)
			}
			if got := containerPort(t, c, "metrics"); got != port(t, r.opts.MetricsAddr) || got != 8080 {
				t.Errorf("metrics port %d, --metrics-bind-address %s, want 8080", got, r.opts.MetricsAddr)
			}
			if got := containerPort(t, c, "probes"); got != port(t, r.opts.ProbeAddr) || got != 8081 {
				t.Errorf("probes port %d, --health-probe-bind-address %s, want 8081", got, r.opts.ProbeAddr)
			}
			for probe, want := range map[*corev1.Probe]string{c.ReadinessProbe: "/readyz", c.LivenessProbe: "/healthz"} {
				if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "probes" {
					t.Errorf("want an HTTP probe on %s, port probes: %+v", want, probe)
				}
			}
			var svcPort *corev1.ServicePort
			for i, p := range r.service.Spec.Ports {
				if p.Port == 443 {
					svcPort = &r.service.Spec.Ports[i]
				}
			}
			if svcPort == nil || svcPort.TargetPort.String() != "webhook" {
				t.Errorf("Service must map 443 to the webhook port: %+v", r.service.Spec.Ports)
			}
			if !selects(r.service.Spec.Selector, r.deploy.Spec.Template.Labels) {
				t.Errorf("Service selector %v does not select the pods %v", r.service.Spec.Selector, r.deploy.Spec.Template.Labels)
			}
			var clients []admissionregistrationv1.WebhookClientConfig
			for _, w := range r.mutating.Webhooks {
				clients = append(clients, w.ClientConfig)
			}
			for _, w := range r.validating.Webhooks {
				clients = append(clients, w.ClientConfig)
			}
			for _, cc := range clients {
				s := cc.Service
				if s == nil || s.Name != r.service.Name || s.Namespace != r.service.Namespace || s.Port == nil || *s.Port != 443 ||
					!slices.Contains([]string{app.MutatePodPath, app.ValidatePodPath, app.ValidatePVCPath, app.MutateTentaclePath}, *s.Path) {
					t.Errorf("webhook client config does not reach the Service on a served path: %+v", s)
				}
			}

			// Identity and environment.
			if spec.ServiceAccountName != "workspace-webhook" || spec.AutomountServiceAccountToken == nil || !*spec.AutomountServiceAccountToken {
				t.Errorf("want ServiceAccount workspace-webhook with its token mounted, got %q %v", spec.ServiceAccountName, spec.AutomountServiceAccountToken)
			}
			var sa corev1.ServiceAccount
			find(t, r.objs, "ServiceAccount", spec.ServiceAccountName, &sa)
			hasEnv := false
			for _, e := range c.Env {
				hasEnv = hasEnv || (e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace")
			}
			if !hasEnv {
				t.Error("POD_NAMESPACE must come from the downward API (metadata.namespace)")
			}
			if c.Image != "workspace-webhook:dev" {
				t.Errorf("image %q, want the placeholder workspace-webhook:dev", c.Image)
			}

			// Scheduling and size.
			if *r.deploy.Spec.Replicas != 2 {
				t.Errorf("%d replicas, want 2", *r.deploy.Spec.Replicas)
			}
			var pc schedulingv1.PriorityClass
			find(t, r.objs, "PriorityClass", spec.PriorityClassName, &pc)
			if pc.Value <= 0 || pc.Value >= 1_000_000_000 || pc.GlobalDefault {
				t.Errorf("PriorityClass %s: value %d, globalDefault %v; want high, user-definable, not default", pc.Name, pc.Value, pc.GlobalDefault)
			}
			if len(spec.TopologySpreadConstraints) == 0 || spec.TopologySpreadConstraints[0].TopologyKey != "kubernetes.io/hostname" ||
				spec.TopologySpreadConstraints[0].WhenUnsatisfiable != corev1.ScheduleAnyway ||
				!selects(spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels, r.deploy.Spec.Template.Labels) {
				t.Errorf("want a soft spread of the pods across kubernetes.io/hostname: %+v", spec.TopologySpreadConstraints)
			}
			if a := spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
				len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 0 {
				t.Errorf("want a soft (preferred only) pod anti-affinity: %+v", spec.Affinity)
			}
			for name, q := range map[string]struct{ got, want resource.Quantity }{
				"cpu request":    {c.Resources.Requests[corev1.ResourceCPU], resource.MustParse("50m")},
				"memory request": {c.Resources.Requests[corev1.ResourceMemory], resource.MustParse("64Mi")},
				"memory limit":   {c.Resources.Limits[corev1.ResourceMemory], resource.MustParse("128Mi")},
			} {
				if q.got.Cmp(q.want) != 0 {
					t.Errorf("%s %s, want %s", name, q.got.String(), q.want.String())
				}
			}
			if s := r.deploy.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable == nil || s.MaxUnavailable.IntValue() != 0 {
				t.Errorf("a rollout must not take a replica down before its replacement is ready: %+v", r.deploy.Spec.Strategy)
			}

			// The capability override file: mounted read-only where the flag points, and the
			// shipped content (and the example in its comment) parse with the webhook's parser.
			file := r.opts.CapabilityOverrides
			mount, vol := r.mountAt(t, filepath.Dir(file))
			if !mount.ReadOnly || vol.ConfigMap == nil {
				t.Fatalf("--capability-overrides=%s must be a read-only ConfigMap mount, got %+v %+v", file, mount, vol)
			}
			var cm corev1.ConfigMap
			find(t, r.objs, "ConfigMap", vol.ConfigMap.Name, &cm)
			content, ok := cm.Data[filepath.Base(file)]
			if !ok {
				t.Fatalf("ConfigMap %s has no key %s", cm.Name, filepath.Base(file))
			}
			if o, err := storage.ParseOverrides([]byte(content), file); err != nil || len(o.Entries()) != 0 {
				t.Errorf("shipped override file: %v, %d entries; want no overrides", err, len(o.Entries()))
			}
			if o, err := storage.ParseOverrides(commentedExample(content), "example"); err != nil || len(o.Entries()) == 0 {
				t.Errorf("the example in the override file's comment does not parse: %v\n%s", err, commentedExample(content))
			}

			// Certificates.
			mount, vol = r.mountAt(t, r.opts.CertDir)
			annotation := "cert-manager.io/inject-ca-from"
			switch flavour {
			case "cert-manager":
				checkCertManager(t, r, mount, vol, annotation)
			case "self-managed":
				checkSelfManaged(t, r, mount, vol, annotation)
			case "service-ca":
				checkServiceCA(t, r, mount, vol, annotation)
			default:
				t.Fatalf("no certificate checks for flavour %s", flavour)
			}
		})
	}
}

func checkCertManager(t *testing.T, r rendered, mount corev1.VolumeMount, vol corev1.Volume, annotation string) {
	if r.opts.CertMode != app.CertModeFiles || r.opts.CertName != "tls.crt" || r.opts.KeyName != "tls.key" {
		t.Errorf("--cert-mode=%s, files %s/%s; want files with cert-manager's tls.crt and tls.key", r.opts.CertMode, r.opts.CertName, r.opts.KeyName)
	}
	var serving *unstructured.Unstructured
	for _, o := range r.objs {
		if o.GetKind() == "Certificate" && o.GetName() == "workspace-webhook-serving" {
			serving = o
		}
	}
	if serving == nil {
		t.Fatal("no Certificate workspace-webhook-serving")
	}
	secret, _, _ := unstructured.NestedString(serving.Object, "spec", "secretName")
	if vol.Secret == nil || vol.Secret.SecretName != secret || !mount.ReadOnly {
		t.Errorf("--cert-dir must be the Certificate's Secret %s, read-only: %+v %+v", secret, vol, mount)
	}
	dns, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	for _, want := range []string{r.service.Name + "." + r.service.Namespace + ".svc", r.service.Name + "." + r.service.Namespace + ".svc.cluster.local"} {
		if !slices.Contains(dns, want) {
			t.Errorf("serving Certificate dnsNames %v lack %s", dns, want)
		}
	}
	duration, renew := certDuration(t, serving, "duration"), certDuration(t, serving, "renewBefore")
	if duration != 2160*time.Hour || renew != 720*time.Hour {
		t.Errorf("serving certificate duration %s, renewBefore %s; want 2160h and 720h", duration, renew)
	}
	if p, _, _ := unstructured.NestedString(serving.Object, "spec", "privateKey", "rotationPolicy"); p != "Always" {
		t.Errorf("serving certificate privateKey.rotationPolicy %q, want Always", p)
	}
	issuer, _, _ := unstructured.NestedString(serving.Object, "spec", "issuerRef", "name")
	found := false
	for _, o := range r.objs {
		found = found || (o.GetKind() == "Issuer" && o.GetName() == issuer)
	}
	if !found {
		t.Errorf("serving Certificate's issuer %s is not rendered", issuer)
	}
	want := serving.GetNamespace() + "/" + serving.GetName()
	if r.mutating.Annotations[annotation] != want || r.validating.Annotations[annotation] != want {
		t.Errorf("both webhook configurations need %s: %s, got %q and %q", annotation, want, r.mutating.Annotations[annotation], r.validating.Annotations[annotation])
	}
	for _, o := range r.objs {
		if o.GetKind() == "Role" || strings.Contains(o.GetName(), "cabundle") {
			t.Errorf("%s %s: the cert-manager flavour needs no certificate RBAC", o.GetKind(), o.GetName())
		}
	}
}

// checkServiceCA: OpenShift's service CA operator writes the Secret the Service's annotation
// names (tls.crt, tls.key) and injects its CA into both webhook configurations.
func checkServiceCA(t *testing.T, r rendered, mount corev1.VolumeMount, vol corev1.Volume, certManagerAnnotation string) {
	if r.opts.CertMode != app.CertModeFiles || r.opts.CertName != "tls.crt" || r.opts.KeyName != "tls.key" {
		t.Errorf("--cert-mode=%s, files %s/%s; want files with the service CA's tls.crt and tls.key", r.opts.CertMode, r.opts.CertName, r.opts.KeyName)
	}
	secret := r.service.Annotations["service.beta.openshift.io/serving-cert-secret-name"]
	if secret == "" || vol.Secret == nil || vol.Secret.SecretName != secret || !mount.ReadOnly {
		t.Errorf("--cert-dir must be the Secret the Service asks the service CA for (%q), read-only: %+v %+v", secret, vol, mount)
	}
	const inject = "service.beta.openshift.io/inject-cabundle"
	if r.mutating.Annotations[inject] != "true" || r.validating.Annotations[inject] != "true" {
		t.Errorf("both webhook configurations need %s: \"true\", got %q and %q", inject, r.mutating.Annotations[inject], r.validating.Annotations[inject])
	}
	for _, o := range r.objs {
		if o.GetKind() == "Certificate" || o.GetKind() == "Issuer" || o.GetKind() == "Role" || strings.Contains(o.GetName(), "cabundle") {
			t.Errorf("%s %s: the service-ca flavour needs no cert-manager objects or certificate RBAC", o.GetKind(), o.GetName())
		}
	}
	if _, ok := r.mutating.Annotations[certManagerAnnotation]; ok {
		t.Errorf("service-ca configurations must not carry %s", certManagerAnnotation)
	}
}

func checkSelfManaged(t *testing.T, r rendered, mount corev1.VolumeMount, vol corev1.Volume, annotation string) {
	o := r.opts
	if o.CertMode != app.CertModeSelfManaged || vol.EmptyDir == nil || mount.ReadOnly {
		t.Errorf("--cert-mode=%s; want self-managed writing to a writable emptyDir at --cert-dir: %+v %+v", o.CertMode, vol, mount)
	}
	for _, flagName := range []string{"--self-managed-secret=", "--service-name=", "--mutating-webhook-configuration=", "--validating-webhook-configuration="} {
		if !slices.ContainsFunc(r.container.Args, func(a string) bool { return strings.HasPrefix(a, flagName) }) {
			t.Errorf("self-managed Deployment should spell out %s", flagName)
		}
	}
	if o.ServiceName != r.service.Name || o.MutatingConfigName != r.mutating.Name || o.ValidatingConfigName != r.validating.Name {
		t.Errorf("flags name Service %s and configurations %s/%s; rendered %s, %s/%s",
			o.ServiceName, o.MutatingConfigName, o.ValidatingConfigName, r.service.Name, r.mutating.Name, r.validating.Name)
	}
	if _, ok := r.mutating.Annotations[annotation]; ok {
		t.Errorf("self-managed configurations must not carry %s", annotation)
	}
	var role rbacv1.Role
	find(t, r.objs, "Role", "", &role)
	var cabundle rbacv1.ClusterRole
	find(t, r.objs, "ClusterRole", "octopus-workspace-webhook-cabundle", &cabundle)
	if role.Namespace != r.deploy.Namespace {
		t.Errorf("the certificate Role is in %s, the webhook in %s", role.Namespace, r.deploy.Namespace)
	}
	grants := func(rules []rbacv1.PolicyRule, resource, name, verb string) bool {
		for _, rule := range rules {
			if slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, verb) &&
				((len(rule.ResourceNames) == 0 && name == "") || slices.Contains(rule.ResourceNames, name)) {
				return true
			}
		}
		return false
	}
	for _, verb := range []string{"get", "update", "patch"} {
		if !grants(role.Rules, "secrets", o.SelfManagedSecret, verb) {
			t.Errorf("Role does not grant %s on Secret %s", verb, o.SelfManagedSecret)
		}
		for _, res := range []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"} {
			name := o.MutatingConfigName
			if res == "validatingwebhookconfigurations" {
				name = o.ValidatingConfigName
			}
			if !grants(cabundle.Rules, res, name, verb) {
				t.Errorf("ClusterRole %s does not grant %s on %s %s", cabundle.Name, verb, res, name)
			}
		}
	}
	if !grants(role.Rules, "secrets", "", "create") {
		t.Error("Role does not grant create on Secrets (the first start creates the Secret)")
	}
	for _, rule := range append(append([]rbacv1.PolicyRule{}, role.Rules...), cabundle.Rules...) {
		if len(rule.ResourceNames) == 0 && !slices.Equal(rule.Verbs, []string{"create"}) {
			t.Errorf("a certificate rule not limited by name grants more than create: %+v", rule)
		}
	}
}

func certDuration(t *testing.T, cert *unstructured.Unstructured, field string) time.Duration {
	t.Helper()
	s, _, _ := unstructured.NestedString(cert.Object, "spec", field)
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s %s: %v", cert.GetName(), field, err)
	}
	return d
}

// commentedExample is the YAML example commented out in the shipped override file.
func commentedExample(content string) []byte {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(content, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "# Example:"):
			in = true
		case in && strings.HasPrefix(trimmed, "# "):
			b.WriteString(strings.TrimPrefix(trimmed, "# ") + "\n")
		case in:
			in = false
		}
	}
	return []byte(b.String())
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// The image is a placeholder an admin overrides with `kustomize edit set image`, which writes
// an images entry into the kustomization: the same entry over a flavour changes the image.
func TestImageIsOverridable(t *testing.T) {
	dir, err := manifests.Dir()
	must(t, err)
	for _, flavour := range manifests.Flavours {
		tmp := t.TempDir()
		rel, err := filepath.Rel(tmp, filepath.Join(dir, flavour))
		must(t, err)
		k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [" + strconv.Quote(filepath.ToSlash(rel)) + "]\n" +
			"images:\n  - name: workspace-webhook\n    newName: registry.example.com/octopus/workspace-webhook\n    newTag: v1.2.3\n"
		must(t, os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), []byte(k), 0o600))
		y, err := manifests.RenderDir(tmp)
		must(t, err)
		if want := "image: registry.example.com/octopus/workspace-webhook:v1.2.3"; !strings.Contains(string(y), want) || strings.Contains(string(y), "workspace-webhook:dev") {
			t.Errorf("%s: image not overridden; want %q", flavour, want)
		}
	}
}

// kubectl apply -k applies in the rendered order: the Namespace before anything in it, the
// PriorityClass before the Deployment, and the webhook configurations last, once what they
// call exists.
func TestApplyOrder(t *testing.T) {
	for _, flavour := range manifests.Flavours {
		for _, netpol := range []bool{false, true} {
			objs := render(t, flavour, netpol)
			idx := func(kind string) int {
				return slices.IndexFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == kind })
			}
			n := len(objs)
			if idx("Namespace") != 0 || idx("PriorityClass") > idx("Deployment") ||
				idx("MutatingWebhookConfiguration") < n-2 || idx("ValidatingWebhookConfiguration") < n-2 {
				var kinds []string
				for _, o := range objs {
					kinds = append(kinds, o.GetKind())
				}
				t.Errorf("%s (network policy %v): apply order %v", flavour, netpol, kinds)
			}
		}
	}
}

// The final-state policy sees exactly the script pods the mutating webhook sees: same
// resources and operations, same object and namespace selection. A pod the webhook never
// marked is out of the policy's scope by its match condition, but the selectors must agree
// or the two would disagree on which namespaces are served at all.
func TestPolicyScopeIsTheMutatingWebhooks(t *testing.T) {
	for _, flavour := range manifests.Flavours {
		r := renderFlavour(t, flavour)
		var policy admissionregistrationv1.ValidatingAdmissionPolicy
		find(t, r.objs, "ValidatingAdmissionPolicy", "", &policy)
		script := r.mutating.Webhooks[slices.IndexFunc(r.mutating.Webhooks, func(w admissionregistrationv1.MutatingWebhook) bool {
			return w.ClientConfig.Service != nil && *w.ClientConfig.Service.Path == app.MutatePodPath
		})]
		mc := policy.Spec.MatchConstraints
		if len(mc.ResourceRules) != len(script.Rules) || !equalJSON(t, mc.ResourceRules[0].RuleWithOperations, script.Rules[0]) ||
			!equalJSON(t, mc.ObjectSelector, script.ObjectSelector) || !equalJSON(t, mc.NamespaceSelector, script.NamespaceSelector) {
			t.Errorf("%s: policy scope %+v differs from the mutating webhook's (rules %+v, objects %+v, namespaces %+v)",
				flavour, mc, script.Rules, script.ObjectSelector, script.NamespaceSelector)
		}
		for _, b := range policyBindings(t, r.objs) {
			if b.Spec.PolicyName != policy.Name || !slices.Contains(b.Spec.ValidationActions, admissionregistrationv1.Audit) {
				t.Errorf("%s: binding %s %+v does not audit policy %s", flavour, b.Name, b.Spec, policy.Name)
			}
		}
	}
}

// The final-state policy follows the webhook's enforcement mode in every kind of namespace
// (no label, labelled enforce, labelled warn, a label naming no mode): exactly one binding
// selects it, [Deny, Audit] where the webhook (its rendered --enforcement, then the label)
// refuses, [Warn, Audit] where it only warns; for every kustomization with and without
// components/audit-only, and the chart with each value of enforcement.
func TestPolicyBindingsFollowTheWebhooksMode(t *testing.T) {
	type install struct {
		name string
		objs []*unstructured.Unstructured
		want enforcement.Mode
	}
	var installs []install
	for _, flavour := range manifests.Flavours {
		installs = append(installs, install{flavour, render(t, flavour, false), enforcement.Enforce},
			install{flavour + "+audit-only", renderWith(t, flavour, manifests.AuditOnlyComponent), enforcement.Warn})
	}
	for _, m := range enforcement.Modes {
		if _, err := helm.Find(); err == nil || os.Getenv("CI") == "true" {
			installs = append(installs, install{"chart enforcement=" + string(m), renderChart(t, webhookNS, "--set", "enforcement="+string(m)), m})
		}
	}
	for _, in := range installs {
		var d appsv1.Deployment
		find(t, in.objs, "Deployment", "workspace-webhook", &d)
		opts, err := parseArgs(d.Spec.Template.Spec.Containers[0].Args, webhookNS)
		must(t, err)
		if opts.Enforcement != in.want {
			t.Errorf("%s: --enforcement=%s, want %s", in.name, opts.Enforcement, in.want)
		}
		bindings := policyBindings(t, in.objs)
		for _, ns := range []map[string]string{nil, {enforcement.Label: "enforce"}, {enforcement.Label: "warn"}, {enforcement.Label: "Warn"}, {enforcement.Label: ""}} {
			actions, names, err := enforcement.PolicyActions(bindings, ns)
			must(t, err)
			want, _ := enforcement.Resolve(opts.Enforcement, ns)
			wantActions := []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Audit}
			if want == enforcement.Warn {
				wantActions[0] = admissionregistrationv1.Warn
			}
			if len(names) != 1 || !slices.Equal(actions, wantActions) {
				t.Errorf("%s, namespace labels %v: the webhook is in %s mode there, the policy's bindings %v give %v", in.name, ns, want, names, actions)
			}
		}
	}
}
