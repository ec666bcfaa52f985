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
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
)

// Run serves the webhook until ctx is done. In self-managed mode the certificates are
// bootstrapped first: the webhook server's certificate watcher needs the files at start.
func Run(ctx context.Context, cfg *rest.Config, opts Options, log logr.Logger) error {
	mgr, err := NewManager(cfg, opts, log)
	if err != nil {
		return err
	}
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
	return mgr.Start(ctx)
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
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	minTLS, _ := opts.tlsVersion()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
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
			ByObject:         agent.CacheByObject(),
			DefaultTransform: cache.TransformStripManagedFields(),
		},
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: false}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	metrics, err := audit.NewMetrics(nil)
	if err != nil {
		return nil, err
	}
	// Start the informers with the manager, not on the first request, so readiness means warm.
	for resource, obj := range map[string]client.Object{
		"pods": &corev1.Pod{}, "persistentvolumeclaims": &corev1.PersistentVolumeClaim{}, "storageclasses": &storagev1.StorageClass{},
	} {
		inf, err := mgr.GetCache().GetInformer(context.Background(), obj)
		if err != nil {
			return nil, fmt.Errorf("starting informer for %s: %w", resource, err)
		}
		gauge := metrics.CacheLastEvent.WithLabelValues(resource)
		touch := func() { gauge.SetToCurrentTime() }
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { touch() }, UpdateFunc: func(any, any) { touch() }, DeleteFunc: func(any) { touch() },
		}); err != nil {
			return nil, fmt.Errorf("watching informer for %s: %w", resource, err)
		}
	}
	recorder := &audit.Recorder{Log: log.WithName("decision"), Events: mgr.GetEventRecorder("workspace-webhook"), Metrics: metrics}
	decoder := admission.NewDecoder(mgr.GetScheme())
	finder := &agent.Finder{Cache: mgr.GetClient(), Live: mgr.GetAPIReader(), MountPath: opts.Workspace.MountPath}

	srv := mgr.GetWebhookServer()
	srv.Register(MutatePodPath, wh.NewReviewServer(&wh.PodMutator{
		Finder: finder, Config: opts.Workspace, ScriptPodLabel: opts.ScriptPodLabel, Recorder: recorder,
	}, true, log.WithName("admission")))
	claims := &wh.ClaimJudge{Cache: mgr.GetClient(), Live: mgr.GetAPIReader(), DenyUnknown: opts.DenyUnknownCapability, Metrics: metrics}
	if opts.CapabilityOverrides != "" {
		watcher := storage.NewOverrideWatcher(opts.CapabilityOverrides, storage.WatcherOptions{
			OnError: func(err error) { log.Error(err, "capability override file rejected; keeping the last good one") },
		})
		// A bad file at start-up is fatal: better to fail the rollout than to judge wrongly.
		if err := watcher.Reload(); err != nil {
			return nil, fmt.Errorf("--capability-overrides: %w", err)
		}
		if err := mgr.Add(watcher); err != nil {
			return nil, err
		}
		claims.Overrides = watcher.Current
	}
	srv.Register(ValidatePodPath, wh.NewReviewServer(&wh.PodValidator{
		Finder: finder, ScriptPodLabel: opts.ScriptPodLabel, Claims: claims, Recorder: recorder,
	}, true, log.WithName("admission")))
	excluded := map[string]bool{"kube-system": true, "kube-node-lease": true}
	if opts.Namespace != "" {
		excluded[opts.Namespace] = true
	}
	srv.Register(ValidatePVCPath, wh.NewReviewServer(&wh.ClaimValidator{
		Decoder: decoder, Claims: claims, ExcludedNamespaces: excluded, Recorder: recorder,
	}, false, log.WithName("admission")))

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("webhook-server", srv.StartedChecker()); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("informer-caches", cacheSynced(mgr.GetCache())); err != nil {
		return nil, err
	}
	// Ready only while the certificate being served is valid and is the one on disk.
	serving := certs.ServingCertChecker(opts.CertDir, opts.CertName, opts.KeyName, net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)))
	if err := mgr.AddReadyzCheck("serving-certificate", serving); err != nil {
		return nil, err
	}
	return mgr, nil
}

// cacheSynced fails readiness until every informer has synced.
func cacheSynced(c cache.Cache) healthz.Checker {
	return func(r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return fmt.Errorf("informer caches not synced")
		}
		return nil
	}
}
