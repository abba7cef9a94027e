package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParsers(t *testing.T) {
	busy, total, err := ParseMachineCPU("cpu  300 10 90 500 100 0 0 0 40 0")
	if err != nil || busy != 4*time.Second || total != 10*time.Second {
		t.Errorf("ParseMachineCPU = %v, %v, %v; want 4s of 10s", busy, total, err)
	}
	if _, _, err := ParseMachineCPU("cpu0 1 2 3"); err == nil {
		t.Error("ParseMachineCPU accepted a short line")
	}
	status := "Name:\tfaultmaven\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"
	if v, err := parseStatusBytes(status, "VmRSS"); err != nil || v != 1<<20 {
		t.Errorf("VmRSS = %d, %v; want 1 MiB", v, err)
	}
	if v, err := parseStatusBytes(status, "VmHWM"); err != nil || v != 2<<20 {
		t.Errorf("VmHWM = %d, %v; want 2 MiB", v, err)
	}
	if _, err := parseStatusBytes(status, "VmSwap"); err == nil {
		t.Error("a missing field was not reported")
	}
}

// The readers work on this machine's /proc, for this process.
func TestReadsThisProcess(t *testing.T) {
	if hwm, err := StatusBytes(0, "VmHWM"); err != nil || hwm <= 0 {
		t.Errorf("VmHWM of this process = %d, %v", hwm, err)
	}
	if rss, err := StatusBytes(os.Getpid(), "VmRSS"); err != nil || rss <= 0 {
		t.Errorf("VmRSS by pid = %d, %v", rss, err)
	}
	if busy, total, err := MachineCPU(); err != nil || busy <= 0 || total < busy {
		t.Errorf("MachineCPU = %v, %v, %v", busy, total, err)
	}
	if _, err := LoadAverage(); err != nil {
		t.Errorf("LoadAverage: %v", err)
	}
	x := 0
	for i := range 20_000_000 {
		x += i
	}
	if SelfCPU() <= 0 || x == 0 {
		t.Error("SelfCPU reports no CPU after a busy loop")
	}
}
