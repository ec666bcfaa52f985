package app

import (
	"crypto/tls"
	"flag"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

// Webhook paths served; the webhook configurations in manifests/ point at them.
const (
	MutatePodPath = "/mutate-script-pod"
	// ValidatePodPath answers with the final-state check; no shipped configuration calls it
	// (the ValidatingAdmissionPolicy does that check), kept for configurations of earlier releases.
	ValidatePodPath = "/validate-script-pod"
	ValidatePVCPath = "/validate-workspace-claim"
	// MutateTentaclePath places new Tentacle pods on the node holding their RWO workspace.
	MutateTentaclePath = "/mutate-tentacle-pod"
)

// Options configure one webhook process.
type Options struct {
	Host, CertDir, CertName, KeyName string
	Port                             int
	MetricsAddr, ProbeAddr           string
	TLSMinVersion                    string // "1.2" or "1.3"
	EnableHTTP2                      bool

	ScriptPodLabel string
	Workspace      workspace.Config

	// Namespace is the webhook's own namespace (never validated).
	Namespace string

	// CertMode is "files" (certificates mounted from a Secret, e.g. by cert-manager) or
	// "self-managed" (the webhook keeps its own CA and serving certificate, package certs).
	CertMode string
	// SelfManagedSecret, ServiceName and the configuration names are used in self-managed mode.
	SelfManagedSecret    string
	ServiceName          string
	MutatingConfigName   string
	ValidatingConfigName string
	// ExtraDNSNames are added to the self-managed serving certificate (webhooks reached by URL).
	ExtraDNSNames []string
	// CertCheckInterval is how often the self-managed mode checks its certificates.
	CertCheckInterval time.Duration

	// CapabilityOverrides is the admin's provisioner override file ("" for none); reloaded on change.
	CapabilityOverrides string
	// DenyUnknownCapability refuses ReadWriteMany claims on classes of unknown capability.
	DenyUnknownCapability bool
	// DenyUnbindableClaims refuses claims that can only bind to an existing volume when none
	// can take them (default: admit with a warning).
	DenyUnbindableClaims bool
	// CacheSyncTimeout bounds how long start-up waits for the informer caches.
	CacheSyncTimeout time.Duration
	// Enforcement is the global mode: enforce refuses, warn only reports what it would refuse
	// (would-deny). A namespace's label workspace-webhook.io/enforcement overrides it.
	Enforcement enforcement.Mode
}

// Certificate modes.
const (
	CertModeFiles       = "files"
	CertModeSelfManaged = "self-managed"
)

// DefaultOptions are the production defaults.
func DefaultOptions() Options {
	return Options{
		CertDir: "/tmp/k8s-webhook-server/serving-certs", CertName: "tls.crt", KeyName: "tls.key", Port: 9443,
		MetricsAddr: ":8080", ProbeAddr: ":8081", TLSMinVersion: "1.3",
		ScriptPodLabel: "octopus.com/scriptTicketId", Workspace: workspace.DefaultConfig(),
		CacheSyncTimeout: 2 * time.Minute,
		CertMode:         CertModeFiles, SelfManagedSecret: "workspace-webhook-tls", ServiceName: "workspace-webhook",
		MutatingConfigName: "octopus-workspace-webhook", ValidatingConfigName: "octopus-workspace-webhook",
		CertCheckInterval: time.Minute,
		Enforcement:       enforcement.Enforce,
	}
}

// BindFlags registers the options as command-line flags.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Host, "host", o.Host, "Address the webhook server listens on (empty: all).")
	fs.IntVar(&o.Port, "port", o.Port, "Port the webhook server listens on.")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "Directory holding the serving certificate and key; reloaded when they change.")
	fs.StringVar(&o.CertName, "cert-name", o.CertName, "Serving certificate file name in --cert-dir.")
	fs.StringVar(&o.KeyName, "key-name", o.KeyName, "Serving key file name in --cert-dir.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "Address of the Prometheus metrics endpoint (0 disables it).")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "Address of the /healthz and /readyz endpoints.")
	fs.StringVar(&o.TLSMinVersion, "tls-min-version", o.TLSMinVersion, "Minimum TLS version: 1.2 or 1.3.")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", o.EnableHTTP2, "Serve HTTP/2 (off by default: CVE-2023-44487 rapid reset).")
	fs.StringVar(&o.ScriptPodLabel, "script-pod-label", o.ScriptPodLabel, "Label key that marks script pods.")
	fs.StringVar(&o.Workspace.MountPath, "workspace-path", o.Workspace.MountPath, "Path at which script containers expect the workspace.")
	fs.StringVar(&o.Workspace.VolumeName, "workspace-volume-name", o.Workspace.VolumeName, "Name given to an injected workspace volume.")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "The webhook's own namespace (default: $POD_NAMESPACE).")
	fs.DurationVar(&o.CacheSyncTimeout, "cache-sync-timeout", o.CacheSyncTimeout, "How long start-up waits for the informer caches to sync.")
	fs.StringVar(&o.CertMode, "cert-mode", o.CertMode, "files: serve the certificate mounted in --cert-dir (cert-manager); self-managed: keep our own CA and certificate in --self-managed-secret.")
	fs.StringVar(&o.SelfManagedSecret, "self-managed-secret", o.SelfManagedSecret, "Secret (in --namespace) holding the self-managed CA and serving certificate.")
	fs.StringVar(&o.ServiceName, "service-name", o.ServiceName, "Service in front of the webhook; the serving certificate names its DNS names.")
	fs.StringVar(&o.MutatingConfigName, "mutating-webhook-configuration", o.MutatingConfigName, "MutatingWebhookConfiguration whose caBundle the self-managed mode keeps current.")
	fs.StringVar(&o.ValidatingConfigName, "validating-webhook-configuration", o.ValidatingConfigName, "ValidatingWebhookConfiguration whose caBundle the self-managed mode keeps current.")
	fs.Func("extra-dns-names", "Comma-separated DNS names added to the self-managed serving certificate (webhooks reached by URL).", func(v string) error {
		o.ExtraDNSNames = nil
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				o.ExtraDNSNames = append(o.ExtraDNSNames, n)
			}
		}
		return nil
	})
	fs.DurationVar(&o.CertCheckInterval, "cert-check-interval", o.CertCheckInterval, "How often the self-managed mode checks its CA, serving certificate and caBundles.")
	fs.StringVar(&o.CapabilityOverrides, "capability-overrides", o.CapabilityOverrides, "YAML file of provisioner ReadWriteMany overrides; reloaded when it changes.")
	fs.BoolVar(&o.DenyUnbindableClaims, "deny-unbindable-claims", o.DenyUnbindableClaims, "Refuse claims that can only bind to an existing PersistentVolume (volumeName, or a kubernetes.io/no-provisioner class) when none can take them (default: admit with a warning).")
	fs.Func("enforcement", "enforce: refuse what the checks refuse; warn: admit it unchanged with a warning and record it as would-deny (audit-only). The namespace label "+enforcement.Label+"=enforce|warn overrides it (default enforce).", func(v string) error {
		m, err := enforcement.Parse(v)
		o.Enforcement = m
		return err
	})
	fs.BoolVar(&o.DenyUnknownCapability, "deny-unknown-capability", o.DenyUnknownCapability, "Refuse ReadWriteMany claims on classes whose capability is unknown (default: admit with a warning).")
}

// Validate rejects options the process cannot run with.
func (o *Options) Validate() error {
	if _, err := o.tlsVersion(); err != nil {
		return err
	}
	switch {
	case o.ScriptPodLabel == "":
		return fmt.Errorf("--script-pod-label must not be empty")
	case o.Workspace.MountPath == "" || o.Workspace.MountPath[0] != '/':
		return fmt.Errorf("--workspace-path must be an absolute path, got %q", o.Workspace.MountPath)
	case o.Workspace.MountPath != path.Clean(o.Workspace.MountPath) || o.Workspace.MountPath == "/":
		// The final-state policy compares paths as written: the marks must carry the clean one.
		return fmt.Errorf("--workspace-path must be written plainly (no trailing slash, no . or .. elements) and not be /; got %q, did you mean %q?", o.Workspace.MountPath, path.Clean(o.Workspace.MountPath))
	case o.Workspace.VolumeName == "" || o.Workspace.VolumeName == o.Workspace.FallbackVolumeName:
		return fmt.Errorf("--workspace-volume-name must be set and differ from %q", o.Workspace.FallbackVolumeName)
	case o.Enforcement != enforcement.Enforce && o.Enforcement != enforcement.Warn:
		return fmt.Errorf("--enforcement must be %q or %q, got %q", enforcement.Enforce, enforcement.Warn, o.Enforcement)
	case o.CertMode != CertModeFiles && o.CertMode != CertModeSelfManaged:
		return fmt.Errorf("--cert-mode must be %q or %q, got %q", CertModeFiles, CertModeSelfManaged, o.CertMode)
	case o.CertMode == CertModeSelfManaged && (o.Namespace == "" || o.SelfManagedSecret == "" || o.ServiceName == ""):
		return fmt.Errorf("--cert-mode=self-managed needs --namespace (or $POD_NAMESPACE), --self-managed-secret and --service-name")
	}
	return nil
}

func (o *Options) tlsVersion() (uint16, error) {
	switch o.TLSMinVersion {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3", "":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("--tls-min-version must be 1.2 or 1.3, got %q", o.TLSMinVersion)
}
