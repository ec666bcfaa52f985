package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

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
	return (MachineBusy() - before) / d.Seconds() / float64(runtime.NumCPU()) * 100
}
