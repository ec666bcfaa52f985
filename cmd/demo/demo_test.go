package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
)

// The README's first command must keep working: run the demo once, end to end.
func TestDemoRunsEndToEnd(t *testing.T) {
	controlplane.RequireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, false); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"Tentacle pod octopus-agent-tentacle-demo-",
		"is Running on node-2",
		"+           matchFields:",
		"+   - name: tentacle-home",
		"scheduled to node-2, the node holding the workspace volume",
		`refused at once: admission webhook "agent-claim-access-modes.workspace-webhook.io" denied the request`,
		"==> workspace-webhook doctor on this cluster:",
		"octopus-agent-demo  demo", "RWO pinned",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "scheduled to node-2") != 2 {
		t.Errorf("want both script pods scheduled to node-2:\n%s", got)
	}
}
