package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// CPU time of processes and of the machine, from /proc (Linux), for CPU per created pod.

// ProcessCPU is a process's user+system CPU seconds (/proc/<pid>/stat, clock ticks of 10 ms).
func ProcessCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	utime, err := strconv.ParseFloat(f[11], 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseFloat(f[12], 64)
	if err != nil {
		return 0, err
	}
	return (utime + stime) / 100, nil
}

// MachineCPU is the key CPUOf gives the machine's busy CPU seconds.
const MachineCPU = "machine"

// CPUOf reads ProcessCPU of each named process (0 for one that cannot be read), and the
// machine's busy CPU seconds under MachineCPU.
func CPUOf(pids map[string]int) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range pids {
		out[name], _ = ProcessCPU(pid)
	}
	out[MachineCPU] = MachineBusy()
	return out
}

// MachineBusy is the busy CPU seconds of all cores since boot (/proc/stat: all but idle and
// iowait; 0 where there is no /proc).
func MachineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	busy := 0.0
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		if i != 3 && i != 4 && i < 8 { // user nice system [idle iowait] irq softirq steal
			busy += v
		}
	}
	return busy / 100
}

// BusyPercent is how busy the machine's cores were over the next d, in percent of all of them:
// other work skews absolute numbers, so measurements note it.
func BusyPercent(d time.Duration) float64 {
	before := MachineBusy()
	time.Sleep(d)
	busy := (MachineBusy() - before) / d.Seconds() / float64(runtime.NumCPU()) * 100
	return min(busy, 100) // /proc/stat counts in 10 ms ticks: a short window can overshoot
}
