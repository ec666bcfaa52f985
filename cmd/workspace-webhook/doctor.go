package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/doctor"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

const doctorUsage = `Usage: workspace-webhook doctor [flags]

Reports every StorageClass's ReadWriteMany verdict, every Octopus agent's storage (every
chart generation, nameOverride installs, workers) and each problem with its fix, judged by
the webhook's own code. Exit status: 0, or 1 when a problem at --fail-on or above is found
(2 on bad usage).

`

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, doctorUsage); fs.PrintDefaults() }
	kubeconfig := fs.String("kubeconfig", "", "Kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
	kubeContext := fs.String("context", "", "Kubeconfig context.")
	namespace := fs.String("namespace", "", "Only this namespace's agents (default: all namespaces).")
	fs.StringVar(namespace, "n", "", "Shorthand for --namespace.")
	all := fs.Bool("A", false, "All namespaces (the default).")
	output := fs.String("o", "table", "Output: table, json or yaml.")
	failOn := fs.String("fail-on", "error", "Exit 1 on problems of this severity or worse: warning, error or none.")
	mountPath := fs.String("workspace-path", workspace.DefaultConfig().MountPath, "Path at which script containers expect the workspace.")
	var scope doctor.Scope
	fs.StringVar(&scope.MutatingName, "mutating-webhook-configuration", "", "The webhook's MutatingWebhookConfiguration (default: the manifests' name).")
	fs.StringVar(&scope.ValidatingName, "validating-webhook-configuration", "", "The webhook's ValidatingWebhookConfiguration (default: the manifests' name).")
	overrides := fs.String("capability-overrides", "", "The webhook's capability override file, to judge classes as the webhook does.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || (*all && *namespace != "") || (*failOn != "warning" && *failOn != "error" && *failOn != "none") {
		fs.Usage()
		return 2
	}
	judge := storage.Judge{}
	if *overrides != "" {
		w := storage.NewOverrideWatcher(*overrides, storage.WatcherOptions{})
		if err := w.Reload(); err != nil {
			fmt.Fprintln(stderr, "error: --capability-overrides:", err)
			return 2
		}
		judge.Overrides = w.Current()
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: *kubeContext}).ClientConfig()
	if err != nil {
		fmt.Fprintln(stderr, "error: kubeconfig:", err)
		return 1
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	scope.Namespace = *namespace
	snap, err := doctor.Gather(context.Background(), c, disc, scope)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	report := doctor.Diagnose(snap, judge, *mountPath)
	if err := doctor.Print(stdout, report, *output); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	switch worst := report.Worst(); {
	case *failOn == "none" || worst == "":
		return 0
	case *failOn == "warning" || worst == doctor.Error:
		return 1
	}
	return 0
}
