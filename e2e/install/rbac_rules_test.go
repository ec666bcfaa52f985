package install

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/certs"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/reliability"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// What the webhook can do, each needing part of its RBAC. The check returns nil when the
// capability works.
type capability struct {
	name string
	// prepare, when set, runs before the webhook of variant v starts: what its cache must hold.
	prepare func(ctx context.Context, v string) error
	check   func(ctx context.Context, w *variantWebhook) error
}

// ruleBreaks is what removing a rule of the rendered ClusterRole must break: the
// capabilities, and words of the failure (or the webhook's log) that name the permission.
type ruleBreaks struct {
	capabilities []string
	because      []string
}

// TestLeastPrivilege: the credentials the manifests give are least privilege, each rule proven
// needed by a run that fails without it, for the webhook's ClusterRole and for the self-managed
// flavour's certificate rules. What each run observed is saved as scenario 42 of RELIABILITY.md
// (rbac_report_test.go).
func TestLeastPrivilege(t *testing.T) {
	var runs leastPrivilege
	t.Run("the webhook's ClusterRole", func(t *testing.T) { eachRenderedClusterRoleRuleIsNeeded(t, &runs) })
	t.Run("the self-managed certificate rules", func(t *testing.T) { eachSelfManagedRuleIsNeeded(t, &runs) })
	reliability.Save(t, runs.result())
}

// The webhook with every rule of the rendered ClusterRole can do everything; without any one
// rule, the capability that rule serves breaks, in a way that names the permission, and (for
// the rules read on request paths) nothing else breaks. One control plane; each run is the
// webhook binary as its own process, impersonating a service account bound to its own copy
// of the rendered rules, probed with AdmissionReviews sent to its HTTPS endpoint.
func eachRenderedClusterRoleRuleIsNeeded(t *testing.T, runs *leastPrivilege) {
	objs := render(t, "cert-manager", false)
	var role rbacv1.ClusterRole
	find(t, objs, "ClusterRole", "octopus-workspace-webhook", &role)
	// The rule list below follows the rendered one; a new rule must say what it is for.
	want := []ruleBreaks{
		{[]string{"ready"}, []string{"did not sync", "pods is forbidden"}},
		{[]string{"ready"}, []string{"did not sync", "nodes is forbidden"}},
		{[]string{"judge an unknown class by its volumes", "check that a claim naming a volume can bind"},
			[]string{"cannot list resource", "cannot get resource", "persistentvolumes", string(reason.CapabilityCheckFailed)}},
		// The enforcement label's namespaces are an informer too: without them no cache syncs.
		{[]string{"ready"}, []string{"did not sync", "namespaces is forbidden"}},
		{[]string{"ready"}, []string{"did not sync", "storageclasses.storage.k8s.io is forbidden"}},
		{[]string{"place a stopped agent's script pod by its VolumeAttachment"}, []string{"volumeattachments.storage.k8s.io is forbidden"}},
		{[]string{"record a refusal as an Event", "count a repeated refusal in its Event's series"}, []string{"events.events.k8s.io", "forbidden"}},
	}
	runs.webhookRules = len(role.Rules)
	if len(role.Rules) != len(want) {
		t.Fatalf("the rendered ClusterRole has %d rules, this test knows %d: say what a new rule is for", len(role.Rules), len(want))
	}
	bin := webhookprocess.Binary(t)
	cp := start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	capabilities := rbacFixtures(t, ctx, cp)

	for i := -1; i < len(role.Rules); i++ {
		name, rules := "every rule", role.Rules
		if i >= 0 {
			name = fmt.Sprintf("without rule %d (%s)", i, ruleString(role.Rules[i]))
			rules = append(append([]rbacv1.PolicyRule{}, role.Rules[:i]...), role.Rules[i+1:]...)
		}
		t.Run(name, func(t *testing.T) {
			run := runs.add(t, "webhook ClusterRole", name, i < 0)
			v := fmt.Sprintf("rbac-variant-%d", i+1)
			for _, c := range capabilities {
				if c.prepare != nil {
					must(t, c.prepare(ctx, v))
				}
			}
			w := runVariant(t, ctx, cp, bin, v, rules)
			failures := map[string]error{}
			for _, c := range capabilities {
				err := w.readyErr
				switch {
				case c.name == "ready":
				case err != nil:
					err = fmt.Errorf("not served: %w", err)
				default:
					err = c.check(ctx, w)
				}
				if err != nil {
					failures[c.name] = err
				}
			}
			report := func() string {
				var b strings.Builder
				for _, c := range capabilities {
					fmt.Fprintf(&b, "\n  %-60s %v", c.name, orOK(failures[c.name]))
				}
				return b.String()
			}
			t.Logf("capabilities:%s", report())
			run.observe(capabilities, failures, w.logText(), i, want)
			if i < 0 {
				if len(failures) > 0 || strings.Contains(strings.ToLower(w.logText()), "forbidden") {
					t.Fatalf("with the rendered RBAC something failed:%s\nlog:\n%s", report(), w.logText())
				}
				return
			}
			broken := want[i]
			var said strings.Builder
			for _, c := range broken.capabilities {
				err := failures[c]
				if err == nil {
					t.Fatalf("removing %s did not break %q, which it is there for:%s", ruleString(role.Rules[i]), c, report())
				}
				said.WriteString(err.Error() + "\n")
			}
			for _, word := range broken.because {
				if !strings.Contains(said.String()+w.logText(), word) {
					t.Errorf("neither the failures nor the webhook's log say %q:\n%s", word, said.String())
				}
			}
			if broken.capabilities[0] == "ready" {
				return // nothing is served without the caches
			}
			for c, err := range failures {
				if !slices.Contains(broken.capabilities, c) {
					t.Errorf("removing %s also broke %q: %v", ruleString(role.Rules[i]), c, err)
				}
			}
		})
	}
}

// The self-managed flavour's Role and ClusterRole: with all their rules the certificate
// manager bootstraps its CA into its Secret and injects the caBundle; without any one rule it
// fails, saying which permission it lacked.
func eachSelfManagedRuleIsNeeded(t *testing.T, runs *leastPrivilege) {
	objs := render(t, "self-managed", false)
	var role rbacv1.Role
	var cabundle rbacv1.ClusterRole
	find(t, objs, "Role", "workspace-webhook-certificates", &role)
	find(t, objs, "ClusterRole", "octopus-workspace-webhook-cabundle", &cabundle)
	type rule struct {
		inRole bool
		index  int
		says   string
	}
	// Which words of the certificate manager's error name each rule, in rendered order.
	rules := []rule{{true, 0, `secrets "workspace-webhook-tls" is forbidden`}, {true, 1, "cannot create resource \"secrets\""}, {false, 0, "mutatingwebhookconfigurations"}}
	runs.certRules = len(role.Rules) + len(cabundle.Rules)
	if len(role.Rules)+len(cabundle.Rules) != len(rules) {
		t.Fatalf("the self-managed RBAC has %d rules, this test knows %d", len(role.Rules)+len(cabundle.Rules), len(rules))
	}
	cp := start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	must(t, cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: webhookNS}}))
	m, v := webhookConfigs(t, objs)
	must(t, cp.Client.Create(ctx, m))
	must(t, cp.Client.Create(ctx, v))

	for i := -1; i < len(rules); i++ {
		r, cr := role.DeepCopy(), cabundle.DeepCopy()
		name := "every rule"
		if i >= 0 {
			target := &cr.Rules
			if rules[i].inRole {
				target = &r.Rules
			}
			name = "without " + ruleString((*target)[rules[i].index])
			*target = append((*target)[:rules[i].index:rules[i].index], (*target)[rules[i].index+1:]...)
		}
		t.Run(name, func(t *testing.T) {
			run := runs.add(t, "self-managed certificates", name, i < 0)
			sa := fmt.Sprintf("cert-variant-%d", i+1)
			subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: webhookNS}}
			r.Name, cr.Name = sa, sa
			r.ResourceVersion, cr.ResourceVersion = "", ""
			grant(t, ctx, cp.Client, r, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: webhookNS}, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa}})
			grant(t, ctx, cp.Client, cr, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa}, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: sa}})
			// Each run starts from a fresh install: no Secret yet.
			_ = cp.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "workspace-webhook-tls", Namespace: webhookNS}})
			c, err := client.New(asIdentity(cp.Config, sa), client.Options{})
			must(t, err)
			cm, err := certs.NewManager(c, certs.Options{Namespace: webhookNS, SecretName: "workspace-webhook-tls", ServiceName: "workspace-webhook",
				MutatingWebhookConfigName: m.Name, ValidatingWebhookConfigName: v.Name, CertDir: t.TempDir(), Logger: logr.Discard()})
			must(t, err)
			err = eventuallyGranted(ctx, func() error { return cm.Ensure(ctx) })
			t.Logf("certificate bootstrap: %v", orOK(err))
			run.worked = err == nil
			run.outcome = strings.ReplaceAll(fmt.Sprintf("certificate bootstrap: %v", orOK(err)), "\n", "; ")
			if i >= 0 {
				run.broke = err != nil
				run.named = err != nil && strings.Contains(err.Error(), rules[i].says)
			}
			if i < 0 {
				if err != nil {
					t.Fatalf("with the rendered RBAC: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), rules[i].says) {
				t.Fatalf("want a failure saying %q, got %v", rules[i].says, err)
			}
		})
	}
}

// rbacFixtures creates, as admin, what each capability needs, and returns the capabilities.
func rbacFixtures(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane) []capability {
	t.Helper()
	c := cp.Client
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: webhookNS}}))
	must(t, readyNode(ctx, c, "node-a"))
	must(t, readyNode(ctx, c, "node-b"))
	rwo := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}

	// An agent whose Tentacle runs on node-a (no kubelet: the status is set by hand).
	running := tentacle.Agent{Namespace: "rbac-running", Release: "prod", AccessModes: rwo}
	must(t, agentOn(ctx, c, running, "node-a", nil))
	// The same, with a claim the cache does not hold (no chart labels): read live.
	unlabelled := tentacle.Agent{Namespace: "rbac-unlabelled", Release: "prod", AccessModes: rwo}
	must(t, agentOn(ctx, c, unlabelled, "node-a", func(pvc *corev1.PersistentVolumeClaim) { pvc.Labels = nil }))

	// An agent scaled to zero whose volume is still attached to node-a.
	stopped := tentacle.Agent{Namespace: "rbac-stopped", Release: "prod", AccessModes: rwo}
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: stopped.Namespace}}))
	must(t, c.Create(ctx, stopped.Claim()))
	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: "csi-" + stopped.VolumeName()},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: "ebs.csi.aws.com", NodeName: "node-a",
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To(stopped.VolumeName())}}}
	must(t, c.Create(ctx, va))
	va.Status.Attached = true
	must(t, c.Status().Update(ctx, va))

	// A class nobody declared, with a Bound ReadWriteMany volume; a static volume of 1Gi.
	must(t, c.Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "mystery"}, Provisioner: "csi.mystery.example"}))
	rwxPV := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-mystery-rwx"}, Spec: corev1.PersistentVolumeSpec{
		StorageClassName: "mystery", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
		Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
		PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "csi.mystery.example", VolumeHandle: "h1"}}}}
	must(t, c.Create(ctx, rwxPV))
	rwxPV.Status.Phase = corev1.VolumeBound
	must(t, c.Status().Update(ctx, rwxPV))
	small := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-small"}, Spec: corev1.PersistentVolumeSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
		PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "nfs.csi.k8s.io", VolumeHandle: "h2"}}}}
	must(t, c.Create(ctx, small))
	small.Status.Phase = corev1.VolumeAvailable
	must(t, c.Status().Update(ctx, small))

	claimOn := func(name string, edit func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
		pvc := running.Claim()
		pvc.Name, pvc.Namespace, pvc.Spec.VolumeName = name, "rbac-claims", ""
		pvc.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		edit(pvc)
		return pvc
	}
	pinnedTo := func(ctx context.Context, w *variantWebhook, pod *corev1.Pod, node string) error {
		resp, err := w.review(ctx, app.MutatePodPath, pod)
		if err == nil && (!resp.Allowed || !bytes.Contains(resp.Patch, []byte(`"`+node+`"`))) {
			err = fmt.Errorf("not pinned to %s: %s", node, describe(resp))
		}
		return err
	}
	// refusedTwice sends the same refusal twice (an agent-less namespace of the variant's own).
	refusedTwice := func(ctx context.Context, w *variantWebhook, ns string) error {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
		for _, ticket := range []string{"event1", "event2"} {
			pod := running.ScriptPod(ticket, tentacle.StyleTemplate)
			pod.Namespace = ns
			resp, err := w.review(ctx, app.MutatePodPath, pod)
			if err != nil {
				return err
			}
			if resp.Allowed {
				return fmt.Errorf("a script pod of no agent was admitted: %s", describe(resp))
			}
		}
		return nil
	}
	eventsOf := func(ctx context.Context, w *variantWebhook, ns string, ok func(eventsv1.Event) bool) error {
		// Either the Event is written, or the recorder logs why it was not.
		return within(ctx, 30*time.Second, "no Event and no rejection", func() (bool, error) {
			var list eventsv1.EventList
			if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return false, err
			}
			for _, e := range list.Items {
				if e.ReportingController == "workspace-webhook" && e.Reason == string(reason.AgentNotFound) && ok(e) {
					return true, nil
				}
			}
			if l := w.logText(); strings.Contains(l, "events.events.k8s.io") && strings.Contains(l, "forbidden") {
				return false, errors.New("the Event was rejected: events.events.k8s.io forbidden")
			}
			return false, nil
		})
	}
	return []capability{
		{name: "ready"}, // the process became ready (else nothing is served)
		{name: "pin a script pod to its running Tentacle's node", check: func(ctx context.Context, w *variantWebhook) error {
			return pinnedTo(ctx, w, running.ScriptPod("pin", tentacle.StyleV2), "node-a")
		}},
		{name: "pin by a claim the cache does not hold", check: func(ctx context.Context, w *variantWebhook) error {
			return pinnedTo(ctx, w, unlabelled.ScriptPod("uncached", tentacle.StyleV2), "node-a")
		}},
		{name: "place a stopped agent's script pod by its VolumeAttachment", check: func(ctx context.Context, w *variantWebhook) error {
			return pinnedTo(ctx, w, stopped.ScriptPod("attached", tentacle.StyleV2), "node-a")
		}},
		{name: "follow a Tentacle pod that moved after start",
			prepare: func(ctx context.Context, v string) error {
				return agentOn(ctx, c, tentacle.Agent{Namespace: "rbac-moves-" + v, Release: "prod", AccessModes: rwo}, "node-a", nil)
			},
			check: func(ctx context.Context, w *variantWebhook) error {
				a := tentacle.Agent{Namespace: "rbac-moves-" + w.name, Release: "prod", AccessModes: rwo}
				if err := c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-tentacle-0", Namespace: a.Namespace}}, client.GracePeriodSeconds(0)); err != nil {
					return err
				}
				if err := tentaclePod(ctx, c, a, "octopus-agent-tentacle-1", "node-b"); err != nil {
					return err
				}
				return within(ctx, 10*time.Second, "still not pinned to node-b, where the Tentacle pod now runs", func() (bool, error) {
					return pinnedTo(ctx, w, a.ScriptPod("moved", tentacle.StyleV2), "node-b") == nil, nil
				})
			}},
		{name: "see a node that joined after start", check: func(ctx context.Context, w *variantWebhook) error {
			node := "node-" + w.name
			a := tentacle.Agent{Namespace: "rbac-joined-" + w.name, Release: "prod", AccessModes: rwo}
			if err := readyNode(ctx, c, node); err != nil {
				return err
			}
			if err := agentOn(ctx, c, a, node, nil); err != nil {
				return err
			}
			return within(ctx, 10*time.Second, "never pinned to the new node "+node, func() (bool, error) {
				return pinnedTo(ctx, w, a.ScriptPod("joined", tentacle.StyleV2), node) == nil, nil
			})
		}},
		{name: "judge an unknown class by its volumes", check: func(ctx context.Context, w *variantWebhook) error {
			resp, err := w.review(ctx, app.ValidatePVCPath, claimOn("rwx-mystery", func(pvc *corev1.PersistentVolumeClaim) { pvc.Spec.StorageClassName = ptr.To("mystery") }))
			if err == nil && resp.AuditAnnotations[audit.KeyReason] != string(reason.ReadWriteManySupported) {
				err = fmt.Errorf("not judged by its Bound ReadWriteMany volume: %s", describe(resp))
			}
			return err
		}},
		{name: "see a class declared after start", check: func(ctx context.Context, w *variantWebhook) error {
			class := "late-" + w.name
			if err := c.Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: class, Annotations: map[string]string{
				"workspace-webhook.io/supported-access-modes": `["ReadWriteOnce","ReadWriteMany"]`}}, Provisioner: "csi.late.example"}); err != nil {
				return err
			}
			var last string
			err := within(ctx, 10*time.Second, "never judged by its annotation", func() (bool, error) {
				resp, err := w.review(ctx, app.ValidatePVCPath, claimOn("rwx-late", func(pvc *corev1.PersistentVolumeClaim) { pvc.Spec.StorageClassName = ptr.To(class) }))
				if err != nil {
					return false, err
				}
				last = describe(resp)
				return resp.AuditAnnotations[audit.KeyReason] == string(reason.ReadWriteManySupported), nil
			})
			if err != nil && last != "" {
				err = fmt.Errorf("%w: %s", err, last)
			}
			return err
		}},
		{name: "check that a claim naming a volume can bind", check: func(ctx context.Context, w *variantWebhook) error {
			resp, err := w.review(ctx, app.ValidatePVCPath, claimOn("names-pv-small", func(pvc *corev1.PersistentVolumeClaim) {
				pvc.Spec.StorageClassName, pvc.Spec.VolumeName = ptr.To(""), "pv-small"
			}))
			if err == nil && !strings.Contains(strings.Join(resp.Warnings, " "), "persistence.size=1Gi") {
				err = fmt.Errorf("no size advice: %s", describe(resp))
			}
			return err
		}},
		{name: "record a refusal as an Event", check: func(ctx context.Context, w *variantWebhook) error {
			ns := "rbac-events-" + w.name
			if err := refusedTwice(ctx, w, ns); err != nil {
				return err
			}
			return eventsOf(ctx, w, ns, func(eventsv1.Event) bool { return true })
		}},
		// The two refusals sent just above are one Event series.
		{name: "count a repeated refusal in its Event's series", check: func(ctx context.Context, w *variantWebhook) error {
			return eventsOf(ctx, w, "rbac-events-"+w.name, func(e eventsv1.Event) bool { return e.Series != nil && e.Series.Count >= 2 })
		}},
	}
}

// readyNode creates a Ready node (no kubelet: the status is set by hand).
func readyNode(ctx context.Context, c client.Client, name string) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}}}
	if err := c.Create(ctx, node); err != nil {
		return err
	}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}
	return c.Status().Update(ctx, node)
}

// agentOn creates the agent's namespace and claim (edited) and its Tentacle pod running on node.
func agentOn(ctx context.Context, c client.Client, a tentacle.Agent, node string, edit func(*corev1.PersistentVolumeClaim)) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.Namespace}}); err != nil {
		return err
	}
	pvc := a.Claim()
	if edit != nil {
		edit(pvc)
	}
	if err := c.Create(ctx, pvc); err != nil {
		return err
	}
	return tentaclePod(ctx, c, a, "octopus-agent-tentacle-0", node)
}

func tentaclePod(ctx context.Context, c client.Client, a tentacle.Agent, name, node string) error {
	tp := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.Namespace, Labels: a.TentacleLabels()},
		Spec: a.Deployment().Spec.Template.Spec}
	tp.Spec.NodeName = node
	if err := c.Create(ctx, tp); err != nil {
		return err
	}
	tp.Status.Phase = corev1.PodRunning
	return c.Status().Update(ctx, tp)
}

// within polls cond every 100 ms for at most d, then fails saying why; an error from cond
// ends it at once.
func within(ctx context.Context, d time.Duration, why string, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %s", d, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// variantWebhook is one run of the webhook process with one set of rules.
type variantWebhook struct {
	name     string
	url      string
	client   *http.Client
	logPath  string
	readyErr error
}

func (w *variantWebhook) logText() string {
	b, _ := os.ReadFile(w.logPath)
	return string(b)
}

// runVariant grants rules to a service account of its own and runs the webhook binary as it
// (a kubeconfig that impersonates it) until the test ends; readyErr says why it never became
// ready. A process, not Run in this one: a manager stopped before its caches sync never
// returns (see app.runManager), and the process's exit is what the product promises.
func runVariant(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, bin, sa string, rules []rbacv1.PolicyRule) *variantWebhook {
	t.Helper()
	grant(t, ctx, cp.Client, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: sa}, Rules: rules},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: webhookNS}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: sa}})
	wio := cp.WebhookInstallOptions
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(wio.LocalServingCAData)
	w := &variantWebhook{name: sa, url: "https://127.0.0.1:" + strconv.Itoa(port), logPath: filepath.Join(dir, "webhook.log"),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}}
	probe := freeAddr(t)
	const syncTimeout = 8 * time.Second // a cache that cannot list ends start-up, naming RBAC
	logFile, err := os.Create(w.logPath)
	must(t, err)
	cmd := exec.Command(bin, "--kubeconfig="+impersonatingKubeconfig(t, cp, dir, sa), "--host=127.0.0.1", "--port="+strconv.Itoa(port),
		"--cert-dir="+wio.LocalServingCertDir, "--metrics-bind-address=0", "--health-probe-bind-address="+probe,
		"--namespace="+webhookNS, "--cache-sync-timeout="+syncTimeout.String())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "KUBECONFIG=")
	cmd.SysProcAttr = childAttr()
	must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); _ = logFile.Close() }()
	var exited error
	t.Cleanup(func() {
		if exited != nil {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	// Ready, or start-up fails: the process's own verdict on its RBAC.
	deadline := time.Now().Add(syncTimeout + 30*time.Second)
	for {
		select {
		case err := <-done:
			exited = fmt.Errorf("exited (%v)", err)
			w.readyErr = fmt.Errorf("the webhook %v: %s", exited, stoppedBecause(w.logText()))
			return w
		default:
		}
		if resp, err := http.Get("http://" + probe + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w
			}
		}
		if time.Now().After(deadline) {
			w.readyErr = errors.New("neither ready nor exited")
			return w
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// impersonatingKubeconfig is the control plane's admin kubeconfig acting as service account sa
// of the webhook's namespace, with the groups the API server gives every service account.
func impersonatingKubeconfig(t *testing.T, cp *controlplane.ControlPlane, dir, sa string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(cp.KubeconfigPath)
	must(t, err)
	id := asIdentity(&rest.Config{}, sa).Impersonate
	for _, a := range cfg.AuthInfos {
		a.Impersonate, a.ImpersonateGroups = id.UserName, id.Groups
	}
	path := filepath.Join(dir, "kubeconfig")
	must(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// stoppedBecause is the error the process logged when it stopped.
func stoppedBecause(log string) string {
	for _, line := range strings.Split(log, "\n") {
		var entry struct{ Msg, Error string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "webhook stopped" {
			return entry.Error
		}
	}
	return "no reason logged"
}

// review sends obj's CREATE to path as the API server would, and returns the answer.
func (w *variantWebhook) review(ctx context.Context, path string, obj client.Object) (*admissionv1.AdmissionResponse, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	kind, resource := "Pod", "pods"
	if _, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		kind, resource = "PersistentVolumeClaim", "persistentvolumeclaims"
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: types.UID("rbac-" + w.name + "-" + obj.GetName()),
			Kind: metav1.GroupVersionKind{Version: "v1", Kind: kind}, Resource: metav1.GroupVersionResource{Version: "v1", Resource: resource},
			Name: obj.GetName(), Namespace: obj.GetNamespace(), Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}},
	})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response == nil {
		return nil, fmt.Errorf("HTTP %d, not an AdmissionReview: %v", resp.StatusCode, err)
	}
	if r := out.Response; r.Result != nil && r.Result.Code >= 500 {
		return r, fmt.Errorf("error %d: %s", r.Result.Code, r.Result.Message)
	}
	return out.Response, nil
}

// grant creates (or replaces) a role and its binding.
func grant(t *testing.T, ctx context.Context, c client.Client, role, binding client.Object) {
	t.Helper()
	for _, o := range []client.Object{role, binding} {
		_ = c.Delete(ctx, o)
		if err := eventuallyGranted(ctx, func() error { return c.Create(ctx, o) }); err != nil {
			t.Fatal(err)
		}
	}
}

// eventuallyGranted retries f while it fails with AlreadyExists (a deletion still under way);
// anything else, success included, is returned at once.
func eventuallyGranted(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// asIdentity is a service account of the webhook's namespace, with the groups the API server
// gives every service account.
func asIdentity(cfg *rest.Config, sa string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + webhookNS + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + webhookNS, "system:authenticated"}}
	return c
}

func ruleString(r rbacv1.PolicyRule) string {
	s := strings.Join(r.Verbs, ",") + " " + strings.Join(r.Resources, ",")
	if groups := strings.Join(r.APIGroups, ","); groups != "" {
		s += " (" + groups + ")"
	}
	if len(r.ResourceNames) > 0 {
		s += " named " + strings.Join(r.ResourceNames, ",")
	}
	return s
}

func describe(r *admissionv1.AdmissionResponse) string {
	if r == nil {
		return "no answer"
	}
	msg := ""
	if r.Result != nil {
		msg = r.Result.Message
	}
	return fmt.Sprintf("allowed=%v reason=%s %q warnings=%q", r.Allowed, r.AuditAnnotations[audit.KeyReason], msg, r.Warnings)
}

func orOK(err error) any {
	if err == nil {
		return "ok"
	}
	return err
}
