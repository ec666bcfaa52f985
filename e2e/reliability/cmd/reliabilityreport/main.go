// Command reliabilityreport writes RELIABILITY.md from what `make reliability`
// (e2e/reliability/run.sh) recorded in its results directory: the <name>.json results every
// reliability scenario saved (bench.Result), the fuzz step's fuzz.tsv (with fuzz.<Target>.log
// for a failed target) and loadavg.txt (how busy the machine was before each step).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/reliability"
)

func main() {
	dir := flag.String("dir", ".reliability", "directory run.sh wrote its results to")
	out := flag.String("out", "RELIABILITY.md", "file to write")
	command := flag.String("command", "make reliability", "command that produced the results")
	commit := flag.String("commit", "", "commit measured")
	flag.Parse()
	if err := run(*dir, *out, *command, *commit); err != nil {
		fmt.Fprintln(os.Stderr, "reliabilityreport:", err)
		os.Exit(1)
	}
}

func run(dir, out, command, commit string) error {
	results, err := bench.LoadResults(dir)
	if err != nil {
		return err
	}
	tsv, err := os.ReadFile(filepath.Join(dir, "fuzz.tsv"))
	switch {
	case err == nil:
		failures := map[string]string{}
		logs, _ := filepath.Glob(filepath.Join(dir, "fuzz.*.log"))
		for _, l := range logs {
			target := filepath.Base(l)
			target = target[len("fuzz.") : len(target)-len(".log")]
			failures[target] = read(l)
		}
		fuzz, err := reliability.FuzzResult(string(tsv), failures)
		if err != nil {
			return err
		}
		results = append(results, fuzz)
		bench.SortResults(results)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if len(results) == 0 {
		return fmt.Errorf("no results in %s", dir)
	}
	m := bench.ThisMachine()
	m.LoadAverages = read(filepath.Join(dir, "loadavg.txt"))
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := reliability.Render(f, m, command, commit, time.Now(), results); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func read(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}
