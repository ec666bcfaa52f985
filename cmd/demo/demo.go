package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/doctor"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
)

const scriptPodLabel = "octopus.com/scriptTicketId"

func run(ctx context.Context, out io.Writer, keepRunning bool) error {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	say(out, "==> starting a local control plane: kube-apiserver, etcd, kube-scheduler, kube-controller-manager, 3 kwok nodes")
	opts := controlplane.AllComponents(3)
	opts.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "manifests", "base", "webhooks.yaml")}}
	started := time.Now()
	cp, err := controlplane.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() { _ = cp.Stop() }()
	say(out, "    ready in %s, nodes %s", time.Since(started).Round(time.Millisecond), strings.Join(cp.Nodes, ", "))

	logFile := filepath.Join(cp.LogDir, "workspace-webhook.log")
	if err := startWebhook(ctx, cp, logFile); err != nil {
		return err
	}
	wio := cp.WebhookInstallOptions
	say(out, "==> webhook serving on https://%s:%d (log: %s)", wio.LocalServingHost, wio.LocalServingPort, logFile)
	say(out, "    registered from manifests/base/webhooks.yaml: MutatingWebhookConfiguration and ValidatingWebhookConfiguration octopus-workspace-webhook")
	policy, bindings, err := manifests.ScriptPodPolicy()
	if err != nil {
		return err
	}
	if err := cp.InstallPolicy(ctx, policy, bindings...); err != nil {
		return err
	}
	say(out, "    and from manifests/base/script-pod-policy.yaml: ValidatingAdmissionPolicy %s, checking each script pod's final state in the API server", policy.Name)

	agent := tentacle.Agent{Namespace: "octopus-agent-demo", Release: "demo",
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, NodeSelector: map[string]string{"kubernetes.io/hostname": "node-2"}}
	say(out, "==> installing agent %s/%s: claim %s (ReadWriteOnce), Tentacle Deployment", agent.Namespace, agent.Release, agent.ClaimName())
	tentaclePod, err := installAgent(ctx, cp, agent)
	if err != nil {
		return err
	}
	say(out, "    Tentacle pod %s is Running on %s", tentaclePod.Name, tentaclePod.Spec.NodeName)

	var pod *corev1.Pod
	for _, ex := range []struct {
		ticket string
		style  tentacle.Style
		what   string
	}{
		{"a3f9c2e1d4b5", tentacle.StyleV2, "as a chart v2 Tentacle does (workspace volume, os/arch affinity, no co-location)"},
		{"b7e6d5c4a3f2", tentacle.StyleTemplate, "from a ScriptPodTemplate that names no workspace at all"},
	} {
		pod = agent.ScriptPod(ex.ticket, ex.style)
		say(out, "==> creating script pod %s %s", pod.Name, ex.what)
		baseline, err := withoutWebhook(ctx, cp.Client, pod)
		if err != nil {
			return err
		}
		admitted := pod.DeepCopy()
		if err := createRetrying(ctx, cp.Client, admitted); err != nil {
			return err
		}
		say(out, "    what the webhook changed (- without the webhook, + as admitted):")
		say(out, "%s", indent(podDiff(baseline, admitted), "    "))
		node, err := waitScheduled(ctx, cp.Client, admitted)
		if err != nil {
			return err
		}
		say(out, "    scheduled to %s, the node holding the workspace volume (Tentacle runs on %s)", node, tentaclePod.Spec.NodeName)
	}

	if err := refusedClaim(ctx, out, cp); err != nil {
		return err
	}
	say(out, "==> workspace-webhook doctor on this cluster:")
	if err := doctorReport(ctx, out, cp); err != nil {
		return err
	}

	if !keepRunning {
		return nil
	}
	say(out, "")
	say(out, "The control plane keeps running. Try your own pods:")
	say(out, "    export KUBECONFIG=%s", cp.KubeconfigPath)
	say(out, "    kubectl get pods -n %s -o wide", agent.Namespace)
	say(out, "    kubectl get pod -n %s %s -o jsonpath='{.metadata.annotations.workspace-webhook\\.io/workspace}'", agent.Namespace, pod.Name)
	say(out, "Press Ctrl-C to stop.")
	<-ctx.Done()
	say(out, "stopping")
	return nil
}

func startWebhook(ctx context.Context, cp *controlplane.ControlPlane, logFile string) error {
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	wio := cp.WebhookInstallOptions
	opts := app.DefaultOptions()
	opts.Host, opts.Port, opts.CertDir = wio.LocalServingHost, wio.LocalServingPort, wio.LocalServingCertDir
	opts.MetricsAddr, opts.ProbeAddr = "0", freeAddr()
	// controller-runtime's own components (certificate watcher, admission) log through its
	// global logger: send them to the same file, as cmd/workspace-webhook does to stderr.
	log := zap.New(zap.WriteTo(f))
	ctrllog.SetLogger(log)
	mgr, err := app.NewManager(cp.Config, opts, log)
	if err != nil {
		return err
	}
	go func() { _ = mgr.Start(ctx) }()
	return poll(ctx, 60*time.Second, func() (bool, error) {
		return mgr.GetWebhookServer().StartedChecker()(nil) == nil, nil
	})
}

func installAgent(ctx context.Context, cp *controlplane.ControlPlane, a tentacle.Agent) (*corev1.Pod, error) {
	if _, err := cp.CreateNamespace(ctx, a.Namespace); err != nil {
		return nil, err
	}
	objs := []client.Object{a.Volume(a.StorageClass), a.Claim(), a.Deployment()}
	for _, sa := range a.ServiceAccounts() {
		objs = append(objs, sa)
	}
	for _, o := range objs {
		if err := cp.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	var running *corev1.Pod
	err := poll(ctx, 60*time.Second, func() (bool, error) {
		var pods corev1.PodList
		if err := cp.Client.List(ctx, &pods, client.InNamespace(a.Namespace), client.MatchingLabels(a.TentacleLabels())); err != nil {
			return false, err
		}
		for i := range pods.Items {
			if pods.Items[i].Status.Phase == corev1.PodRunning {
				running = &pods.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return running, err
}

// withoutWebhook is the pod as the API server would store it with no webhook: the same pod,
// minus the script-pod label that selects it for the webhooks, created with dry-run.
func withoutWebhook(ctx context.Context, c client.Client, pod *corev1.Pod) (*corev1.Pod, error) {
	p := pod.DeepCopy()
	delete(p.Labels, scriptPodLabel)
	if err := c.Create(ctx, p, client.DryRunAll); err != nil {
		return nil, fmt.Errorf("dry-run of the unmutated pod: %w", err)
	}
	p.Labels[scriptPodLabel] = pod.Labels[scriptPodLabel]
	return p, nil
}

// createRetrying retries only the refusal that says to retry (the webhook's informer may not
// have seen the Tentacle pod that started a moment ago).
func createRetrying(ctx context.Context, c client.Client, pod *corev1.Pod) error {
	return poll(ctx, 10*time.Second, func() (bool, error) {
		p := pod.DeepCopy()
		err := c.Create(ctx, p)
		if err != nil && strings.Contains(err.Error(), "retry once the Tentacle pod is running") {
			return false, nil
		}
		*pod = *p
		return err == nil, err
	})
}

func waitScheduled(ctx context.Context, c client.Client, pod *corev1.Pod) (string, error) {
	err := poll(ctx, 60*time.Second, func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return false, err
		}
		return pod.Spec.NodeName != "", nil
	})
	return pod.Spec.NodeName, err
}

// podDiff shows the webhook's change: metadata the server generates and the service-account
// token volume (its name is random per pod) are left out of both sides.
func podDiff(before, after *corev1.Pod) string {
	return yamlDiff(normalized(before), normalized(after))
}

func normalized(p *corev1.Pod) map[string]any {
	c := p.DeepCopy()
	c.ObjectMeta = *c.ObjectMeta.DeepCopy()
	c.UID, c.ResourceVersion, c.ManagedFields, c.CreationTimestamp = "", "", nil, c.CreationTimestamp.Rfc3339Copy()
	c.CreationTimestamp.Time = time.Time{}
	c.Status = corev1.PodStatus{}
	c.Spec.NodeName = ""
	keep := c.Spec.Volumes[:0]
	for _, v := range c.Spec.Volumes {
		if !strings.HasPrefix(v.Name, "kube-api-access-") {
			keep = append(keep, v)
		}
	}
	c.Spec.Volumes = keep
	for i := range c.Spec.Containers {
		mounts := c.Spec.Containers[i].VolumeMounts[:0]
		for _, m := range c.Spec.Containers[i].VolumeMounts {
			if !strings.HasPrefix(m.Name, "kube-api-access-") {
				mounts = append(mounts, m)
			}
		}
		c.Spec.Containers[i].VolumeMounts = mounts
	}
	b, _ := json.Marshal(c)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

func poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s", timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "0"
	}
	defer l.Close()
	return l.Addr().String()
}

// refusedClaim shows the claim webhook refusing, at once, a ReadWriteMany claim that an EBS
// class could never serve (it would stay Pending until helm install --atomic times out).
func refusedClaim(ctx context.Context, out io.Writer, cp *controlplane.ControlPlane) error {
	gp2 := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "gp2"}, Provisioner: "ebs.csi.aws.com"}
	if err := cp.Client.Create(ctx, gp2); err != nil {
		return err
	}
	rwx := tentacle.Agent{Namespace: "octopus-agent-demo-rwx", Release: "demo-rwx", Generation: 3, Storage: tentacle.StorageClass,
		StorageClass: gp2.Name, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}}
	if _, err := cp.CreateNamespace(ctx, rwx.Namespace); err != nil {
		return err
	}
	say(out, "==> creating agent claim %s/%s: ReadWriteMany on StorageClass gp2 (ebs.csi.aws.com)", rwx.Namespace, rwx.ClaimName())
	err := poll(ctx, 10*time.Second, func() (bool, error) { // the webhook's StorageClass informer
		err := cp.Client.Create(ctx, rwx.Claim(), client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), "cannot serve it"), nil
	})
	if err != nil {
		return fmt.Errorf("the RWX claim on EBS was not refused: %w", err)
	}
	err = cp.Client.Create(ctx, rwx.Claim())
	say(out, "    refused at once: %v", err)
	return nil
}

func doctorReport(ctx context.Context, out io.Writer, cp *controlplane.ControlPlane) error {
	disc, err := discovery.NewDiscoveryClientForConfig(cp.Config)
	if err != nil {
		return err
	}
	snap, err := doctor.Gather(ctx, cp.Client, disc, doctor.Scope{})
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := doctor.Print(&b, doctor.Diagnose(snap, storage.Judge{}, "/octopus"), "table"); err != nil {
		return err
	}
	say(out, "%s", indent(b.String(), "    "))
	return nil
}
