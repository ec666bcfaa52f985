// Package controlplane runs a real, local Kubernetes control plane for e2e tests and the demo:
// etcd and kube-apiserver through controller-runtime's envtest, plus (opt-in) kube-scheduler,
// kube-controller-manager and kwok as child processes, with kwok simulating the kubelets of N
// fake nodes. Pods therefore get scheduled, owned by controllers and reach Running exactly as the
// API sees it in a real cluster, without containers, Docker or a network.
//
// Why not plain envtest: envtest has no scheduler, no controllers and no nodes, so Deployments
// never produce pods, pods never get a node, and no namespace ever gets its default
// ServiceAccount. Admission webhooks for agent script pods have to be exercised against that
// full flow (ReplicaSet/Job controllers creating pods, pods binding to nodes).
//
// The binaries come from e2e/controlplane/build.sh (`make controlplane`); see FindBinaries.
// The package is Unix-only: children run in their own process group so Stop can kill them all.
// Nothing outlives the test binary: Stop shuts everything down in order, and if the binary dies
// without Stop (go test -timeout, panic, SIGKILL) a small watchdog process kills the processes and
// removes the temp dirs (see watchdogScript).
package controlplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	// DefaultNodes is how many kwok nodes Start creates when Options.Nodes is 0.
	DefaultNodes = 3
	// KwokNodeAnnotation marks a Node as fake; kwok only manages nodes carrying it, so a test may
	// still create other (never-ready) nodes of its own.
	KwokNodeAnnotation = "kwok.x-k8s.io/node"
	// DefaultStartTimeout bounds Start when Options.StartTimeout is 0. Generous because CI runners
	// are slow; a warm start on a laptop takes a few seconds.
	DefaultStartTimeout = 2 * time.Minute

	// kwokCIDR keeps fake pod IPs out of envtest's service range (10.0.0.0/24).
	kwokCIDR = "10.244.0.0/16"
	// kwokLeaseSeconds makes kwok renew a Lease per node (as kubelets do). The "fast" node stage
	// has no status heartbeat, so without leases the node-lifecycle controller would mark the nodes
	// NotReady/unreachable after --node-monitor-grace-period (50s) and start evicting pods.
	kwokLeaseSeconds = "40"
	pollInterval     = 100 * time.Millisecond
	stopGrace        = 5 * time.Second
)

// Options configures Start. The zero value runs only etcd and kube-apiserver (cheap tests).
type Options struct {
	// Nodes is the number of kwok nodes (node-1..node-N) created when WithKwok is set.
	// 0 means DefaultNodes; negative means none.
	Nodes int

	// WithScheduler runs kube-scheduler so pods get bound to nodes.
	WithScheduler bool
	// WithControllerManager runs kube-controller-manager with every controller (Deployments,
	// Jobs, namespace default ServiceAccounts, node lifecycle, garbage collection...). It also
	// re-enables the ServiceAccount admission plugin that envtest disables, as in a real cluster:
	// pods then need their namespace's ServiceAccount (see CreateNamespace).
	WithControllerManager bool
	// WithKwok runs kwok and creates the fake nodes; kwok makes them Ready and moves pods bound to
	// them to Running.
	WithKwok bool

	// AuditPolicyFile and AuditLogPath, when set, enable the apiserver's audit log backend
	// (--audit-policy-file, --audit-log-path, JSON lines, blocking mode so an event is on disk
	// before the request returns). Both are needed for events to be written.
	AuditPolicyFile string
	AuditLogPath    string

	// ExtraAPIServerArgs are extra kube-apiserver flags (name without "--" -> values); they
	// replace any value the harness or envtest would set for the same flag.
	ExtraAPIServerArgs map[string][]string
	// Extra*Args are appended verbatim ("--flag=value") to the respective command line.
	ExtraSchedulerArgs         []string
	ExtraControllerManagerArgs []string
	ExtraKwokArgs              []string

	// CRDInstallOptions are CRDs to install (envtest semantics) right after the apiserver is up.
	// Its WebhookOptions field is ignored: conversion webhooks use WebhookInstallOptions.
	CRDInstallOptions envtest.CRDInstallOptions
	// WebhookInstallOptions are passed to envtest: serving certs and a local host/port are
	// generated (see ControlPlane.WebhookInstallOptions) and the Mutating/Validating webhook
	// configurations are installed as the very last step of Start, once nodes and controllers are
	// ready, so a webhook whose server is not running yet cannot block the cluster's own start-up.
	WebhookInstallOptions envtest.WebhookInstallOptions

	// Scheme for Client; defaults to client-go's scheme (all built-in types).
	Scheme *runtime.Scheme
	// Binaries overrides FindBinaries.
	Binaries *Binaries
	// KeepLogs keeps LogDir after Stop. Logs are always kept when Start fails.
	KeepLogs bool
	// StartTimeout bounds the whole of Start; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
}

// AllComponents returns Options running every component with the given number of kwok nodes.
func AllComponents(nodes int) Options {
	return Options{Nodes: nodes, WithScheduler: true, WithControllerManager: true, WithKwok: true}
}

// ControlPlane is a running control plane. Stop it when done.
type ControlPlane struct {
	// Config is an admin (system:masters) REST config.
	Config *rest.Config
	// Client is an admin client built from Config and Options.Scheme.
	Client client.Client
	// KubeconfigPath is an admin kubeconfig file, for kubectl or humans while it runs.
	KubeconfigPath string
	// LogDir holds one log file per process (etcd.log, kube-apiserver.log, kube-scheduler.log,
	// kube-controller-manager.log, kwok.log).
	LogDir string
	// Nodes are the names of the kwok nodes.
	Nodes []string
	// WebhookInstallOptions are the prepared webhook options: LocalServingHost, LocalServingPort,
	// LocalServingCertDir (tls.crt/tls.key) and LocalServingCAData are filled in, the webhook
	// server under test should serve there.
	WebhookInstallOptions envtest.WebhookInstallOptions
	// CRDs are the CRDs installed from Options.CRDInstallOptions.
	CRDs []*apiextensionsv1.CustomResourceDefinition
	// Env is the underlying envtest environment. Prefer ControlPlane.AddUser over Env.AddUser:
	// envtest's is not safe for concurrent use.
	Env *envtest.Environment
	// Binaries are the executables in use.
	Binaries Binaries

	opts     Options
	workDir  string
	children []*child
	envLogs  []*os.File
	envUp    bool
	watchdog *child
	// watchdogPipe is the write end of the watchdog's stdin; only this process holds it.
	watchdogPipe *os.File
	userMu       sync.Mutex
	stopOnce     sync.Once
	stopErr      error
	mu           sync.Mutex

	// kube-apiserver restarts (restart.go): once stopped, envtest's process is gone and the one
	// StartAPIServer runs is apiChild, with the command line apiArgv.
	apiMu    sync.Mutex
	apiDown  bool
	apiArgv  []string
	apiChild *child
}

// Start brings up the control plane described by o and waits until it is usable: the apiserver
// serves, the kwok nodes are Ready without not-ready taints, and (with the controller manager)
// the default namespace has its default ServiceAccount. ctx (and Options.StartTimeout) bound
// Start only, the processes live until Stop; the etcd/apiserver phase is bounded by envtest's own
// per-process timeout instead, as envtest takes no context. On error everything started so far is stopped and the logs are kept (the error
// names LogDir and quotes the log tails).
func Start(ctx context.Context, o Options) (_ *ControlPlane, retErr error) {
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	if o.Scheme == nil {
		o.Scheme = clientgoscheme.Scheme
	}
	nodes := o.Nodes
	if nodes == 0 {
		nodes = DefaultNodes
	}
	if !o.WithKwok || nodes < 0 {
		nodes = 0
	}

	var bins Binaries
	if o.Binaries != nil {
		bins = *o.Binaries
	} else {
		var err error
		if bins, err = findBinaries(o.WithScheduler, o.WithControllerManager, o.WithKwok); err != nil {
			return nil, err
		}
	}

	cp := &ControlPlane{opts: o, Binaries: bins}
	for i := 1; i <= nodes; i++ {
		cp.Nodes = append(cp.Nodes, fmt.Sprintf("node-%d", i))
	}
	var err error
	if cp.workDir, err = os.MkdirTemp("", "controlplane-"); err != nil {
		return nil, err
	}
	if cp.LogDir, err = os.MkdirTemp("", "controlplane-logs-"); err != nil {
		_ = os.RemoveAll(cp.workDir)
		return nil, err
	}
	defer func() {
		if retErr != nil {
			cp.opts.KeepLogs = true
			_ = cp.Stop()
			retErr = fmt.Errorf("controlplane: %w\nlogs kept in %s%s", retErr, cp.LogDir, cp.logTails())
		}
	}()

	// Service-account keys: the token controller in kube-controller-manager signs legacy token
	// Secrets with the private key, the apiserver signs TokenRequests with it and verifies both
	// with the public key. envtest generates its own pair, but in a file name it keeps private;
	// owning the pair keeps the two processes provably in step.
	saKey, saPub, err := writeServiceAccountKeys(cp.workDir)
	if err != nil {
		return nil, err
	}

	// Webhook certs and port first: CRD conversion webhooks need them at CRD install time.
	cp.WebhookInstallOptions = o.WebhookInstallOptions
	if err := cp.WebhookInstallOptions.PrepWithoutInstalling(); err != nil {
		return nil, fmt.Errorf("preparing webhook serving certs: %w", err)
	}

	etcdLog, err := cp.openEnvLog("etcd")
	if err != nil {
		return nil, err
	}
	apiLog, err := cp.openEnvLog("kube-apiserver")
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		Scheme:                o.Scheme,
		UseExistingCluster:    ptr.To(false), // never silently test against USE_EXISTING_CLUSTER
		BinaryAssetsDirectory: filepath.Dir(bins.APIServer),
		// Per process, and envtest retries a failed start up to five times: keep it bounded.
		ControlPlaneStartTimeout: min(o.StartTimeout, time.Minute),
		ControlPlaneStopTimeout:  20 * time.Second,
	}
	env.ControlPlane.Etcd = &envtest.Etcd{Path: bins.Etcd, Out: etcdLog, Err: etcdLog}
	env.ControlPlane.APIServer = &envtest.APIServer{Path: bins.APIServer, Out: apiLog, Err: apiLog}
	args := env.ControlPlane.APIServer.Configure()
	args.Set("service-account-key-file", saPub)
	args.Set("service-account-signing-key-file", saKey)
	if o.WithControllerManager {
		// envtest disables the ServiceAccount admission plugin because nothing creates default
		// ServiceAccounts there; here the controller manager does, so behave like a real cluster.
		args.Disable("disable-admission-plugins")
	}
	if o.AuditPolicyFile != "" {
		args.Set("audit-policy-file", o.AuditPolicyFile)
	}
	if o.AuditLogPath != "" {
		args.Set("audit-log-path", o.AuditLogPath)
		args.Set("audit-log-format", "json")
		args.Set("audit-log-mode", "blocking")
	}
	for k, v := range o.ExtraAPIServerArgs {
		args.Set(k, v...)
	}
	cp.Env = env
	cp.envUp = true // env.Stop is safe on a partially started environment
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}
	cp.Config = env.Config
	if cp.Client, err = client.New(cp.Config, client.Options{Scheme: o.Scheme}); err != nil {
		return nil, err
	}
	cp.KubeconfigPath = filepath.Join(cp.workDir, "admin.kubeconfig")
	if err := os.WriteFile(cp.KubeconfigPath, env.KubeConfig, 0o600); err != nil {
		return nil, err
	}
	caFile := filepath.Join(cp.workDir, "apiserver-ca.crt")
	if err := os.WriteFile(caFile, env.ControlPlane.APIServer.SecureServing.CA, 0o600); err != nil {
		return nil, err
	}

	// Everything below only needs the apiserver, so run it concurrently.
	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
	)
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				emu.Unlock()
			}
		}()
	}
	if o.WithScheduler {
		run(binScheduler, func() error {
			kc, err := cp.componentKubeconfig("system:kube-scheduler")
			if err != nil {
				return err
			}
			return cp.startChild(binScheduler, bins.Scheduler, append([]string{
				"--kubeconfig=" + kc,
				"--authentication-kubeconfig=" + kc,
				"--authorization-kubeconfig=" + kc,
				"--leader-elect=false",
				"--secure-port=0", // no serving endpoint needed; readiness is judged on the API
				"--bind-address=127.0.0.1",
			}, o.ExtraSchedulerArgs...))
		})
	}
	if o.WithControllerManager {
		run(binControllerManager, func() error {
			kc, err := cp.componentKubeconfig("system:kube-controller-manager")
			if err != nil {
				return err
			}
			return cp.startChild(binControllerManager, bins.ControllerManager, append([]string{
				"--kubeconfig=" + kc,
				"--authentication-kubeconfig=" + kc,
				"--authorization-kubeconfig=" + kc,
				"--leader-elect=false",
				// All default controllers: node-lifecycle (removes the not-ready taint once kwok
				// reports Ready), serviceaccount (default SAs), deployment, replicaset, job, gc...
				"--controllers=*",
				"--use-service-account-credentials=false",
				"--service-account-private-key-file=" + saKey,
				"--root-ca-file=" + caFile,
				"--secure-port=0",
				"--bind-address=127.0.0.1",
			}, o.ExtraControllerManagerArgs...))
		})
	}
	if o.WithKwok {
		run(binKwok, func() error {
			kc, err := cp.componentKubeconfig("kwok-controller")
			if err != nil {
				return err
			}
			a := []string{
				"--kubeconfig=" + kc,
				"--manage-all-nodes=false",
				"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=fake",
				"--node-lease-duration-seconds=" + kwokLeaseSeconds,
				"--cidr=" + kwokCIDR,
			}
			for _, s := range bins.KwokStages {
				a = append(a, "--config="+s)
			}
			return cp.startChild(binKwok, bins.Kwok, append(a, o.ExtraKwokArgs...))
		})
		for _, n := range cp.Nodes {
			run("create node "+n, func() error { return cp.Client.Create(ctx, fakeNode(n)) })
		}
	}
	if len(o.CRDInstallOptions.Paths) > 0 || len(o.CRDInstallOptions.CRDs) > 0 {
		run("install CRDs", func() error {
			crdOpts := o.CRDInstallOptions
			if crdOpts.Scheme == nil {
				crdOpts.Scheme = o.Scheme
			}
			crdOpts.WebhookOptions = cp.WebhookInstallOptions
			crds, err := envtest.InstallCRDs(cp.Config, crdOpts)
			cp.CRDs = crds
			return err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := cp.startWatchdog(); err != nil {
		return nil, fmt.Errorf("starting watchdog: %w", err)
	}

	if err := cp.waitReady(ctx); err != nil {
		return nil, err
	}

	wh := &cp.WebhookInstallOptions
	if len(wh.MutatingWebhooks) > 0 || len(wh.ValidatingWebhooks) > 0 {
		if err := wh.Install(cp.Config); err != nil {
			return nil, fmt.Errorf("installing webhook configurations: %w", err)
		}
	}
	return cp, nil
}

// Stop kills the child processes (whole process groups: SIGTERM, then SIGKILL after a grace
// period), stops kube-apiserver and etcd, and removes the temporary files, LogDir included unless
// Options.KeepLogs. Safe to call more than once.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		var errs []error
		if cp.watchdog != nil { // an orderly stop: the watchdog must not fire
			_ = cp.watchdog.cmd.Process.Kill()
			<-cp.watchdog.done
			_ = cp.watchdogPipe.Close()
		}
		cp.mu.Lock()
		children := cp.children
		cp.mu.Unlock()
		cp.apiMu.Lock()
		if cp.apiChild != nil { // a restarted kube-apiserver: stopped before etcd, like envtest's
			children = append(children, cp.apiChild)
		}
		cp.apiMu.Unlock()
		var wg sync.WaitGroup
		for _, c := range children {
			wg.Add(1)
			go func() { defer wg.Done(); c.stop() }()
		}
		wg.Wait()
		if cp.envUp {
			if err := cp.Env.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping etcd/kube-apiserver: %w", err))
			}
		} else {
			// Env never started: only the webhook cert dir needs removing.
			_ = cp.WebhookInstallOptions.Cleanup()
		}
		for _, f := range cp.envLogs {
			_ = f.Close()
		}
		// envtest leaks the apiserver's cert dir when a start attempt fails (it is reused, and then
		// not marked for cleaning, on retry); both dirs are always envtest-made temp dirs here.
		if cp.Env != nil {
			_ = os.RemoveAll(cp.Env.ControlPlane.APIServer.CertDir)
			_ = os.RemoveAll(cp.Env.ControlPlane.Etcd.DataDir)
		}
		if cp.WebhookInstallOptions.LocalServingCertDir != "" {
			_ = os.RemoveAll(cp.WebhookInstallOptions.LocalServingCertDir)
		}
		if err := os.RemoveAll(cp.workDir); err != nil {
			errs = append(errs, err)
		}
		if !cp.opts.KeepLogs {
			if err := os.RemoveAll(cp.LogDir); err != nil {
				errs = append(errs, err)
			}
		}
		cp.stopErr = errors.Join(errs...)
	})
	return cp.stopErr
}

// Alive returns an error naming any child process (scheduler, controller manager, kwok) that has
// exited since Start; useful in a test's failure path to tell a harness crash from a real failure.
func (cp *ControlPlane) Alive() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var errs []error
	for _, c := range cp.children {
		if err := c.exited(); err != nil {
			c.diedEarly = true
			errs = append(errs, err)
		}
	}
	cp.apiMu.Lock()
	if c := cp.apiChild; c != nil && !cp.apiDown {
		errs = append(errs, c.exited())
	}
	cp.apiMu.Unlock()
	return errors.Join(errs...)
}

// PIDs returns the process ids of the control plane's processes by name: the ones this
// package started and, on Linux, the kube-apiserver and etcd envtest started (found as the
// watchdog finds them).
func (cp *ControlPlane) PIDs() map[string]int {
	cp.mu.Lock()
	out := map[string]int{}
	for _, c := range cp.children {
		out[c.name] = c.cmd.Process.Pid
	}
	cp.mu.Unlock()
	if cp.Env != nil && cp.Env.ControlPlane.APIServer != nil && cp.Env.ControlPlane.Etcd != nil {
		for name, dir := range map[string]string{"kube-apiserver": cp.Env.ControlPlane.APIServer.CertDir, "etcd": cp.Env.ControlPlane.Etcd.DataDir} {
			if pids := envtestPIDs(dir); len(pids) == 1 {
				out[name] = pids[0]
			}
		}
	}
	return out
}

// CreateNamespace creates the namespace (an existing one is fine) and, when the controller manager
// runs, waits for its "default" ServiceAccount: with the ServiceAccount admission plugin on, pods
// are rejected until it exists.
func (cp *ControlPlane) CreateNamespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := cp.Client.Create(ctx, ns); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
			return nil, err
		}
	}
	if cp.opts.WithControllerManager {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
		}
		if err := cp.poll(ctx, func(ctx context.Context) (bool, string, error) {
			return cp.hasDefaultServiceAccount(ctx, name)
		}); err != nil {
			return nil, fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	return ns, nil
}

// waitReady waits for the nodes to be Ready and schedulable and for the default ServiceAccount.
func (cp *ControlPlane) waitReady(ctx context.Context) error {
	return cp.poll(ctx, func(ctx context.Context) (bool, string, error) {
		if len(cp.Nodes) > 0 {
			var list corev1.NodeList
			if err := cp.Client.List(ctx, &list); err != nil {
				return false, "", err
			}
			byName := map[string]*corev1.Node{}
			for i := range list.Items {
				byName[list.Items[i].Name] = &list.Items[i]
			}
			for _, n := range cp.Nodes {
				node, ok := byName[n]
				if !ok {
					return false, "node " + n + " missing", nil
				}
				if !nodeReady(node) {
					return false, "node " + n + " not Ready (kwok)", nil
				}
				for _, t := range node.Spec.Taints {
					if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
						return false, "node " + n + " still tainted " + t.Key + " (node-lifecycle controller)", nil
					}
				}
			}
		}
		if cp.opts.WithControllerManager {
			return cp.hasDefaultServiceAccount(ctx, metav1.NamespaceDefault)
		}
		return true, "", nil
	})
}

func (cp *ControlPlane) hasDefaultServiceAccount(ctx context.Context, ns string) (bool, string, error) {
	var sa corev1.ServiceAccount
	err := cp.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "default"}, &sa)
	if apierrors.IsNotFound(err) {
		return false, "ServiceAccount " + ns + "/default not created yet (controller manager)", nil
	}
	return err == nil, "", err
}

// poll runs cond until it is true, a child process dies, or ctx ends; the error says what was
// still awaited.
func (cp *ControlPlane) poll(ctx context.Context, cond func(context.Context) (bool, string, error)) error {
	waiting := "first check"
	var lastErr error
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if err := cp.Alive(); err != nil {
			return err
		}
		ok, what, err := cond(ctx)
		if err == nil && ok {
			return nil
		}
		if err != nil {
			lastErr = err
		} else {
			waiting = what
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("%w while waiting for: %s (last error: %v)", ctx.Err(), waiting, lastErr)
			}
			return fmt.Errorf("%w while waiting for: %s", ctx.Err(), waiting)
		case <-t.C:
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// fakeNode builds a Node the kwok way, minus kwok's usual NoSchedule taint so that ordinary pods
// (like agent script pods) schedule without tolerations. Nodes may carry status on create, so the
// capacity is set here and kwok keeps it.
func fakeNode(name string) *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Annotations: map[string]string{
				KwokNodeAnnotation:             "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
			Labels: map[string]string{
				corev1.LabelHostname:   name,
				corev1.LabelOSStable:   "linux",
				corev1.LabelArchStable: "amd64",
				"type":                 "kwok",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    res,
			Allocatable: res.DeepCopy(),
			NodeInfo: corev1.NodeSystemInfo{
				Architecture:    "amd64",
				OperatingSystem: "linux",
				KubeletVersion:  KubernetesVersion,
			},
		},
	}
}

// AddUser provisions a client-certificate user with the given name and groups (e.g. a
// non-admin identity, to test what the webhook does for it; grant it RBAC yourself) and returns a
// REST config for it. Safe for concurrent use.
func (cp *ControlPlane) AddUser(user envtest.User) (*rest.Config, error) {
	u, err := cp.addUser(user, &rest.Config{QPS: 200, Burst: 400})
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}

// addUser serialises envtest's AddUser, whose certificate serial counter is unsynchronised.
func (cp *ControlPlane) addUser(user envtest.User, base *rest.Config) (*envtest.AuthenticatedUser, error) {
	cp.userMu.Lock()
	defer cp.userMu.Unlock()
	return cp.Env.AddUser(user, base)
}

// componentKubeconfig provisions a client-certificate user named after the component (so audit
// logs show who acted) in system:masters, and writes its kubeconfig.
func (cp *ControlPlane) componentKubeconfig(user string) (string, error) {
	u, err := cp.addUser(envtest.User{Name: user, Groups: []string{"system:masters"}},
		&rest.Config{QPS: 200, Burst: 400})
	if err != nil {
		return "", err
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	p := filepath.Join(cp.workDir, strings.ReplaceAll(user, ":", "_")+".kubeconfig")
	return p, os.WriteFile(p, kc, 0o600)
}

func (cp *ControlPlane) openEnvLog(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(cp.LogDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cp.envLogs = append(cp.envLogs, f)
	return f, nil
}

// logTails quotes the end of the log files, for Start's error: only the logs of children that
// died if any did (the others just show being shut down), else every log.
func (cp *ControlPlane) logTails() string {
	names := []string{"etcd", "kube-apiserver", binScheduler, binControllerManager, binKwok}
	lines := 10
	cp.mu.Lock()
	var dead []string
	for _, c := range cp.children {
		if c.diedEarly {
			dead = append(dead, c.name)
		}
	}
	cp.mu.Unlock()
	if len(dead) > 0 {
		names, lines = dead, 25
	}
	var b strings.Builder
	for _, name := range names {
		p := filepath.Join(cp.LogDir, name+".log")
		tail, err := tailFile(p, lines)
		if err != nil || tail == "" {
			continue
		}
		fmt.Fprintf(&b, "\n--- tail of %s ---\n%s", p, tail)
	}
	return b.String()
}

func tailFile(path string, lines int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	const maxBytes = 8 << 10
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	off := max(fi.Size()-maxBytes, 0)
	data, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return "", err
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if off > 0 && len(all) > 1 {
		all = all[1:] // first line is probably cut
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n"), nil
}

func writeServiceAccountKeys(dir string) (keyPath, pubPath string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	keyPath = filepath.Join(dir, "sa.key")
	pubPath = filepath.Join(dir, "sa.pub")
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return keyPath, pubPath, os.WriteFile(pubPath, pubPEM, 0o600)
}

// watchdogScript blocks reading its stdin, a pipe whose write end only this process holds. It
// returns only when this process dies without calling Stop (go test -timeout, a panic, SIGKILL,
// Ctrl-C of the demo): the kernel closes the pipe, and the script SIGKILLs the "pid=N" arguments
// and removes the "/dir" arguments. Pdeathsig covers our own children on Linux, but not envtest's
// etcd and kube-apiserver, which would otherwise outlive a killed test binary (and the apiserver,
// its etcd gone, then hangs in graceful shutdown forever). Plain positive pids only: none of the
// processes forks, and a pid is never a group or "all processes" wildcard.
const watchdogScript = `read -r _
for a; do case "$a" in pid=[1-9]*) kill -9 "${a#pid=}" 2>/dev/null;; esac; done
for a; do case "$a" in /?*) rm -rf -- "$a";; esac; done`

func (cp *ControlPlane) startWatchdog() error {
	args := []string{"-c", watchdogScript, "controlplane-watchdog"}
	addPID := func(pid int) {
		if pid > 1 {
			args = append(args, "pid="+strconv.Itoa(pid))
		}
	}
	cp.mu.Lock()
	for _, c := range cp.children {
		addPID(c.cmd.Process.Pid)
	}
	cp.mu.Unlock()
	for _, pid := range envtestPIDs(cp.Env.ControlPlane.APIServer.CertDir, cp.Env.ControlPlane.Etcd.DataDir) {
		addPID(pid)
	}
	dirs := []string{cp.workDir, cp.Env.ControlPlane.APIServer.CertDir, cp.Env.ControlPlane.Etcd.DataDir,
		cp.WebhookInstallOptions.LocalServingCertDir, cp.Env.WebhookInstallOptions.LocalServingCertDir}
	if !cp.opts.KeepLogs {
		dirs = append(dirs, cp.LogDir)
	}
	tmp := filepath.Clean(os.TempDir()) + string(filepath.Separator)
	for _, d := range dirs {
		// Only temp dirs this package or envtest made (os.MkdirTemp("", ...)).
		if d = filepath.Clean(d); strings.HasPrefix(d, tmp) && len(d) > len(tmp) {
			args = append(args, d)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command("/bin/sh", args...)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not in the terminal's group: Ctrl-C must not kill it first
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return err
	}
	_ = r.Close()
	c := &child{name: "watchdog", cmd: cmd, done: make(chan struct{})}
	go func() { c.waitErr = cmd.Wait(); close(c.done) }()
	cp.watchdog, cp.watchdogPipe = c, w
	return nil
}

// envtestPIDs finds the etcd and kube-apiserver envtest started (direct children of this process
// whose command line names their private dirs). Linux only (/proc); elsewhere nil, and those two
// are then not covered by the watchdog.
func envtestPIDs(dirs ...string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := strconv.Itoa(os.Getpid())
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(string(stat[i+1:])); len(f) < 2 || f[1] != self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, d := range dirs {
			if d != "" && bytes.Contains(cmdline, []byte("="+d+"\x00")) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// child is one process started by this package.
type child struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error // valid once done is closed
	// diedEarly: exited before Stop (guarded by ControlPlane.mu).
	diedEarly bool
}

// startChild starts a process in its own process group (so Stop can kill anything it forks) with
// stdout and stderr in LogDir/<name>.log. It is not tied to Start's ctx: the process must outlive
// Start.
func (cp *ControlPlane) startChild(name, path string, args []string) error {
	logFile, err := os.OpenFile(filepath.Join(cp.LogDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "+ %s %s\n", path, strings.Join(args, " "))
	cmd := exec.Command(path, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return err
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	cp.mu.Lock()
	cp.children = append(cp.children, c)
	cp.mu.Unlock()
	go func() {
		c.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(c.done)
	}()
	return nil
}

func (c *child) exited() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s (pid %d) exited: %v", c.name, c.cmd.Process.Pid, c.waitErr)
	default:
		return nil
	}
}

func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	pgid := c.cmd.Process.Pid // Setpgid: the group id is the leader's pid
	if pgid <= 1 {
		return // never signal "every process" (-1) or our own group (0)
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
	}
}
