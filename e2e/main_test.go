// Package e2e runs the webhook against a real control plane: kube-apiserver, etcd,
// kube-scheduler, kube-controller-manager and kwok nodes (package controlplane). One control
// plane serves every test of the package; each test uses its own namespaces.
package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

var (
	cp           *controlplane.ControlPlane
	metricsAddr  string
	webhookLog   = &syncBuffer{}
	auditLogPath string
)

// auditPolicy logs pod and claim creations with their admission annotations (Metadata level).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create"]
    resources:
      - group: ""
        resources: ["pods", "persistentvolumeclaims"]
  - level: None
`

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if _, err := controlplane.FindBinaries(); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "control plane binaries missing under CI:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "SKIP e2e:", err)
		return 0
	}
	defer webhookprocess.RemoveBuilt() // the binary TestPosture ran
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	root, err := controlplane.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	opts := controlplane.AllComponents(3)
	auditDir, err := os.MkdirTemp("", "e2e-audit-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(auditDir)
	opts.AuditPolicyFile, opts.AuditLogPath = filepath.Join(auditDir, "policy.yaml"), filepath.Join(auditDir, "audit.log")
	auditLogPath = opts.AuditLogPath
	if err := os.WriteFile(opts.AuditPolicyFile, []byte(auditPolicy), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	opts.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "manifests", "base", "webhooks.yaml")}}
	cp, err = controlplane.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting control plane:", err)
		return 1
	}
	defer func() { _ = cp.Stop() }()

	policy, bindings, err := manifests.ScriptPodPolicy()
	if err == nil {
		err = cp.InstallPolicy(ctx, policy, bindings...)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "installing the script-pod policy:", err)
		return 1
	}
	if err := startWebhook(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "starting webhook:", err)
		return 1
	}
	return m.Run()
}

// startWebhook runs the real webhook process in-process on envtest's serving certificate,
// at the address the installed webhook configurations call.
func startWebhook(ctx context.Context) error {
	wio := cp.WebhookInstallOptions
	opts := app.DefaultOptions()
	opts.Host, opts.Port, opts.CertDir = wio.LocalServingHost, wio.LocalServingPort, wio.LocalServingCertDir
	metricsAddr = freeAddr()
	probeAddr := freeAddr()
	opts.MetricsAddr, opts.ProbeAddr = metricsAddr, probeAddr
	opts.Namespace = "octopus-workspace-webhook"
	log := zap.New(zap.WriteTo(webhookLog), zap.UseDevMode(false))
	mgr, err := app.NewManager(cp.Config, opts, log)
	if err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "webhook stopped:", err)
		}
	}()
	return controlplane.WaitOK(ctx, "http://"+probeAddr+"/readyz", 60*time.Second)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err) // loopback with port 0 always works on a test machine
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
