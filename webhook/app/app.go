// Package app assembles the webhook process: manager, scoped cache, webhook server, probes
// and handlers. cmd/workspace-webhook parses flags and calls Run; tests and the demo call Run
// in-process against a real control plane.
package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/octopus-agent-tools/workspace-webhook/certs"
	wh "github.com/octopus-agent-tools/workspace-webhook/webhook"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
)

// Run serves the webhook until ctx is done. In self-managed mode the certificates are
// bootstrapped first: the webhook server's certificate watcher needs the files at start.
func Run(ctx context.Context, cfg *rest.Config, opts Options, log logr.Logger) error {
	mgr, caches, err := newManager(cfg, opts, log)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	synced := make(chan struct{})
	go syncDeadline(ctx, stop, caches, opts.CacheSyncTimeout, synced, log)
	if opts.CertMode == CertModeSelfManaged {
		cm, err := newCertManager(cfg, opts, log)
		if err != nil {
			return err
		}
		go func() { _ = cm.Start(ctx) }() // retries with back-off until ctx ends
		if err := cm.WaitReady(ctx); err != nil {
			return fmt.Errorf("waiting for self-managed certificates: %w", err)
		}
	}
	return runManager(ctx, mgr, synced)
}

// runManager runs mgr until ctx ends, and returns why it ended. controller-runtime v0.24's
// manager never returns from Start when it is stopped before its caches have synced (its
// runnableGroup.Start keeps selecting on the cancelled context, at full CPU:
// kubernetes-sigs/controller-runtime#3440): then Run must not wait for it, so that the
// process exits with the reason (--cache-sync-timeout, or a SIGTERM during start-up).
func runManager(ctx context.Context, mgr interface{ Start(context.Context) error }, synced <-chan struct{}) error {
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case <-synced:
			err = <-done // started: it stops gracefully
		default:
		}
	}
	if err != nil {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
		return cause
	}
	return nil
}

// newCertManager keeps our CA and serving certificate. It reads and writes one Secret and
// two webhook configurations by name with a live client: nothing of it is cached or listed.
func newCertManager(cfg *rest.Config, opts Options, log logr.Logger) (*certs.Manager, error) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	return certs.NewManager(c, certs.Options{
		Namespace: opts.Namespace, SecretName: opts.SelfManagedSecret, ServiceName: opts.ServiceName,
		ExtraDNSNames:             opts.ExtraDNSNames,
		MutatingWebhookConfigName: opts.MutatingConfigName, ValidatingWebhookConfigName: opts.ValidatingConfigName,
		CertDir: opts.CertDir, CertName: opts.CertName, KeyName: opts.KeyName,
		CheckInterval: opts.CertCheckInterval, Logger: log.WithName("certs"),
	})
}

// NewManager builds the manager with every handler and probe registered, not yet started.
func NewManager(cfg *rest.Config, opts Options, log logr.Logger) (manager.Manager, error) {
	mgr, _, err := newManager(cfg, opts, log)
	return mgr, err
}

func newManager(cfg *rest.Config, opts Options, log logr.Logger) (manager.Manager, []cache.Cache, error) {
	if err := opts.Validate(); err != nil {
		return nil, nil, err
	}
	// Every client of the manager and of the second cache shares this transport: watches
	// follows their watch streams, so that facts are read live while one is down.
	watches := agent.NewWatches()
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(watches.Wrap)
	minTLS, _ := opts.tlsVersion()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, nil, err
	}
	tlsOpts := []func(*tls.Config){func(c *tls.Config) {
		c.MinVersion = minTLS
		if !opts.EnableHTTP2 {
			c.NextProtos = []string{"http/1.1"}
		}
	}}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress: opts.ProbeAddr,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: opts.Host, Port: opts.Port, CertDir: opts.CertDir, CertName: opts.CertName, KeyName: opts.KeyName, TLSOpts: tlsOpts,
		}),
		Cache: cache.Options{
			ByObject:         cacheByObject(),
			DefaultTransform: cache.TransformStripManagedFields(),
		},
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: false}},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("creating manager: %w", err)
	}
	metrics, err := audit.NewMetrics(nil)
	if err != nil {
		return nil, nil, err
	}
	// Chart v1/v2 Tentacle pods need a second label selector, so a second cache.
	legacyPods, err := cache.New(cfg, cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		ByObject: agent.LegacyPodsByObject(), DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("creating the chart v1/v2 Tentacle pod cache: %w", err)
	}
	// As a cache runnable, the manager waits for it to sync like its own cache.
	if err := mgr.Add(syncedCache{legacyPods}); err != nil {
		return nil, nil, err
	}
	// Start the informers with the manager, not on the first request, so readiness means warm.
	for _, inf := range []struct {
		resource string
		cache    cache.Cache
		obj      client.Object
	}{
		{"pods", mgr.GetCache(), &corev1.Pod{}},
		{"pods-chart-v1-v2", legacyPods, &corev1.Pod{}},
		{"persistentvolumeclaims", mgr.GetCache(), &corev1.PersistentVolumeClaim{}},
		{"storageclasses", mgr.GetCache(), &storagev1.StorageClass{}},
		{"nodes", mgr.GetCache(), &corev1.Node{}},
		{"namespaces", mgr.GetCache(), enforcement.NamespaceObject()},
	} {
		if err := watchInformer(inf.cache, inf.obj, metrics.CacheLastEvent.WithLabelValues(inf.resource)); err != nil {
			return nil, nil, fmt.Errorf("starting informer for %s: %w", inf.resource, err)
		}
	}
	modes := &enforcement.Namespaces{Global: opts.Enforcement, Cache: mgr.GetCache(), Log: log.WithName("enforcement")}
	if err := logInvalidLabels(mgr.GetCache(), modes); err != nil {
		return nil, nil, err
	}
	log.Info("enforcement mode (a namespace's label overrides it)", "mode", opts.Enforcement, "namespaceLabel", enforcement.Label)
	watches.OnChange = watchLogger(log.WithName("watches"), metrics.WatchDown)
	caches := []cache.Cache{mgr.GetCache(), legacyPods}
	recorder := &audit.Recorder{Log: log.WithName("decision"), Events: mgr.GetEventRecorder("workspace-webhook"), Metrics: metrics}
	decoder := admission.NewDecoder(mgr.GetScheme())
	// Identical live reads in flight share one request (a burst of one agent's script pods).
	live := &agent.SharedReads{Reader: mgr.GetAPIReader()}
	finder := &agent.Finder{Cache: mgr.GetClient(), LegacyPods: legacyPods, Live: live, MountPath: opts.Workspace.MountPath, Watches: watches}

	srv := mgr.GetWebhookServer()
	srv.Register(MutateTentaclePath, wh.NewReviewServer(&wh.TentacleMutator{
		Finder: finder, MountPath: opts.Workspace.MountPath, Recorder: recorder, Modes: modes,
	}, true, log.WithName("admission")))
	claims := &wh.ClaimJudge{Cache: mgr.GetClient(), Live: mgr.GetAPIReader(), DenyUnknown: opts.DenyUnknownCapability, DenyUnbindable: opts.DenyUnbindableClaims, Metrics: metrics}
	if opts.CapabilityOverrides != "" {
		watcher := storage.NewOverrideWatcher(opts.CapabilityOverrides, storage.WatcherOptions{
			OnError: func(err error) { log.Error(err, "capability override file rejected; keeping the last good one") },
		})
		// A bad file at start-up is fatal: better to fail the rollout than to judge wrongly.
		if err := watcher.Reload(); err != nil {
			return nil, nil, fmt.Errorf("--capability-overrides: %w", err)
		}
		if err := mgr.Add(watcher); err != nil {
			return nil, nil, err
		}
		claims.Overrides = watcher.Current
	}
	srv.Register(MutatePodPath, wh.NewReviewServer(&wh.PodMutator{
		Finder: finder, Config: opts.Workspace, ScriptPodLabel: opts.ScriptPodLabel, Claims: claims, Recorder: recorder, Modes: modes,
	}, true, log.WithName("admission")))
	srv.Register(ValidatePodPath, wh.NewReviewServer(&wh.FinalStateValidator{
		ScriptPodLabel: opts.ScriptPodLabel, Recorder: recorder, Modes: modes,
	}, true, log.WithName("admission")))
	excluded := map[string]bool{"kube-system": true, "kube-node-lease": true}
	if opts.Namespace != "" {
		excluded[opts.Namespace] = true
	}
	srv.Register(ValidatePVCPath, wh.NewReviewServer(&wh.ClaimValidator{
		Decoder: decoder, Claims: claims, ExcludedNamespaces: excluded, Recorder: recorder, Modes: modes,
	}, false, log.WithName("admission")))

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, nil, err
	}
	if err := mgr.AddReadyzCheck("webhook-server", srv.StartedChecker()); err != nil {
		return nil, nil, err
	}
	if err := mgr.AddReadyzCheck("informer-caches", cacheSynced(caches...)); err != nil {
		return nil, nil, err
	}
	// Ready only while the certificate being served is valid and is the one on disk.
	serving := certs.ServingCertChecker(opts.CertDir, opts.CertName, opts.KeyName, net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)))
	if err := mgr.AddReadyzCheck("serving-certificate", serving); err != nil {
		return nil, nil, err
	}
	return mgr, caches, nil
}

// cacheByObject scopes the manager's cache: the agents' objects (agent.CacheByObject) and
// the namespaces that carry the enforcement label, metadata only.
func cacheByObject() map[client.Object]cache.ByObject {
	byObject := agent.CacheByObject()
	ns, scope := enforcement.CacheByObject()
	byObject[ns] = scope
	return byObject
}

// logInvalidLabels logs each namespace whose enforcement label names no mode, when it appears.
func logInvalidLabels(c cache.Cache, modes *enforcement.Namespaces) error {
	inf, err := c.GetInformer(context.Background(), enforcement.NamespaceObject(), cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	_, err = inf.AddEventHandler(enforcement.LogInvalidLabels(modes.Log, modes.Global))
	return err
}

// cacheSynced fails readiness until every informer of every cache has synced.
func cacheSynced(caches ...cache.Cache) healthz.Checker {
	return func(r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		for _, c := range caches {
			if !c.WaitForCacheSync(ctx) {
				return fmt.Errorf("informer caches not synced")
			}
		}
		return nil
	}
}

// watchInformer starts the informer for obj now (not on the first request) and keeps the
// gauge at the time of its last event, so a stalled watch shows in the metrics.
func watchInformer(c cache.Cache, obj client.Object, gauge interface{ SetToCurrentTime() }) error {
	inf, err := c.GetInformer(context.Background(), obj, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	touch := func() { gauge.SetToCurrentTime() }
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { touch() }, UpdateFunc: func(any, any) { touch() }, DeleteFunc: func(any) { touch() },
	})
	return err
}

// watchLogger reports the watches going down and coming back: in the gauge each time, in the
// log at info when they were down a second or more (a watch also ends, and is reopened within
// milliseconds, every few minutes as a matter of course), else at debug level.
func watchLogger(log logr.Logger, gauge interface{ Set(float64) }) func(bool, []string) {
	var mu sync.Mutex
	var downSince time.Time
	return func(fresh bool, down []string) {
		mu.Lock()
		defer mu.Unlock()
		if !fresh {
			gauge.Set(1)
			downSince = time.Now()
			log.V(1).Info("a watch of the API server is down or reconnecting; facts are read live until it is back", "watches", down)
			return
		}
		gauge.Set(0)
		d := time.Since(downSince)
		l := log.V(1)
		if d >= time.Second {
			l = log
		}
		l.Info("watches of the API server are current again; facts come from the caches", "downFor", d.Round(time.Millisecond).String())
	}
}

// syncDeadline stops the process when the caches have not synced within timeout of start-up
// (--cache-sync-timeout): a webhook that cannot read its facts should exit and say why, to be
// restarted, not stay unready for ever. It closes synced once they all have.
func syncDeadline(ctx context.Context, stop context.CancelCauseFunc, caches []cache.Cache, timeout time.Duration, synced chan<- struct{}, log logr.Logger) {
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, c := range caches {
		if !c.WaitForCacheSync(waitCtx) {
			if ctx.Err() == nil {
				stop(fmt.Errorf("informer caches did not sync within --cache-sync-timeout=%s; check that the API server is reachable and this webhook's RBAC lets it list and watch pods, claims, StorageClasses, nodes and namespaces", timeout))
			}
			return
		}
	}
	close(synced)
	log.Info("informer caches synced")
}

// syncedCache makes the manager treat a cache of ours like its own: started with the caches,
// waited for before anything that reads it.
type syncedCache struct{ cache.Cache }

func (c syncedCache) GetCache() cache.Cache { return c.Cache }
