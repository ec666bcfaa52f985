// Command render prints a kustomization of manifests/ as YAML:
//
//	go run ./manifests/render cert-manager|self-managed [--network-policy]
package main

import (
	"fmt"
	"os"

	"github.com/octopus-agent-tools/workspace-webhook/manifests"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, "usage: render %v [--network-policy]\n", manifests.Flavours)
		os.Exit(2)
	}
	out, err := manifests.Render(os.Args[1], len(os.Args) > 2 && os.Args[2] == "--network-policy")
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
