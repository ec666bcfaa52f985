package reliability

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
)

// Render writes RELIABILITY.md: what it is, where the figures came from, a summary of every
// scenario, then each scenario with its promise, how it is measured, its figures and, folded,
// its raw data.
func Render(w io.Writer, m bench.Machine, command, commit string, when time.Time, results []bench.Result) error {
	var b strings.Builder
	b.WriteString(`# Reliability

A webhook on the pod-creation path can stop deployments or, worse, let a broken pod through.
This report is what a platform team can read before installing the Octopus workspace webhook:
each scenario, what is promised, how it is measured, and the figures of the last run. It is
generated: ` + "`make reliability`" + ` runs the long versions of the scenarios and every fuzz target
and rewrites this file (` + "`e2e/reliability/run.sh`" + `; the scenarios are tests in ` + "`e2e/reliability`" + `
and ` + "`e2e/faults`" + `, with the hostile-input and posture tests of ` + "`e2e`" + ` and the
least-privilege test of ` + "`e2e/install`" + `). The same tests run in ` + "`make test`" + `, smaller where
they have a size, asserting correctness and sane numbers (never timings), so they cannot rot.
What admission costs is in [BENCHMARKS.md](BENCHMARKS.md).

`)
	fmt.Fprintf(&b, "- last run: %s, `%s`", when.UTC().Format("2006-01-02 15:04 MST"), command)
	if commit != "" {
		fmt.Fprintf(&b, " at %s", commit)
	}
	fmt.Fprintf(&b, "\n- machine: %d cores (%s), %s memory, %s, kernel %s\n", m.NProc, m.CPUModel, gib(m.MemTotal), m.GoVersion, m.Kernel)
	if m.LoadAverages != "" {
		b.WriteString("- other work on the machine (CPU busy in the second before each step; everything here shares the same cores):\n")
		for _, l := range strings.Split(strings.TrimSpace(m.LoadAverages), "\n") {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
	}
	b.WriteString("\n## Summary\n\n| scenario | figures with a target met |\n|---|---|\n")
	for _, r := range results {
		met, targets := 0, 0
		for _, f := range r.Figures {
			if f.Met != nil {
				targets++
				if *f.Met {
					met++
				}
			}
		}
		verdict := fmt.Sprintf("%d of %d", met, targets)
		if met < targets {
			verdict = "**" + verdict + "**"
		}
		fmt.Fprintf(&b, "| [%s](#%s) | %s |\n", r.Title, anchor(r.Title), verdict)
	}
	for _, r := range results {
		fmt.Fprintf(&b, "\n## %s\n\n", r.Title)
		promise, how := splitConfig(r.Config)
		if promise != "" {
			fmt.Fprintf(&b, "**Promise.** %s\n\n", promise)
		}
		if how != "" {
			fmt.Fprintf(&b, "**How it is measured.** %s\n\n", how)
		}
		b.WriteString("| figure | measured | baseline | ratio | target | met |\n|---|---|---|---|---|---|\n")
		for _, f := range r.Figures {
			ratio := ""
			if f.Ratio != 0 {
				ratio = fmt.Sprintf("%.2fx", f.Ratio)
			}
			met := ""
			if f.Met != nil {
				met = map[bool]string{true: "yes", false: "**no**"}[*f.Met]
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cell(f.Figure), cell(f.Measured), cell(f.Baseline), ratio, cell(f.Target), met)
		}
		if raw := strings.TrimRight(r.Raw, "\n"); raw != "" {
			fmt.Fprintf(&b, "\n<details><summary>Raw data</summary>\n\n```\n%s\n```\n</details>\n", raw)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// splitConfig reads a Result's Config written as "Promise: ... How: ..."; any other text is
// all "how".
func splitConfig(config string) (promise, how string) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(config), "Promise: ")
	if !ok {
		return "", config
	}
	promise, how, _ = strings.Cut(rest, " How: ")
	return strings.TrimSpace(promise), strings.TrimSpace(how)
}

// anchor is the heading's anchor as GitHub makes it: lower case, spaces to dashes, other
// punctuation dropped.
func anchor(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// gib writes /proc/meminfo's "24683548 kB" as "23.5 GiB"; anything else as it is.
func gib(memTotal string) string {
	n, unit, ok := strings.Cut(strings.TrimSpace(memTotal), " ")
	kb, err := strconv.ParseFloat(n, 64)
	if !ok || unit != "kB" || err != nil {
		return memTotal
	}
	return fmt.Sprintf("%.1f GiB", kb/(1<<20))
}

// cell keeps a table cell on one line and its pipes literal.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", `\|`)
}
