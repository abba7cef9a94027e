// Package procstat reads the Linux /proc figures the benchmark harnesses
// report (cmd/fmload, cmd/fmembedbench and the log-analysis benchmark):
// a process's memory, CPU time, the machine's busy CPU and its load; and
// the handler that returns free memory to the OS before RSS is read.
package procstat

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ClockTicks is USER_HZ, the unit of /proc/stat and /proc/<pid>/stat times
// (100 on every Linux architecture Go supports).
const ClockTicks = 100

// StatusBytes reads a kB field of /proc/<pid>/status ("VmRSS", "VmHWM"…),
// in bytes; pid 0 is this process.
func StatusBytes(pid int, field string) (int64, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseStatusBytes(string(data), field)
}

func parseStatusBytes(status, field string) (int64, error) {
	for line := range strings.SplitSeq(status, "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no %s in the status", field)
}

// SelfCPU is this process's user + system CPU time so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// MachineCPU is the CPU time all cores spent busy, and in total, from the
// first line of /proc/stat.
func MachineCPU() (busy, total time.Duration, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return ParseMachineCPU(line)
}

// ParseMachineCPU reads "cpu user nice system idle iowait irq softirq
// steal …"; idle and iowait are the time not busy (guest time is already
// part of user).
func ParseMachineCPU(line string) (busy, total time.Duration, err error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, errors.New("malformed /proc/stat")
	}
	var v [8]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return 0, 0, err
		}
	}
	idle := v[3] + v[4]
	b := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	tick := time.Second / ClockTicks
	return time.Duration(b) * tick, time.Duration(b+idle) * tick, nil
}

// LoadAverage is /proc/loadavg's 1-, 5- and 15-minute load averages.
func LoadAverage() ([3]float64, error) {
	var out [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out, err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return out, errors.New("malformed /proc/loadavg")
	}
	for i := range out {
		if out[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return out, err
		}
	}
	return out, nil
}

// FreeOSMemory handles POST /debug/free-os-memory: a garbage collection
// that returns free memory to the operating system. Memory measurements
// (fmload's RSS per idle connection) read RSS after it, so that garbage
// and free heap the runtime still holds do not count as memory in use.
func FreeOSMemory(w http.ResponseWriter, _ *http.Request) {
	debug.FreeOSMemory()
	w.WriteHeader(http.StatusNoContent)
}
