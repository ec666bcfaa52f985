package workspace

import (
	"gomodules.xyz/jsonpatch/v2"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
)

// Result is the decision for one script pod.
type Result struct {
	Code    reason.Code
	Denied  bool
	Message string                // why, for a denial; a summary otherwise
	Patch   []jsonpatch.Operation // add-only; empty when nothing changes
	Mode    Mode                  // "" when the claim was never reached
	Claim   string
	Node    string // node the pod is (or would be) pinned to
	Record  Record
	// Warnings are shown to whoever created the pod (kubectl prints them); the pod is admitted.
	Warnings []string
}

func deny(code reason.Code, msg string) Result {
	return Result{Code: code, Denied: true, Message: msg}
}
