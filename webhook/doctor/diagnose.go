package doctor

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// Snapshot is what Diagnose reads of a cluster.
type Snapshot struct {
	Classes []storagev1.StorageClass
	Volumes []corev1.PersistentVolume
	Claims  []corev1.PersistentVolumeClaim
	// Pods are the agent chart's pods (Tentacle candidates) and the script pods.
	Pods  []corev1.Pod
	Nodes int
	// OpenShift: the API group security.openshift.io is served.
	OpenShift bool
	// Mutating and Validating are the cluster's webhook configurations of our names (nil:
	// missing); ShippedMutating and ShippedValidating are the ones this binary ships.
	Mutating, ShippedMutating     *admissionregistrationv1.MutatingWebhookConfiguration
	Validating, ShippedValidating *admissionregistrationv1.ValidatingWebhookConfiguration
	// Policy is the cluster's script-pod ValidatingAdmissionPolicy of the shipped name (nil:
	// missing), PolicyBindings the bindings naming it; ShippedPolicy is this binary's.
	Policy, ShippedPolicy *admissionregistrationv1.ValidatingAdmissionPolicy
	PolicyBindings        []admissionregistrationv1.ValidatingAdmissionPolicyBinding
	// EnforcementLabels are the namespaces labelled workspace-webhook.io/enforcement, with
	// the label's value.
	EnforcementLabels map[string]string
	// ReadyEndpoints counts, per "namespace/service" the webhook configurations call, the
	// ready endpoints of its EndpointSlices (absent: not looked up, e.g. webhooks by URL).
	ReadyEndpoints map[string]int
	// Now is when the snapshot was taken (certificate expiry, stuck pods).
	Now time.Time
}

// Diagnose builds the report. MountPath is the workspace path (Tentacle: /octopus).
func Diagnose(s Snapshot, j storage.Judge, mountPath string) Report {
	var r Report
	ev := func(class string) storage.Evidence {
		e := storage.CollectEvidence(class, corev1.PersistentVolumeFilesystem, s.Volumes)
		e.Nodes = s.Nodes
		return e
	}
	for i := range s.Classes {
		c := &s.Classes[i]
		a := j.ReadWriteMany(c, corev1.PersistentVolumeFilesystem, ev(c.Name))
		mode := string(storagev1.VolumeBindingImmediate)
		if c.VolumeBindingMode != nil {
			mode = string(*c.VolumeBindingMode)
		}
		r.Classes = append(r.Classes, ClassRow{Name: c.Name, Provisioner: c.Provisioner, Default: c.Annotations[defaultClass] == "true",
			BindingMode: mode, ReadWriteMany: string(a.Verdict), Source: string(a.Source), Reason: a.Reason})
		r.Problems = append(r.Problems, azureFilesProblems(c)...)
	}
	rwxClasses := storage.RWXCapableClasses(j, s.Classes, corev1.PersistentVolumeFilesystem, s.Nodes, ev)
	for _, a := range agents(s, mountPath) {
		row := a.row(s, j)
		r.Agents = append(r.Agents, row)
		r.Problems = append(r.Problems, a.problems(s, j, row, rwxClasses)...)
	}
	r.Problems = append(r.Problems, webhookProblems(s)...)
	r.Problems = append(r.Problems, policyProblems(s)...)
	r.Problems = append(r.Problems, namespaceProblems(s)...)
	sort.SliceStable(r.Problems, func(a, b int) bool { return r.Problems[a].Severity == Error && r.Problems[b].Severity != Error })
	return r
}

// installed is one agent: its Tentacle pods, claim and script pods.
type installed struct {
	namespace, release string
	tentacles          []*corev1.Pod
	scripts            []*corev1.Pod
	claim              *corev1.PersistentVolumeClaim
	claimName          string
}

func agents(s Snapshot, mountPath string) []*installed {
	byKey := map[string]*installed{}
	var order []string
	for i := range s.Pods {
		p := &s.Pods[i]
		if !agent.IsTentacle(p, mountPath) || !(strings.HasPrefix(p.Labels[agent.ChartLabel], chartPrefix) || p.Labels[agent.ComponentLabel] == agent.TentacleValue) {
			continue
		}
		key := p.Namespace + "/" + p.Labels[agent.InstanceLabel]
		a := byKey[key]
		if a == nil {
			a = &installed{namespace: p.Namespace, release: p.Labels[agent.InstanceLabel]}
			byKey[key] = a
			order = append(order, key)
		}
		a.tentacles = append(a.tentacles, p)
		if a.claimName == "" {
			a.claimName, _ = agent.ClaimOfTentacle(p, mountPath)
		}
	}
	sort.Strings(order)
	var out []*installed
	for _, k := range order {
		a := byKey[k]
		for i := range s.Claims {
			if c := &s.Claims[i]; c.Namespace == a.namespace && c.Name == a.claimName {
				a.claim = c
			}
		}
		for i := range s.Pods {
			p := &s.Pods[i]
			if _, script := p.Labels[agent.ScriptTicketLabel]; script && p.Namespace == a.namespace &&
				(p.Annotations[agent.ReleaseAnnotation] == a.release || p.Annotations[agent.ReleaseAnnotation] == "") {
				a.scripts = append(a.scripts, p)
			}
		}
		out = append(out, a)
	}
	return out
}

func (a *installed) row(s Snapshot, j storage.Judge) AgentRow {
	t := a.tentacles[0]
	row := AgentRow{Namespace: a.namespace, Release: a.release, Name: t.Labels[agent.ChartNameLabel],
		ChartVersion: strings.TrimPrefix(t.Labels[agent.ChartLabel], chartPrefix), TentacleVersion: t.Labels["app.kubernetes.io/version"],
		Worker: envOf(t, "WorkerEnabled") == "true", Claim: a.claimName, Mode: ModeNoClaim}
	if a.claim != nil {
		modes := a.claim.Spec.AccessModes
		if len(a.claim.Status.AccessModes) > 0 {
			modes = a.claim.Status.AccessModes
		}
		for _, m := range modes {
			row.AccessModes = append(row.AccessModes, string(m))
		}
		row.StorageClass = storage.OwnClassName(a.claim)
		switch {
		case a.inClusterNFS(s):
			row.Mode = ModeNFS
		default:
			switch workspace.ModeOf(a.claim) {
			case workspace.ModePin:
				row.Mode = ModePinned
			case workspace.ModeShare:
				row.Mode = ModeSpread
			case workspace.ModeExclusive:
				row.Mode = ModeRWOP
			default:
				row.Mode = modeUnknown
			}
		}
	}
	pods := make([]corev1.Pod, len(a.tentacles))
	for i, p := range a.tentacles {
		pods[i] = *p
	}
	row.Node, _ = agent.NodeOfRunningTentacle(pods, a.claimName)
	if len(a.scripts) > 0 {
		row.ScriptPods = map[string]int{}
		for _, p := range a.scripts {
			row.ScriptPods[p.Spec.NodeName]++
		}
	}
	return row
}

// inClusterNFS: the claim's volume is the chart's own NFS server (CSI nfs.csi.k8s.io served
// from <name>-nfs.<namespace>.svc).
func (a *installed) inClusterNFS(s Snapshot) bool {
	pv := volumeOf(s, a.claim)
	if pv == nil || pv.Spec.CSI == nil || pv.Spec.CSI.Driver != nfsDriver {
		return false
	}
	server := pv.Spec.CSI.VolumeAttributes["server"] + " " + pv.Spec.CSI.VolumeHandle
	return strings.Contains(server, "-nfs."+a.namespace+".svc")
}

func volumeOf(s Snapshot, c *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	if c == nil || c.Spec.VolumeName == "" {
		return nil
	}
	for i := range s.Volumes {
		if s.Volumes[i].Name == c.Spec.VolumeName {
			return &s.Volumes[i]
		}
	}
	return nil
}

func (a *installed) problems(s Snapshot, j storage.Judge, row AgentRow, rwxClasses []string) []Problem {
	var out []Problem
	obj := fmt.Sprintf("agent %s/%s", a.namespace, a.release)
	switch {
	case row.Mode == ModeNFS:
		out = append(out, a.nfsMigration(s, row, rwxClasses))
	case row.Mode == ModeRWOP:
		out = append(out, Problem{Error, obj, fmt.Sprintf("workspace claim %s is ReadWriteOncePod: no script pod can ever mount it", a.claimName),
			"reinstall the agent with persistence.accessModes={ReadWriteOnce}"})
	case row.Mode == ModeNoClaim && a.claimName != "":
		out = append(out, Problem{Error, obj, fmt.Sprintf("workspace claim %s does not exist", a.claimName), "repair or reinstall the agent"})
	}
	if a.claim != nil && a.claim.Status.Phase != corev1.ClaimBound && workspace.ModeOf(a.claim) == workspace.ModeShare {
		// Unbound: the class it resolves to now (the default, when it names none) provisions it.
		if name, found, _ := storage.ResolveClassName(a.claim, s.Classes); found {
			c := classNamed(s, name)
			if ans := j.ReadWriteMany(c, corev1.PersistentVolumeFilesystem, storage.Evidence{Nodes: s.Nodes}); ans.Verdict == storage.Unsupported {
				out = append(out, Problem{Error, "claim " + a.namespace + "/" + a.claimName,
					fmt.Sprintf("asks for ReadWriteMany on StorageClass %q, which cannot serve it (%s); it stays Pending", c.Name, ans.Reason),
					classAdvice(rwxClasses)})
			}
		}
	}
	for _, p := range a.scripts {
		if p.Status.Phase != corev1.PodPending || s.Now.Sub(p.CreationTimestamp.Time) < 2*time.Minute {
			continue
		}
		why := "not started"
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue && c.Message != "" {
				why = "not scheduled: " + c.Message
			}
		}
		if p.Spec.NodeName != "" && row.Mode == ModePinned && row.Node != "" && p.Spec.NodeName != row.Node {
			why = fmt.Sprintf("on node %s while the ReadWriteOnce workspace is held on %s: a Multi-Attach error", p.Spec.NodeName, row.Node)
		}
		out = append(out, Problem{Warning, "pod " + p.Namespace + "/" + p.Name,
			fmt.Sprintf("script pod Pending for %s: %s", s.Now.Sub(p.CreationTimestamp.Time).Round(time.Second), why),
			"install the workspace webhook in front of this agent (it pins script pods to the volume's node), or see kubectl describe pod"})
	}
	return out
}

// nfsMigration is the fix for an agent on the chart's in-cluster NFS server.
func (a *installed) nfsMigration(s Snapshot, row AgentRow, rwxClasses []string) Problem {
	p := Problem{Severity: Warning, Object: fmt.Sprintf("agent %s/%s", a.namespace, a.release),
		Problem: "uses the chart's in-cluster NFS server: a privileged pod whose restarts fail running deployments"}
	if s.OpenShift {
		p.Severity = Error
		p.Problem = "uses the chart's in-cluster NFS server on OpenShift, where privileged pods are not enabled by default and NFS file access has been inconsistent; Octopus advises a custom StorageClass"
	}
	if len(rwxClasses) == 0 {
		p.Fix = fmt.Sprintf("no StorageClass in this cluster can serve ReadWriteMany: move to ReadWriteOnce (the chart v3 default; the webhook pins script pods): "+
			"helm upgrade --reuse-values --atomic --set persistence.storageClassName=\"<class>\" --set persistence.accessModes={ReadWriteOnce} --namespace %s --version \"%s\" %s %s",
			a.namespace, row.ChartVersion, a.release, chartOCI)
		return p
	}
	class := rwxClasses[0]
	for _, name := range rwxClasses { // never recommend a class doctor warns about
		if c := classNamed(s, name); c != nil && len(azureFilesProblems(c)) == 0 {
			class = name
			break
		}
	}
	size := ""
	if c := classNamed(s, class); c != nil && storage.NormalizeProvisioner(c.Provisioner) == "kubernetes.io/no-provisioner" {
		size = staticSize(s, class)
	}
	p.Fix = fmt.Sprintf("helm upgrade --reuse-values --atomic --set persistence.storageClassName=\"%s\"%s --namespace %s --version \"%s\" %s %s",
		class, size, a.namespace, row.ChartVersion, a.release, chartOCI)
	if len(rwxClasses) > 1 {
		p.Fix += fmt.Sprintf(" (ReadWriteMany-capable classes here: %s)", strings.Join(rwxClasses, ", "))
	}
	return p
}

// staticSize is the --set persistence.size=... that an existing Available volume of class
// needs (the chart asks persistence.size, 10Gi by default; a static volume must match it).
func staticSize(s Snapshot, class string) string {
	for _, pv := range s.Volumes {
		if pv.Spec.StorageClassName == class && pv.Status.Phase == corev1.VolumeAvailable && pv.Spec.ClaimRef == nil {
			if c, ok := pv.Spec.Capacity[corev1.ResourceStorage]; ok && c.String() != "10Gi" {
				return fmt.Sprintf(" --set persistence.size=%s", c.String())
			}
			return ""
		}
	}
	return ""
}

func classAdvice(rwxClasses []string) string {
	if len(rwxClasses) == 0 {
		return "ask for ReadWriteOnce (agent chart: persistence.accessModes={ReadWriteOnce}); the webhook pins script pods to the volume's node"
	}
	return fmt.Sprintf("use a class that can serve ReadWriteMany (%s), or ReadWriteOnce", strings.Join(rwxClasses, ", "))
}

func classNamed(s Snapshot, name string) *storagev1.StorageClass {
	for i := range s.Classes {
		if s.Classes[i].Name == name {
			return &s.Classes[i]
		}
	}
	return nil
}

// azureFilesProblems: script-pod workspaces on Azure Files are latency-bound below Premium.
func azureFilesProblems(c *storagev1.StorageClass) []Problem {
	if storage.NormalizeProvisioner(c.Provisioner) != "file.csi.azure.com" {
		return nil
	}
	sku := ""
	for k, v := range c.Parameters {
		if strings.EqualFold(k, "skuName") {
			sku = v
		}
	}
	if strings.HasPrefix(strings.ToLower(sku), "premium") {
		return nil
	}
	if sku == "" {
		sku = "not set (driver default Standard_LRS)"
	}
	return []Problem{{Warning, "storageclass " + c.Name, "Azure Files with skuName " + sku + ": script-pod workspaces are latency-bound on standard shares",
		"Octopus recommends skuName PremiumV2_LRS or PremiumV2_ZRS for agent workspaces"}}
}

func envOf(p *corev1.Pod, name string) string {
	for _, c := range p.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == name {
				return e.Value
			}
		}
	}
	return ""
}

// webhookProblems compares the cluster's webhook configurations with the shipped ones.
func webhookProblems(s Snapshot) []Problem {
	var out []Problem
	type entry struct {
		name, path string
		fp         *admissionregistrationv1.FailurePolicyType
		ca         []byte
		scope      map[string]any // what decides which requests reach the webhook, and how
	}
	collect := func(m *admissionregistrationv1.MutatingWebhookConfiguration, v *admissionregistrationv1.ValidatingWebhookConfiguration) map[string]entry {
		out := map[string]entry{}
		if m != nil {
			for _, w := range m.Webhooks {
				out[w.Name] = entry{w.Name, "mutating", w.FailurePolicy, w.ClientConfig.CABundle, map[string]any{
					"rules": w.Rules, "objectSelector": w.ObjectSelector, "namespaceSelector": w.NamespaceSelector, "matchConditions": w.MatchConditions,
					"sideEffects": w.SideEffects, "timeoutSeconds": w.TimeoutSeconds, "reinvocationPolicy": w.ReinvocationPolicy}}
			}
		}
		if v != nil {
			for _, w := range v.Webhooks {
				out[w.Name] = entry{w.Name, "validating", w.FailurePolicy, w.ClientConfig.CABundle, map[string]any{
					"rules": w.Rules, "objectSelector": w.ObjectSelector, "namespaceSelector": w.NamespaceSelector, "matchConditions": w.MatchConditions,
					"sideEffects": w.SideEffects, "timeoutSeconds": w.TimeoutSeconds}}
			}
		}
		return out
	}
	if s.Mutating == nil || s.Validating == nil {
		out = append(out, Problem{Error, "webhook", "the workspace webhook's configurations are not installed (octopus-workspace-webhook)",
			"install it (README \"Install\"): helm install workspace-webhook manifests/chart/workspace-webhook -n octopus-workspace-webhook, or kubectl apply -k manifests/cert-manager (self-managed, service-ca)"})
		if s.Mutating == nil && s.Validating == nil {
			return out
		}
	}
	services := map[string]bool{}
	for _, svc := range webhookServices(s) {
		services[svc] = true
	}
	for svc := range services {
		if n, looked := s.ReadyEndpoints[svc]; looked && n == 0 {
			out = append(out, Problem{Error, "service " + svc, "the webhook's Service has no ready endpoints: with failurePolicy Fail every script pod is refused",
				"kubectl -n " + strings.Split(svc, "/")[0] + " get pods,endpointslices; check the webhook Deployment's readiness (certificates, RBAC)"})
		}
	}
	have, want := collect(s.Mutating, s.Validating), collect(s.ShippedMutating, s.ShippedValidating)
	paths := func(m map[string]entry) map[string]string {
		out := make(map[string]string, len(m))
		for n, e := range m {
			out[n] = e.path
		}
		return out
	}
	out = append(out, unshippedEntries(paths(have), paths(want))...)
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, h := want[n], have[n]
		if h.name == "" {
			out = append(out, Problem{Error, "webhook " + n, "missing from the " + w.path + " configuration", "re-apply the manifests of this version"})
			continue
		}
		if w.fp != nil && (h.fp == nil || *h.fp != *w.fp) {
			got := "unset"
			if h.fp != nil {
				got = string(*h.fp)
			}
			out = append(out, Problem{Warning, "webhook " + n, fmt.Sprintf("failurePolicy %s, shipped %s", got, *w.fp),
				"re-apply the manifests, or document why this cluster differs"})
		}
		var differ []string
		for field, shipped := range w.scope {
			if !equalJSON(shipped, h.scope[field]) {
				differ = append(differ, field)
			}
		}
		if len(differ) > 0 {
			sort.Strings(differ)
			out = append(out, Problem{Warning, "webhook " + n, "differs from the shipped manifests in " + strings.Join(differ, ", "),
				"re-apply the manifests of this version (an older install, or an edit, changes what the webhook sees)"})
		}
		out = append(out, caProblems(n, h.ca, s.Now)...)
	}
	return out
}

func caProblems(name string, ca []byte, now time.Time) []Problem {
	obj := "webhook " + name
	if len(ca) == 0 {
		return []Problem{{Error, obj, "caBundle is empty: the API server cannot verify the webhook's certificate",
			"check cert-manager's CA injector (annotation cert-manager.io/inject-ca-from) or the self-managed mode's logs"}}
	}
	var soonest *x509.Certificate
	for rest := ca; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil && (soonest == nil || c.NotAfter.Before(soonest.NotAfter)) {
			soonest = c
		}
	}
	switch {
	case soonest == nil:
		return []Problem{{Error, obj, "caBundle holds no valid PEM certificate", "re-inject the CA (cert-manager CA injector, or restart the self-managed webhook)"}}
	case now.After(soonest.NotAfter):
		return []Problem{{Error, obj, fmt.Sprintf("caBundle certificate %q expired at %s", soonest.Subject.CommonName, soonest.NotAfter.UTC().Format(time.RFC3339)), "rotate the CA"}}
	case soonest.NotAfter.Sub(now) < 30*24*time.Hour:
		return []Problem{{Warning, obj, fmt.Sprintf("caBundle certificate %q expires at %s", soonest.Subject.CommonName, soonest.NotAfter.UTC().Format(time.RFC3339)), "check that CA rotation runs"}}
	}
	return nil
}

// webhookServices are the "namespace/name" Services the cluster's configurations call.
func webhookServices(s Snapshot) []string {
	var out []string
	add := func(cc admissionregistrationv1.WebhookClientConfig) {
		if cc.Service != nil {
			out = append(out, cc.Service.Namespace+"/"+cc.Service.Name)
		}
	}
	if s.Mutating != nil {
		for _, w := range s.Mutating.Webhooks {
			add(w.ClientConfig)
		}
	}
	if s.Validating != nil {
		for _, w := range s.Validating.Webhooks {
			add(w.ClientConfig)
		}
	}
	return out
}

// WebhookServices are the Services whose endpoints Gather counts.
func (s Snapshot) WebhookServices() []string { return webhookServices(s) }

// equalJSON compares API values as the API server stores them (nil and empty alike).
func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	norm := func(j []byte) string {
		switch string(j) {
		case "null", "[]", "{}":
			return ""
		}
		return string(j)
	}
	return norm(ja) == norm(jb)
}
