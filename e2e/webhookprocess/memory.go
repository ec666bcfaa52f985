package webhookprocess

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What a memory measurement reads from a webhook process: /proc/<pid>/status, its metrics
// endpoint and its GODEBUG=gctrace=1 lines.

// MemStatus reads the fields of /proc/<pid>/status given in kB (VmRSS, RssAnon, RssFile), in bytes.
func (p *Process) MemStatus() (map[string]float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			kb, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return nil, err
			}
			out[k] = kb * 1024
		}
	}
	if out["VmRSS"] == 0 {
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", p.Pid())
	}
	return out, nil
}

// gcLine is one GODEBUG=gctrace=1 line: "gc 12 @3.4s 1%: ... 4->5->2 MB, 8 MB goal, ...".
var gcLine = regexp.MustCompile(`^gc (\d+) @([0-9.]+)s .*?(\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

// GCRecord is one garbage collection of the process.
type GCRecord struct {
	N      int
	At     time.Duration // since process start
	LiveMB float64       // heap marked live by this cycle
	GoalMB float64
}

// GCs reads every GC trace line the process has written so far (Options.GCTrace).
func (p *Process) GCs() []GCRecord {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []GCRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := gcLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		at, _ := strconv.ParseFloat(m[2], 64)
		live, _ := strconv.ParseFloat(m[5], 64)
		goal, _ := strconv.ParseFloat(m[6], 64)
		out = append(out, GCRecord{N: n, At: time.Duration(at * float64(time.Second)), LiveMB: live, GoalMB: goal})
	}
	return out
}

// MemSample is the process's memory once settled.
type MemSample struct {
	RSS, RSSAnon, RSSFile float64 // /proc/<pid>/status: resident, of which anonymous (heap, stacks) and file-backed (the binary's pages)
	HeapInuse, HeapFree   float64 // Go heap spans in use; free spans not yet returned to the OS (idle - released)
	Stacks                float64
	GC                    GCRecord
	Waited                time.Duration
}

func (s MemSample) String() string {
	return fmt.Sprintf("VmRSS %s (RssAnon %s, RssFile %s); Go heap in use %s, free not returned %s, stacks %s; last GC #%d at %.1fs (waited %s): live heap %.0f MB, goal %.0f MB",
		MiB(s.RSS), MiB(s.RSSAnon), MiB(s.RSSFile), MiB(s.HeapInuse), MiB(s.HeapFree), MiB(s.Stacks), s.GC.N, s.GC.At.Seconds(), s.Waited.Round(time.Second), s.GC.LiveMB, s.GC.GoalMB)
}

// Settle reads the process's memory once it is idle. With waitGC (the full measurement) it
// waits for the first GC after now (the runtime forces one within 2 minutes of idling; the
// process must run with Options.GCTrace), lets the scavenger return freed pages for 5 s, then
// reads /proc/<pid>/status three times a second apart and keeps the medians; without, it reads
// once at once (smoke runs: sane numbers, not a measurement).
func (p *Process) Settle(ctx context.Context, waitGC bool) (MemSample, error) {
	var s MemSample
	since := time.Since(p.Started)
	began := time.Now()
	reads := 1
	if waitGC {
		reads = 3
		for {
			if gcs := p.GCs(); len(gcs) > 0 && gcs[len(gcs)-1].At > since {
				break
			}
			if time.Since(began) > 150*time.Second {
				return s, fmt.Errorf("no GC within 150 s (gctrace in %s)", p.LogPath)
			}
			select {
			case <-ctx.Done():
				return s, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		time.Sleep(5 * time.Second)
	}
	s.Waited = time.Since(began)
	var rss, anon, file []float64
	for i := range reads {
		if i > 0 {
			time.Sleep(time.Second)
		}
		st, err := p.MemStatus()
		if err != nil {
			return s, err
		}
		rss, anon, file = append(rss, st["VmRSS"]), append(anon, st["RssAnon"]), append(file, st["RssFile"])
	}
	s.RSS, s.RSSAnon, s.RSSFile = median(rss), median(anon), median(file)
	if gcs := p.GCs(); len(gcs) > 0 {
		s.GC = gcs[len(gcs)-1]
	}
	page, err := p.MetricsText()
	if err != nil {
		return s, err
	}
	vals := map[string]float64{}
	for _, name := range []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes"} {
		if vals[name], err = SeriesValue(page, name); err != nil {
			return s, err
		}
	}
	s.HeapInuse, s.Stacks = vals["go_memstats_heap_inuse_bytes"], vals["go_memstats_stack_inuse_bytes"]
	s.HeapFree = vals["go_memstats_heap_idle_bytes"] - vals["go_memstats_heap_released_bytes"]
	return s, nil
}

// MiB formats bytes in mebibytes.
func MiB(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
