// Command render prints a kustomization of manifests/ as YAML, as `kubectl apply -k` would
// apply it (`make manifests FLAVOUR=...`):
//
//	go run ./manifests/render cert-manager|self-managed|service-ca [--network-policy] [--audit-only]
package main

import (
	"fmt"
	"os"

	"github.com/octopus-agent-tools/workspace-webhook/manifests"
)

func main() {
	args := os.Args[1:]
	usage := func() {
		fmt.Fprintf(os.Stderr, "usage: render %v [--network-policy] [--audit-only]\n", manifests.Flavours)
		os.Exit(2)
	}
	if len(args) < 1 {
		usage()
	}
	var components []string
	seen := map[string]bool{}
	for _, a := range args[1:] {
		var c string
		switch a {
		case "--network-policy":
			c = manifests.NetworkPolicyComponent
		case "--audit-only":
			c = manifests.AuditOnlyComponent
		default:
			usage()
		}
		if seen[c] {
			usage()
		}
		seen[c] = true
		components = append(components, c)
	}
	out, err := manifests.RenderWith(args[0], components...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		os.Exit(1)
	}
}
