package reliability

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
)

// FuzzResult turns what run.sh's fuzz step recorded into the report's fuzzing section. tsv
// has one line per fuzz target: target, package, fuzz time, executions, "ok" or "FAIL"
// (tab-separated); failures maps a failed target to the end of its output.
func FuzzResult(tsv string, failures map[string]string) (bench.Result, error) {
	r := bench.Result{Order: 50, Name: "fuzz", Title: "50. Fuzzing: every Go fuzz target of the repository",
		Config: "Promise: no input, however malformed, makes the webhook's decoding, decisions, patches, final-state check or claim judgement panic or break the properties each target asserts " +
			"(a patch that applies, adds only and is idempotent; the final-state policy's CEL and its Go twin agreeing; ...). " +
			"How: every `func FuzzX` found by `go test -list '^Fuzz'` runs under `go test -fuzz` for the fuzz time, one target at a time, from its committed seed corpus " +
			"(testdata/fuzz: inputs that once failed stay as regression cases); a failing input is written there for review"}
	var raw strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(tsv), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			return r, fmt.Errorf("fuzz record %q: want 5 tab-separated fields (target, package, fuzz time, executions, result)", line)
		}
		target, pkg, fuzztime, execs, result := f[0], f[1], f[2], f[3], f[4]
		measured := "no executions recorded"
		if n, err := strconv.Atoi(execs); err == nil {
			measured = fmt.Sprintf("%s executions in %s", group(n), fuzztime)
		}
		r.Figures = append(r.Figures, bench.Figure{Measurement: "fuzz", Figure: fmt.Sprintf("%s (%s)", target, pkg), Measured: measured,
			Target: "no failing input", Met: bench.Met(result == "ok")})
		fmt.Fprintf(&raw, "%-22s %-24s %-6s %12s  %s\n", target, pkg, fuzztime, execs, result)
		if out := failures[target]; out != "" {
			fmt.Fprintf(&raw, "--- %s failed:\n%s\n", target, strings.TrimRight(out, "\n"))
		}
	}
	if len(r.Figures) == 0 {
		return r, fmt.Errorf("no fuzz target recorded")
	}
	r.Raw = raw.String()
	return r, nil
}

// group writes n with thousands separators: 1234567 -> 1,234,567.
func group(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
