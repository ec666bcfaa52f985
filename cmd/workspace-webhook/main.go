// Command workspace-webhook serves the admission webhooks that give Octopus script pods their
// agent's workspace and pin them to the node holding a ReadWriteOnce volume.
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
