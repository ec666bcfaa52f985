// Command workspace-webhook serves the admission webhooks that give Octopus script pods their
// agent's workspace and pin them to the node holding a ReadWriteOnce volume.
//
//	workspace-webhook [flags]              serve the webhooks
//	workspace-webhook explain -f FILE ...  what the webhook would do with FILE, offline or from a cluster
//	workspace-webhook doctor [flags]       every agent's storage, the classes, and each problem's fix
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/app"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "explain":
			os.Exit(runExplain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		case "doctor":
			os.Exit(runDoctor(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	opts := app.DefaultOptions()
	opts.Namespace = os.Getenv("POD_NAMESPACE")
	opts.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{Development: false}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	log := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(log)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error: no Kubernetes configuration:", err)
		os.Exit(1)
	}
	if err := app.Run(ctrl.SetupSignalHandler(), cfg, opts, log); err != nil {
		log.Error(err, "webhook stopped")
		os.Exit(1)
	}
}
