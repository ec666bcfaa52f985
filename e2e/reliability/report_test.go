package reliability

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

func TestSplitConfig(t *testing.T) {
	for _, tc := range []struct{ config, promise, how string }{
		{"Promise: never refused. How: 5,000 pods.", "never refused.", "5,000 pods."},
		{"Promise: only a promise", "only a promise", ""},
		{"full mode; 3 rounds", "", "full mode; 3 rounds"},
		{"", "", ""},
	} {
		promise, how := splitConfig(tc.config)
		if promise != tc.promise || how != tc.how {
			t.Errorf("splitConfig(%q) = %q, %q; want %q, %q", tc.config, promise, how, tc.promise, tc.how)
		}
	}
}

func TestAnchor(t *testing.T) {
	for title, want := range map[string]string{
		"10. Burst: script pods created at once through kube-apiserver": "10-burst-script-pods-created-at-once-through-kube-apiserver",
		"50. Fuzzing: every Go fuzz target (x_y)":                       "50-fuzzing-every-go-fuzz-target-x_y",
	} {
		if got := anchor(title); got != want {
			t.Errorf("anchor(%q) = %q, want %q", title, got, want)
		}
	}
}

func TestFuzzResult(t *testing.T) {
	tsv := "FuzzMutate\t./webhook/workspace\t2m\t1234567\tok\nFuzzParse\t./webhook/storage\t2m\t\tFAIL\n"
	r, err := FuzzResult(tsv, map[string]string{"FuzzParse": "panic: boom\n"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Order != 50 || len(r.Figures) != 2 {
		t.Fatalf("got order %d, %d figures", r.Order, len(r.Figures))
	}
	if f := r.Figures[0]; f.Measured != "1,234,567 executions in 2m" || !*f.Met {
		t.Errorf("first figure %+v", f)
	}
	if f := r.Figures[1]; f.Measured != "no executions recorded" || *f.Met {
		t.Errorf("second figure %+v", f)
	}
	if !strings.Contains(r.Raw, "panic: boom") {
		t.Errorf("the failure's output is not in the raw data:\n%s", r.Raw)
	}
	for _, bad := range []string{"", "FuzzX\tpkg\t2m\t12\n"} {
		if _, err := FuzzResult(bad, nil); err == nil {
			t.Errorf("FuzzResult(%q) accepted", bad)
		}
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 50000: "50,000", 1234567: "1,234,567"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestRender holds RELIABILITY.md's layout to testdata/report.md.golden (go test -update).
func TestRender(t *testing.T) {
	results := []bench.Result{
		{Order: 10, Name: "burst", Title: "10. Burst: script pods at once", Config: "Promise: all admitted. How: 5 pods | 2 agents.",
			Figures: []bench.Figure{
				{Figure: "admitted", Measured: "5 of 5", Target: "all", Met: bench.Met(true)},
				{Figure: "pods per second", Measured: "12 /s"},
			}, Raw: "burst: n=5\n"},
		{Order: 20, Name: "scale", Title: "20. Scale", Config: "smoke mode",
			Figures: []bench.Figure{{Figure: "RSS", Measured: "40.0 MiB", Baseline: "38.0 MiB", Ratio: 40.0 / 38, Target: "<= +5 MiB", Met: bench.Met(false)}}},
	}
	m := bench.Machine{NProc: 2, GoVersion: "go1.26 linux/amd64", CPUModel: "Test CPU", Kernel: "6.1", MemTotal: "24683548 kB", LoadAverages: "burst: machine 3% busy in the second before\n"}
	var out bytes.Buffer
	if err := Render(&out, m, "make reliability", "abc1234", time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC), results); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.md.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -run TestRender -update writes it)", err)
	}
	if out.String() != string(want) {
		t.Errorf("RELIABILITY.md layout differs from %s (go test -run TestRender -update rewrites it):\n%s", golden, out.String())
	}
}
