package reliability

import (
	"fmt"
	"os"
	"testing"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
)

// Save logs a scenario's figures and, when RELIABILITY_OUT names a directory (run.sh sets it),
// writes its Result there for the report; a run without it (make test) only logs them. Every
// package with a scenario calls it: this one, e2e/faults, e2e (hostile input, posture) and
// e2e/install (least privilege).
func Save(t testing.TB, r bench.Result) {
	t.Helper()
	for _, f := range r.Figures {
		line := f.Figure + ": " + f.Measured
		if f.Baseline != "" {
			line += " (baseline " + f.Baseline + ")"
		}
		if f.Met != nil {
			line += fmt.Sprintf(", target %s: %s", f.Target, map[bool]string{true: "met", false: "NOT MET"}[*f.Met])
		}
		t.Log(line)
	}
	dir := os.Getenv("RELIABILITY_OUT")
	if dir == "" {
		return
	}
	if err := r.Save(dir); err != nil {
		t.Errorf("saving %s: %v", r.Name, err)
	}
}
