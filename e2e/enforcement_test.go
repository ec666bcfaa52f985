package e2e

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

const claimPrefix = "agent-claim-access-modes.workspace-webhook.io/"

// createLabelledNamespace creates a namespace with the enforcement label a cluster admin sets.
func createLabelledNamespace(t *testing.T, ctx context.Context, name string, mode enforcement.Mode) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{enforcement.Label: string(mode)}}}
	if err := cp.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// waitForMode waits until the webhook answers a dry-run creation of pod (which enforce mode
// refuses) as its namespace's mode says: its namespace cache has seen the label.
func waitForMode(t *testing.T, ctx context.Context, c client.Client, pod *corev1.Pod, mode enforcement.Mode) {
	t.Helper()
	eventually(t, ctx, "the webhook in "+string(mode)+" mode in "+pod.Namespace, func() (bool, string) {
		p := pod.DeepCopy()
		p.Name += "-probe"
		err := c.Create(ctx, p, client.DryRunAll)
		return (err == nil) == (mode == enforcement.Warn), errString(err)
	})
}

// reset forgets the warnings collected so far.
func (w *warnings) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = nil
}

func errString(err error) string {
	if err == nil {
		return "admitted"
	}
	return err.Error()
}

// The same refused script pod and the same refused claim: refused in a namespace in enforce
// mode (the webhook's global mode here), admitted in one a cluster admin labelled
// workspace-webhook.io/enforcement=warn, with the refusal as a warning kubectl shows, and
// would-deny with the reason code in the API server's audit log, a Warning Event, the metric
// and the log line. (A pod the webhook admits is still given its workspace and pin there:
// TestPolicyWarnsInAWarnNamespace.)
func TestWarnNamespaceAdmitsWhatEnforceRefuses(t *testing.T) {
	ctx := ctxFor(t, 4*time.Minute)
	createClasses(t, ctx, class("e2e-gp2", "ebs.csi.aws.com", nil))
	enforced := tentacle.Agent{Namespace: "octopus-agent-enforce-rwop", Release: "prod", AccessModes: rwop, NodeSelector: onNode("node-1")}
	warned := tentacle.Agent{Namespace: "octopus-agent-warn-rwop", Release: "prod", AccessModes: rwop, NodeSelector: onNode("node-2")}
	createLabelledNamespace(t, ctx, warned.Namespace, enforcement.Warn)
	installAgent(t, ctx, enforced, true)
	installAgent(t, ctx, warned, true)
	warnedTentacle := waitTentacleRunning(t, ctx, warned).Name
	c, warns := clientWithWarnings(t)
	waitForMode(t, ctx, c, warned.ScriptPod("warn00", tentacle.StyleV2), enforcement.Warn)

	before := decisions(t)
	// Script pods: the same pod, refused, then admitted unchanged.
	refusal := c.Create(ctx, enforced.ScriptPod("warn01", tentacle.StyleV2))
	if !apierrors.IsForbidden(refusal) || !strings.Contains(refusal.Error(), "ReadWriteOncePod") {
		t.Fatalf("enforce mode: want the ReadWriteOncePod refusal, got %v", refusal)
	}
	pod := warned.ScriptPod("warn01", tentacle.StyleV2)
	must(t, c.Create(ctx, pod))
	podWarning := "workspace webhook (warn mode) would refuse (ReadWriteOncePodWorkspace): "
	if w := warns.all(); !strings.Contains(w, podWarning+"workspace claim "+warned.Namespace+"/"+warned.ClaimName()+" is ReadWriteOncePod") {
		t.Errorf("warn mode: the refusal is not the warning kubectl shows: %q", w)
	}
	if _, marked := pod.Annotations[workspace.VolumeMark]; marked || pod.Annotations[workspace.RecordAnnotation] != "" {
		t.Errorf("warn mode patched a pod it would refuse: %v", pod.Annotations)
	}

	// Claims: the same RWX claim on an EBS class, refused, then admitted.
	warns.reset()
	if err := c.Create(ctx, agentClaim(enforced.Namespace, "ebs", ptr.To("e2e-gp2"), corev1.ReadWriteMany)); !apierrors.IsForbidden(err) {
		t.Fatalf("enforce mode: want the claim refused, got %v", err)
	}
	claim := agentClaim(warned.Namespace, "ebs", ptr.To("e2e-gp2"), corev1.ReadWriteMany)
	must(t, c.Create(ctx, claim))
	claimWarning := "workspace webhook (warn mode) would refuse (ReadWriteManyUnsupported): PersistentVolumeClaim " + warned.Namespace + "/" + claim.Name + " asks for ReadWriteMany"
	if w := warns.all(); !strings.Contains(w, claimWarning) {
		t.Errorf("warn mode: claim warning %q lacks %q", w, claimWarning)
	}

	// Metrics: each decision once, would-deny with its reason code.
	after := decisions(t)
	for k, want := range map[string]float64{
		"mutate-pod/denied/ReadWriteOncePodWorkspace":      1,
		"mutate-pod/would-deny/ReadWriteOncePodWorkspace":  1,
		"validate-pvc/denied/ReadWriteManyUnsupported":     1,
		"validate-pvc/would-deny/ReadWriteManyUnsupported": 1,
	} {
		if got := after[k] - before[k]; got != want {
			t.Errorf("metric %s moved by %v, want %v", k, got, want)
		}
	}

	// The API server's audit log: admitted (201) with would-deny and the reason code.
	podEv := findAudit(t, "pods", pod.Namespace, pod.Name)
	if podEv.ResponseStatus.Code != 201 {
		t.Errorf("warn-mode pod audit status %d, want 201", podEv.ResponseStatus.Code)
	}
	wantAnnotations(t, podEv, mutatingPrefix, map[string]string{"decision": "would-deny", "reason": string(reason.ReadWriteOncePodWorkspace), "claim": warned.ClaimName()})
	refusedEv := findAudit(t, "pods", enforced.Namespace, "octopus-script-warn01")
	wantAnnotations(t, refusedEv, mutatingPrefix, map[string]string{"decision": "denied", "reason": string(reason.ReadWriteOncePodWorkspace)})
	claimEv := findAudit(t, "persistentvolumeclaims", claim.Namespace, claim.Name)
	if claimEv.ResponseStatus.Code != 201 {
		t.Errorf("warn-mode claim audit status %d, want 201", claimEv.ResponseStatus.Code)
	}
	wantAnnotations(t, claimEv, claimPrefix, map[string]string{"decision": "would-deny", "reason": string(reason.ReadWriteManyUnsupported), "storage-class": "e2e-gp2"})

	// Warning Events, as for refusals: on the Tentacle pod, and on the namespace for the claim.
	wouldRefuse := func(code reason.Code, regarding string) (*eventsv1.Event, string) {
		var list eventsv1.EventList
		must(t, cp.Client.List(ctx, &list, client.InNamespace(warned.Namespace)))
		seen := ""
		for i, e := range list.Items {
			seen += e.Reason + "/" + e.Regarding.Name + " "
			if e.Reason == string(code) && e.Regarding.Name == regarding {
				return &list.Items[i], seen
			}
		}
		return nil, seen
	}
	for _, want := range []struct {
		code      reason.Code
		regarding string
		action    string
		note      string
	}{
		{reason.ReadWriteOncePodWorkspace, warnedTentacle, "WouldRefusePod", podWarning},
		{reason.ReadWriteManyUnsupported, warned.Namespace, "WouldRefusePersistentVolumeClaim", claimWarning},
	} {
		var ev *eventsv1.Event
		eventually(t, ctx, "would-deny Event "+string(want.code), func() (bool, string) {
			var seen string
			ev, seen = wouldRefuse(want.code, want.regarding)
			return ev != nil, seen
		})
		if ev.Type != corev1.EventTypeWarning || ev.Action != want.action || !strings.HasPrefix(ev.Note, want.note) {
			t.Errorf("Event %s: type %s action %s note %q; want Warning %s %q...", want.code, ev.Type, ev.Action, ev.Note, want.action, want.note)
		}
	}

	// One log line, would-deny with the reason and the message.
	var line map[string]any
	for _, l := range strings.Split(webhookLog.String(), "\n") {
		if strings.Contains(l, `"name":"`+pod.Name+`"`) && strings.Contains(l, `"namespace":"`+pod.Namespace+`"`) && strings.Contains(l, `"webhook":"mutate-pod"`) {
			must(t, json.Unmarshal([]byte(l), &line))
		}
	}
	if line["decision"] != "would-deny" || line["reason"] != string(reason.ReadWriteOncePodWorkspace) || line["message"] == nil {
		t.Errorf("decision log line %v", line)
	}
}

// In a namespace labelled warn the webhook admits as in enforce mode (workspace and pin), and
// the final-state policy warns instead of refusing (its [Warn, Audit] binding): a later
// webhook's breakage is admitted with the policy's message as a warning, and the audit log
// records it (validation_failure naming the warn binding and its actions, the reason code) on
// a pod that was created.
func TestPolicyWarnsInAWarnNamespace(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	a := tentacle.Agent{Namespace: "octopus-agent-warn-late-sidecar", Release: "prod", AccessModes: rwo, NodeSelector: onNode("node-2")}
	createLabelledNamespace(t, ctx, a.Namespace, enforcement.Warn)
	startLateBreaker(t, ctx, "zz-e2e-late-breaker-warn", map[string]bool{a.Namespace: false})
	installAgent(t, ctx, a, true)
	time.Sleep(time.Second) // webhook configurations are picked up by the API server asynchronously

	c, warns := clientWithWarnings(t)
	pod := a.ScriptPod("late01", tentacle.StyleV2)
	must(t, c.Create(ctx, pod))
	if !workspace.IsPinned(pod, "node-2") {
		t.Errorf("warn mode did not pin a pod it admits: %+v", pod.Spec.Affinity)
	}
	want := "Validation failed for ValidatingAdmissionPolicy 'octopus-workspace-script-pods' with binding 'octopus-workspace-script-pods-warn': script pod " + pod.Name +
		`: containers late-2 do not mount the workspace volume "tentacle-home" at /octopus`
	if w := warns.all(); !strings.Contains(w, want) {
		t.Errorf("warnings %q lack the policy's %q", w, want)
	}
	ev := findAudit(t, "pods", pod.Namespace, pod.Name)
	if ev.ResponseStatus.Code != 201 {
		t.Errorf("audit status %d, want 201", ev.ResponseStatus.Code)
	}
	if got := ev.Annotations["octopus-workspace-script-pods/reason"]; got != string(reason.WorkspaceNotMounted) {
		t.Errorf("audit reason %q, want WorkspaceNotMounted (all: %v)", got, ev.Annotations)
	}
	var failures []struct {
		Message, Policy, Binding string
		ValidationActions        []string
	}
	must(t, json.Unmarshal([]byte(ev.Annotations["validation.policy.admission.k8s.io/validation_failure"]), &failures))
	if len(failures) != 1 || failures[0].Binding != "octopus-workspace-script-pods-warn" || strings.Join(failures[0].ValidationActions, ",") != "Warn,Audit" ||
		!strings.Contains(failures[0].Message, "do not mount the workspace volume") {
		t.Errorf("validation_failure %+v", failures)
	}
	// Our webhook admitted the pod (it is its final state the policy warns about).
	wantAnnotations(t, ev, mutatingPrefix, map[string]string{"decision": "mutated", "reason": string(reason.WorkspacePinned)})
}

// The label cannot be set by a namespace's own admins: the Namespace is a cluster-scoped
// object, and the built-in admin and edit roles, bound in the namespace by a RoleBinding,
// grant no update or patch on it. A namespaced Role that does grant it would (the README's
// caveat); a cluster admin can.
func TestNamespaceAdminsCannotChangeTheEnforcementLabel(t *testing.T) {
	ctx := ctxFor(t, time.Minute)
	const ns = "team-enforced"
	_, err := cp.CreateNamespace(ctx, ns)
	must(t, err)
	label := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"`+enforcement.Label+`":"warn"}}}`))
	for _, role := range []string{"admin", "edit"} {
		user := "team-" + role
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}}}
		must(t, cp.Client.Create(ctx, rb))
		cfg, err := cp.AddUser(envtest.User{Name: user})
		must(t, err)
		c, err := client.New(cfg, client.Options{})
		must(t, err)
		// The binding works: the user can do their job in the namespace (RBAC is cached by the
		// API server's authorizer, so this may take a moment).
		eventually(t, ctx, user+" may create in "+ns, func() (bool, string) {
			err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns}})
			return err == nil || apierrors.IsAlreadyExists(err), errString(err)
		})
		err = c.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, label)
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s of %s patching its label: want Forbidden, got %v", role, ns, err)
		}
		var got corev1.Namespace
		must(t, c.Get(ctx, client.ObjectKey{Name: ns}, &got)) // admin and edit may read it
		got.Labels[enforcement.Label] = "warn"
		if err := c.Update(ctx, &got); !apierrors.IsForbidden(err) {
			t.Errorf("%s of %s updating it with the label: want Forbidden, got %v", role, ns, err)
		}
	}
	// The caveat the README states: a RoleBinding in the namespace to a role that grants patch
	// on namespaces does let its holder change that namespace's own labels (the API server
	// authorizes a request on namespace X within X). Never grant it to namespace admins.
	const labeller = "team-namespace-labeller"
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: labeller, Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"patch"}}}}
	must(t, cp.Client.Create(ctx, role))
	must(t, cp.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: labeller, Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: labeller},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: labeller}}}))
	cfg, err := cp.AddUser(envtest.User{Name: labeller})
	must(t, err)
	c, err := client.New(cfg, client.Options{})
	must(t, err)
	eventually(t, ctx, "a namespaced Role granting patch on namespaces lets "+labeller+" label "+ns, func() (bool, string) {
		err := c.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, label)
		return err == nil, errString(err)
	})
	// A cluster admin can, of course.
	must(t, cp.Client.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"`+enforcement.Label+`":"enforce"}}}`))))
}

// --enforcement=warn (the webhook's global mode, as components/audit-only and the chart's
// enforcement=warn set it): a second webhook process, for script pods of its own label so the
// shared webhook does not see them, admits with a warning in a namespace without the label
// and still refuses in one a cluster admin labelled enforce (a script pod where no agent is:
// AgentNotFound).
func TestGlobalWarnModeWithAnEnforcedNamespace(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	const scriptLabel = "e2e.workspace-webhook.io/warn-script"
	const open, strict = "octopus-agent-global-warn", "octopus-agent-global-warn-enforced"
	createLabelledNamespace(t, ctx, strict, enforcement.Enforce)
	for _, ns := range []string{open, strict} {
		_, err := cp.CreateNamespace(ctx, ns) // waits for the default ServiceAccount
		must(t, err)
	}

	wio := cp.WebhookInstallOptions
	_, portStr, _ := net.SplitHostPort(freeAddr())
	port, _ := strconv.Atoi(portStr)
	m, _ := manifestWebhooks(t)
	entry := m.Webhooks[0]
	if entry.Name != "script-pod-workspace.workspace-webhook.io" {
		t.Fatalf("first mutating entry is %s", entry.Name)
	}
	url := "https://" + net.JoinHostPort(wio.LocalServingHost, portStr) + *entry.ClientConfig.Service.Path
	entry.Name = "global-warn-script-pods.workspace-webhook.io"
	entry.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: wio.LocalServingCAData}
	entry.ObjectSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: scriptLabel, Operator: metav1.LabelSelectorOpExists}}}
	entry.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{open, strict}}}}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "e2e-global-warn"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{entry}}
	must(t, cp.Client.Create(ctx, cfg))
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), cfg) })

	opts := app.DefaultOptions()
	opts.Host, opts.Port, opts.CertDir = wio.LocalServingHost, port, wio.LocalServingCertDir
	opts.MetricsAddr, opts.ProbeAddr = "0", freeAddr()
	opts.ScriptPodLabel, opts.Enforcement = scriptLabel, enforcement.Warn
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	log := &syncBuffer{}
	go func() { done <- app.Run(runCtx, cp.Config, opts, zap.New(zap.WriteTo(log))) }()
	t.Cleanup(func() { stop(); <-done })
	must(t, controlplane.WaitOK(ctx, "http://"+opts.ProbeAddr+"/readyz", 60*time.Second))

	ours := func(ns, ticket string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "octopus-script-" + ticket, Namespace: ns, Labels: map[string]string{scriptLabel: ticket}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "script", Image: "busybox:1.37"}}}}
	}
	c, warns := clientWithWarnings(t)
	eventually(t, ctx, "the global-warn webhook answers", func() (bool, string) {
		err := c.Create(ctx, ours(open, "gw00"), client.DryRunAll)
		return err == nil && strings.Contains(warns.all(), "(warn mode) would refuse (AgentNotFound): no Tentacle pod"), errString(err) + " " + warns.all()
	})
	must(t, c.Create(ctx, ours(open, "gw01")))
	if err := c.Create(ctx, ours(strict, "gw01")); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "no Tentacle pod") {
		t.Fatalf("a namespace labelled enforce under --enforcement=warn: want the refusal, got %v", err)
	}
	ev := findAudit(t, "pods", open, "octopus-script-gw01")
	if got := ev.Annotations["global-warn-script-pods.workspace-webhook.io/decision"]; got != "would-deny" {
		t.Errorf("audit decision %q, want would-deny (all: %v)", got, ev.Annotations)
	}
	if !strings.Contains(log.String(), `"mode":"warn"`) {
		t.Errorf("the webhook does not log its global mode:\n%s", log.String())
	}
}
