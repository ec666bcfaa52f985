// Command render prints a kustomization of manifests/ as YAML, as `kubectl apply -k` would
// apply it (`make manifests FLAVOUR=...`):
//
//	go run ./manifests/render cert-manager|self-managed [--network-policy]
package main

import (
	"fmt"
	"os"

	"github.com/octopus-agent-tools/workspace-webhook/manifests"
)

func main() {
	args := os.Args[1:]
	netpol := len(args) == 2 && args[1] == "--network-policy"
	if len(args) < 1 || len(args) > 2 || (len(args) == 2 && !netpol) {
		fmt.Fprintf(os.Stderr, "usage: render %v [--network-policy]\n", manifests.Flavours)
		os.Exit(2)
	}
	out, err := manifests.Render(args[0], netpol)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		os.Exit(1)
	}
}
