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
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// What the webhook can do, each needing part of its RBAC. The check returns nil when the
// capability works.
type capability struct {
	name  string
	check func(ctx context.Context, w *variantWebhook) error
}

// ruleBreaks is what removing a rule of the rendered ClusterRole must break: the
// capabilities, and words of the failure (or the webhook's log) that name the permission.
type ruleBreaks struct {
	capabilities []string
	because      []string
}

// The webhook with every rule of the rendered ClusterRole can do everything; without any one
// rule, the capability that rule serves breaks, in a way that names the permission, and (for
// the rules read on request paths) nothing else breaks. One control plane; each run is the
// webhook binary as its own process, impersonating a service account bound to its own copy
// of the rendered rules, probed with AdmissionReviews sent to its HTTPS endpoint.
func TestEachRenderedClusterRoleRuleIsNeeded(t *testing.T) {
	objs := render(t, "cert-manager", false)
	var role rbacv1.ClusterRole
	find(t, objs, "ClusterRole", "octopus-workspace-webhook", &role)
	// The rule list below follows the rendered one; a new rule must say what it is for.
	want := []ruleBreaks{
		{[]string{"ready"}, []string{"did not sync", "pods is forbidden"}},
		{[]string{"ready"}, []string{"did not sync", "nodes is forbidden"}},
		{[]string{"judge an unknown class by its volumes", "check that a claim naming a volume can bind"},
			[]string{"cannot list resource", "cannot get resource", "persistentvolumes", string(reason.CapabilityCheckFailed)}},
		{[]string{"ready"}, []string{"did not sync", "storageclasses.storage.k8s.io is forbidden"}},
		{[]string{"place a stopped agent's script pod by its VolumeAttachment"}, []string{"volumeattachments.storage.k8s.io is forbidden"}},
		{[]string{"record a refusal as an Event"}, []string{"events.events.k8s.io", "forbidden"}},
	}
	if len(role.Rules) != len(want) {
		t.Fatalf("the rendered ClusterRole has %d rules, this test knows %d: say what a new rule is for", len(role.Rules), len(want))
	}
	bin := buildWebhook(t)
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
			w := runVariant(t, ctx, cp, bin, fmt.Sprintf("rbac-variant-%d", i+1), rules)
			failures := map[string]error{}
			for _, c := range capabilities {
				if err := c.check(ctx, w); err != nil {
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
func TestEachSelfManagedRuleIsNeeded(t *testing.T) {
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
	must(t, cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: webhookNS}}))
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{"kubernetes.io/hostname": "node-a", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}}}
	must(t, cp.Client.Create(ctx, node))
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}
	must(t, cp.Client.Status().Update(ctx, node))

	// An agent whose Tentacle runs on node-a (no kubelet: the status is set by hand).
	running := tentacle.Agent{Namespace: "rbac-running", Release: "prod", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}
	must(t, cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: running.Namespace}}))
	must(t, cp.Client.Create(ctx, running.Claim()))
	tp := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "octopus-agent-tentacle-0", Namespace: running.Namespace, Labels: running.TentacleLabels()},
		Spec: running.Deployment().Spec.Template.Spec}
	tp.Spec.NodeName = "node-a"
	must(t, cp.Client.Create(ctx, tp))
	tp.Status.Phase = corev1.PodRunning
	must(t, cp.Client.Status().Update(ctx, tp))

	// An agent scaled to zero whose volume is still attached to node-a.
	stopped := tentacle.Agent{Namespace: "rbac-stopped", Release: "prod", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}
	must(t, cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: stopped.Namespace}}))
	must(t, cp.Client.Create(ctx, stopped.Claim()))
	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: "csi-" + stopped.VolumeName()},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: "ebs.csi.aws.com", NodeName: "node-a",
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To(stopped.VolumeName())}}}
	must(t, cp.Client.Create(ctx, va))
	va.Status.Attached = true
	must(t, cp.Client.Status().Update(ctx, va))

	// A class nobody declared, with a Bound ReadWriteMany volume; a static volume of 1Gi.
	must(t, cp.Client.Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "mystery"}, Provisioner: "csi.mystery.example"}))
	rwxPV := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-mystery-rwx"}, Spec: corev1.PersistentVolumeSpec{
		StorageClassName: "mystery", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
		Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
		PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "csi.mystery.example", VolumeHandle: "h1"}}}}
	must(t, cp.Client.Create(ctx, rwxPV))
	rwxPV.Status.Phase = corev1.VolumeBound
	must(t, cp.Client.Status().Update(ctx, rwxPV))
	small := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-small"}, Spec: corev1.PersistentVolumeSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
		PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "nfs.csi.k8s.io", VolumeHandle: "h2"}}}}
	must(t, cp.Client.Create(ctx, small))
	small.Status.Phase = corev1.VolumeAvailable
	must(t, cp.Client.Status().Update(ctx, small))

	claimOn := func(name string, edit func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
		c := running.Claim()
		c.Name, c.Namespace, c.Spec.VolumeName = name, "rbac-claims", ""
		c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		edit(c)
		return c
	}
	return []capability{
		{"ready", func(ctx context.Context, w *variantWebhook) error { return w.readyErr }},
		{"pin a script pod to its running Tentacle's node", func(ctx context.Context, w *variantWebhook) error {
			resp, err := w.review(ctx, app.MutatePodPath, running.ScriptPod("pin", tentacle.StyleV2))
			if err == nil && (!resp.Allowed || !bytes.Contains(resp.Patch, []byte(`"node-a"`))) {
				err = fmt.Errorf("not pinned to node-a: %s", describe(resp))
			}
			return err
		}},
		{"place a stopped agent's script pod by its VolumeAttachment", func(ctx context.Context, w *variantWebhook) error {
			resp, err := w.review(ctx, app.MutatePodPath, stopped.ScriptPod("attached", tentacle.StyleV2))
			if err == nil && (!resp.Allowed || !bytes.Contains(resp.Patch, []byte(`"node-a"`))) {
				err = fmt.Errorf("not pinned to node-a: %s", describe(resp))
			}
			return err
		}},
		{"judge an unknown class by its volumes", func(ctx context.Context, w *variantWebhook) error {
			resp, err := w.review(ctx, app.ValidatePVCPath, claimOn("rwx-mystery", func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptr.To("mystery") }))
			if err == nil && resp.AuditAnnotations[audit.KeyReason] != string(reason.ReadWriteManySupported) {
				err = fmt.Errorf("not judged by its Bound ReadWriteMany volume: %s", describe(resp))
			}
			return err
		}},
		{"check that a claim naming a volume can bind", func(ctx context.Context, w *variantWebhook) error {
			resp, err := w.review(ctx, app.ValidatePVCPath, claimOn("names-pv-small", func(c *corev1.PersistentVolumeClaim) {
				c.Spec.StorageClassName, c.Spec.VolumeName = ptr.To(""), "pv-small"
			}))
			if err == nil && !strings.Contains(strings.Join(resp.Warnings, " "), "persistence.size=1Gi") {
				err = fmt.Errorf("no size advice: %s", describe(resp))
			}
			return err
		}},
		{"record a refusal as an Event", func(ctx context.Context, w *variantWebhook) error {
			ns := "rbac-events-" + w.name
			if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				return err
			}
			pod := running.ScriptPod("event", tentacle.StyleTemplate)
			pod.Namespace = ns
			resp, err := w.review(ctx, app.MutatePodPath, pod)
			if err != nil {
				return err
			}
			if resp.Allowed {
				return fmt.Errorf("a script pod of no agent was admitted: %s", describe(resp))
			}
			// Either the Event is written, or the recorder logs why it was not.
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				var list eventsv1.EventList
				if err := cp.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
					return err
				}
				for _, e := range list.Items {
					if e.ReportingController == "workspace-webhook" && e.Reason == string(reason.AgentNotFound) {
						return nil
					}
				}
				if l := w.logText(); strings.Contains(l, "events.events.k8s.io") && strings.Contains(l, "forbidden") {
					return errors.New("the Event was rejected: events.events.k8s.io forbidden")
				}
				time.Sleep(100 * time.Millisecond)
			}
			return errors.New("no Event and no rejection within 30s")
		}},
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
	if w.readyErr != nil {
		return nil, fmt.Errorf("not served: %w", w.readyErr)
	}
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

// buildWebhook builds cmd/workspace-webhook for the test.
func buildWebhook(t *testing.T) string {
	t.Helper()
	root, err := controlplane.RepoRoot()
	must(t, err)
	bin := filepath.Join(t.TempDir(), "workspace-webhook")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/workspace-webhook")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/workspace-webhook: %v\n%s", err, out)
	}
	return bin
}
