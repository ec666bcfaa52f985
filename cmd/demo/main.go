// Command demo runs the webhook on an embedded default: a local control plane (kube-apiserver,
// etcd, kube-scheduler, kube-controller-manager, three kwok nodes), the webhook registered the
// way manifests/base/webhooks.yaml registers it, an agent (Tentacle Deployment + RWO claim) and
// a script pod created exactly as Tentacle creates it. It prints what the webhook changed and
// where the pod was scheduled, then keeps running until interrupted so you can try your own pods.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	once := flag.Bool("once", false, "exit after the demo instead of waiting for Ctrl-C")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, !*once); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func say(out io.Writer, format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
