package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Figure is one row of the results table: a measured value next to its baseline.
type Figure struct {
	Measurement string  `json:"measurement"`
	Figure      string  `json:"figure"`
	Measured    string  `json:"measured"`
	Baseline    string  `json:"baseline,omitempty"`
	Ratio       float64 `json:"ratio,omitempty"` // measured / baseline; 0 when not a ratio figure
	Target      string  `json:"target,omitempty"`
	Met         *bool   `json:"met,omitempty"` // nil: no target
}

// Result is what one measurement writes: figures for the table and raw data.
type Result struct {
	Order   int      `json:"order"` // position in the report
	Name    string   `json:"name"`  // file stem, e.g. "https"
	Title   string   `json:"title"`
	Config  string   `json:"config"`
	Figures []Figure `json:"figures"`
	Raw     string   `json:"raw"`
}

// Met is a helper for Figure.Met.
func Met(ok bool) *bool { return &ok }

// Save writes r to dir/<name>.json.
func (r Result) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, r.Name+".json"), b, 0o644)
}

// LoadResults reads every <name>.json Save wrote in dir, in report order.
func LoadResults(dir string) ([]Result, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if r.Name != "" {
			out = append(out, r)
		}
	}
	SortResults(out)
	return out, nil
}

// SortResults puts results in report order.
func SortResults(rs []Result) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Order < rs[j].Order })
}

// Machine describes where the results came from.
type Machine struct {
	NProc     int
	GoVersion string
	CPUModel  string
	Kernel    string
	MemTotal  string
	// LoadAverages says how busy the machine was before each step (run.sh).
	LoadAverages string
}

// ThisMachine reads nproc, the Go version, the CPU model and total memory.
func ThisMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	m.CPUModel = procField("/proc/cpuinfo", "model name", ":")
	m.MemTotal = procField("/proc/meminfo", "MemTotal", ":")
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func procField(path, key, sep string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), sep); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// Render writes the markdown report: the machine, one table of every figure, then raw data.
func Render(w io.Writer, m Machine, command, commit string, when time.Time, results []Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Webhook benchmark results\n\n")
	fmt.Fprintf(&b, "- run: %s, `%s`", when.UTC().Format(time.RFC3339), command)
	if commit != "" {
		fmt.Fprintf(&b, " at %s", commit)
	}
	fmt.Fprintf(&b, "\n- machine: nproc %d, %s, CPU %s, kernel %s, memory %s\n\n", m.NProc, m.GoVersion, m.CPUModel, m.Kernel, m.MemTotal)
	if m.LoadAverages != "" {
		fmt.Fprintf(&b, "- other work on the machine (CPU busy in the second before each step; should be near 0):\n")
		for _, l := range strings.Split(strings.TrimSpace(m.LoadAverages), "\n") {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
		b.WriteString("\n")
	}
	b.WriteString("Ratios are the headline (measured / baseline, same run); absolute numbers are context.\n\n")
	b.WriteString("| measurement | figure | measured | baseline | ratio | target | met |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		for _, f := range r.Figures {
			ratio := ""
			if f.Ratio != 0 {
				ratio = fmt.Sprintf("%.2fx", f.Ratio)
			}
			met := ""
			if f.Met != nil {
				met = map[bool]string{true: "yes", false: "**no**"}[*f.Met]
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", f.Measurement, f.Figure, f.Measured, f.Baseline, ratio, f.Target, met)
		}
	}
	b.WriteString("\n## Raw data\n")
	for _, r := range results {
		fmt.Fprintf(&b, "\n### %s\n\nconfiguration: %s\n\n```\n%s\n```\n", r.Title, r.Config, strings.TrimRight(r.Raw, "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// BenchStats are the medians of one Go benchmark over its repeated counts.
type BenchStats struct {
	Runs                      int
	NsPerOp, BPerOp, AllocsOp float64
}

// ParseGoBench reads `go test -bench -benchmem` output: benchmark name (without the
// -GOMAXPROCS suffix) -> medians over every line of that name.
func ParseGoBench(text string) map[string]BenchStats {
	type acc struct{ ns, b, allocs []float64 }
	all := map[string]*acc{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		a := all[name]
		if a == nil {
			a = &acc{}
			all[name] = a
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				a.ns = append(a.ns, v)
			case "B/op":
				a.b = append(a.b, v)
			case "allocs/op":
				a.allocs = append(a.allocs, v)
			}
		}
	}
	out := map[string]BenchStats{}
	for name, a := range all {
		out[name] = BenchStats{Runs: len(a.ns), NsPerOp: Median(a.ns), BPerOp: Median(a.b), AllocsOp: Median(a.allocs)}
	}
	return out
}

// In-process targets (the issue): the whole path within 3x the floor, 100 µs and a few
// hundred allocations per review.
const (
	InProcessMaxRatio  = 3.0
	InProcessMaxNs     = 100_000
	InProcessMaxAllocs = 500
)

// InProcessResult turns the benchmark output of inprocess_test.go into figures. raw is
// appended verbatim (benchstat's comparison, profiles).
func InProcessResult(benchText, raw string) Result {
	stats := ParseGoBench(benchText)
	r := Result{Order: 1, Name: "inprocess", Title: "1. In-process admission path (decode, facts from a warm cache, decide, patch, encode)",
		Config: "webhook: the handlers registered on the manager's webhook server (app.NewManager) served through its mux with an httptest.ResponseRecorder; " +
			"cache: controller-runtime informers against a real kube-apiserver holding the agent; floor: the same mux and review server (the AdmissionReview decoded once, its pod left raw, the response encoded) with a no-op handler, same AdmissionReview; " +
			"for context, controller-runtime's admission.Webhook.ServeHTTP with the same no-op handler (what most webhooks pay before deciding anything)"}
	for _, hook := range []string{"Mutate", "Validate"} {
		floor, ok1 := stats["Benchmark"+hook+"/handler=floor"]
		real, ok2 := stats["Benchmark"+hook+"/handler=webhook"]
		if !ok1 || !ok2 {
			continue
		}
		what := strings.ToLower(hook) + " (" + map[string]string{"Mutate": "/mutate-script-pod", "Validate": "/validate-script-pod"}[hook] + ")"
		ratio := real.NsPerOp / floor.NsPerOp
		r.Figures = append(r.Figures,
			Figure{Measurement: "1. in-process " + what, Figure: fmt.Sprintf("time per review (median of %d)", real.Runs),
				Measured: us(real.NsPerOp), Baseline: us(floor.NsPerOp), Ratio: ratio,
				Target: fmt.Sprintf("<= %.0fx and <= %s", InProcessMaxRatio, us(InProcessMaxNs)),
				Met:    Met(ratio <= InProcessMaxRatio && real.NsPerOp <= InProcessMaxNs)},
			Figure{Measurement: "1. in-process " + what, Figure: "allocations per review",
				Measured: fmt.Sprintf("%.0f", real.AllocsOp), Baseline: fmt.Sprintf("%.0f", floor.AllocsOp), Ratio: real.AllocsOp / floor.AllocsOp,
				Target: fmt.Sprintf("<= %d (a few hundred)", InProcessMaxAllocs), Met: Met(real.AllocsOp <= InProcessMaxAllocs)},
			Figure{Measurement: "1. in-process " + what, Figure: "bytes allocated per review",
				Measured: kib(real.BPerOp), Baseline: kib(floor.BPerOp), Ratio: real.BPerOp / floor.BPerOp})
		if cr, ok := stats["Benchmark"+hook+"/handler=controller-runtime-floor"]; ok {
			r.Figures = append(r.Figures, Figure{Measurement: "1. in-process " + what,
				Figure:   "time per review vs controller-runtime's admission.Webhook with a no-op handler (context)",
				Measured: us(real.NsPerOp), Baseline: fmt.Sprintf("%s (%.0f allocs)", us(cr.NsPerOp), cr.AllocsOp), Ratio: real.NsPerOp / cr.NsPerOp})
		}
	}
	r.Raw = raw
	return r
}

func us(ns float64) string        { return fmt.Sprintf("%.1f µs", ns/1000) }
func kib(b float64) string        { return fmt.Sprintf("%.1f KiB", b/1024) }
func MiB(b float64) string        { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
func Secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }
