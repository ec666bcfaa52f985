package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CPU time of processes and of the machine, from /proc (Linux), for CPU per created pod.

// procCPU is a process's user+system CPU seconds (/proc/<pid>/stat, clock ticks of 10 ms).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := firstErr(err1, err2); err != nil {
		return 0, err
	}
	return (utime + stime) / 100, nil
}

const machine = "machine"

// cpuOf reads procCPU of each named process (0 for one that cannot be read), and the
// machine's busy CPU seconds under "machine".
func cpuOf(pids map[string]int) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range pids {
		out[name], _ = procCPU(pid)
	}
	out[machine] = MachineBusy()
	return out
}
