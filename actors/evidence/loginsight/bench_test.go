package loginsight

import (
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/internal/procstat"
)

// BenchmarkAnalyze measures throughput on 16 MB of the synthetic mixed log.
func BenchmarkAnalyze(b *testing.B) {
	benchAnalyze(b, 16<<20, 0)
}

// BenchmarkAnalyzeLarge streams FM_BENCH_MB (default 500) MB of synthetic
// log through an io.Pipe into Analyze — nothing is written to disk — and
// reports lines/s and the process's peak RSS. It runs only with FM_BENCH=1:
//
//	FM_BENCH=1 go test -run '^$' -bench AnalyzeLarge -benchtime 1x ./actors/evidence/loginsight/
//
// FM_BENCH_NOISE=0.5 makes half the lines one-off random-word templates,
// the worst case for the template cap.
func BenchmarkAnalyzeLarge(b *testing.B) {
	if os.Getenv("FM_BENCH") != "1" {
		b.Skip("set FM_BENCH=1 to stream 500 MB (FM_BENCH_MB to change the size)")
	}
	mb := int64(500)
	if v, err := strconv.ParseInt(os.Getenv("FM_BENCH_MB"), 10, 64); err == nil && v > 0 {
		mb = v
	}
	noise, _ := strconv.ParseFloat(os.Getenv("FM_BENCH_NOISE"), 64)
	benchAnalyze(b, mb<<20, noise)
}

func benchAnalyze(b *testing.B, size int64, noise float64) {
	ref := time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC)
	hwmBefore := vmHWM()
	var rep *Report
	var s *synth
	for b.Loop() {
		s = newSynth(1)
		s.noise = noise
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := s.writeTo(pw, size)
			pw.CloseWithError(err)
			done <- err
		}()
		var err error
		rep, err = Analyze(pr, Options{Reference: ref})
		pr.Close()
		if gerr := <-done; gerr != nil && err == nil {
			err = gerr
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.SetBytes(size)
	b.ReportMetric(rep.LinesPerSec, "lines/s")
	b.ReportMetric(float64(vmHWM())/(1<<20), "peakRSS-MB")
	b.ReportMetric(float64(ms.Sys)/(1<<20), "goSys-MB")
	b.Logf("%d lines (%d MB) in %s: %.0f lines/s; templates %d, bursts %d (planted %d), unique IPs %d (capped %v), peak RSS %d MB (before %d MB), Go Sys %d MB",
		rep.Lines, rep.Bytes>>20, rep.Elapsed.Round(time.Millisecond), rep.LinesPerSec, rep.TemplatesTotal,
		rep.BurstsTotal, len(s.planted), rep.UniqueIPs, rep.UniqueIPsCapped, vmHWM()>>20, hwmBefore>>20, ms.Sys>>20)
}

// vmHWM returns the peak resident set size of this process (Linux), or 0.
func vmHWM() int64 {
	b, _ := procstat.StatusBytes(0, "VmHWM")
	return b
}

// BenchmarkMiner measures the miner alone on the loghub OpenSSH messages.
func BenchmarkMiner(b *testing.B) {
	raw, err := os.ReadFile(loghubFile(b, "OpenSSH", ".log"))
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	b.ResetTimer()
	for b.Loop() {
		m := NewMiner(MinerConfig{})
		for _, l := range lines {
			m.Add(l)
		}
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "lines/s")
}
