// Command benchreport writes .bench/results.md from what `make bench` (e2e/bench/run.sh)
// measured: the in-process benchmark output and benchstat comparison, and the <name>.json
// results the other measurements saved, with any <name>.pprof.txt appended to their raw data.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
)

func main() {
	dir := flag.String("dir", ".bench", "directory run.sh wrote its results to")
	command := flag.String("command", "make bench", "command that produced the results")
	commit := flag.String("commit", "", "commit measured")
	flag.Parse()
	if err := run(*dir, *command, *commit); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(dir, command, commit string) error {
	results, err := bench.LoadResults(dir)
	if err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "inprocess.bench.txt")); err == nil {
		raw := "--- benchstat -col /handler (delta: webhook vs floor)\n" + read(dir, "inprocess.benchstat.txt") +
			"\n--- go test -bench output\n" + string(b)
		results = append([]bench.Result{bench.InProcessResult(string(b), raw)}, results...)
	}
	for i := range results {
		if p := read(dir, results[i].Name+".pprof.txt"); p != "" {
			results[i].Raw += "\n" + p
		}
	}
	f, err := os.Create(filepath.Join(dir, "results.md"))
	if err != nil {
		return err
	}
	m := bench.ThisMachine()
	m.LoadAverages = read(dir, "loadavg.txt")
	if err := bench.Render(f, m, command, commit, time.Now(), results); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func read(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return string(b)
}
