package bench

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// What TestMemory reads from a webhook process: /proc/<pid>/status, its metrics endpoint and
// its GODEBUG=gctrace=1 lines.

// memStatus reads fields of /proc/<pid>/status given in kB (VmRSS, RssAnon, RssFile), in bytes.
func (p *webhookProcess) memStatus() (map[string]float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
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
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", p.Cmd.Process.Pid)
	}
	return out, nil
}

// metric reads one unlabelled series from the process's metrics endpoint.
func (p *webhookProcess) metric(name string) (float64, error) {
	all, err := p.MetricsText()
	if err != nil {
		return 0, err
	}
	return seriesValue(all, name)
}

// seriesValue sums the samples of series name (every label set) in a Prometheus text page.
func seriesValue(page, name string) (float64, error) {
	sum, found := 0.0, false
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, err
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("no series %s", name)
	}
	return sum, nil
}

// gcLine is one GODEBUG=gctrace=1 line: "gc 12 @3.4s 1%: ... 4->5->2 MB, 8 MB goal, ...".
var gcLine = regexp.MustCompile(`^gc (\d+) @([0-9.]+)s .*?(\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

type gcRecord struct {
	n      int
	at     time.Duration // since process start
	liveMB float64       // heap marked live by this cycle
	goalMB float64
}

// gcs reads every GC trace line the process has written so far.
func (p *webhookProcess) gcs() []gcRecord {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []gcRecord
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
		out = append(out, gcRecord{n: n, at: time.Duration(at * float64(time.Second)), liveMB: live, goalMB: goal})
	}
	return out
}
