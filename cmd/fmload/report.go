package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/faultmaven/faultmaven/internal/procstat"
)

// The report: the JSON file and the table on stdout.

// Targets the numbers are held to.
const (
	maxP99Ratio      = 1.5
	maxIdleConnBytes = 30 << 10 // 30 KiB of RSS per idle connection
)

type report struct {
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Command    []string  `json:"command"`
	Machine    machine   `json:"machine"`
	Config     config    `json:"config"`
	Results    []result  `json:"results"`
	Ratios     []ratios  `json:"p99_ratios_server_over_floor"`
	// RatiosDurable compares with the floor that syncs as the server does:
	// what is left of the gap is not the price of durability. It is
	// informative; no target is held to it.
	RatiosDurable []ratios `json:"p99_ratios_server_over_durable_floor,omitempty"`
	Misses        []string `json:"missed_targets"`
	Errors        []string `json:"errors,omitempty"`
}

type machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	MemTotal   string `json:"mem_total"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	LoadAvg    string `json:"loadavg_start"`
	LoadAvgEnd string `json:"loadavg_end"`
}

// ratios is server p99 / a floor's p99 at one session count.
type ratios struct {
	Sessions int     `json:"sessions"`
	Ack      float64 `json:"turn_to_ack"`
	LLM      float64 `json:"turn_to_llm_request"`
	Delta    float64 `json:"chunk_to_delta"`
}

func newReport(cfg config) *report {
	return &report{StartedAt: time.Now().UTC(), Command: os.Args, Config: cfg, Machine: machineInfo()}
}

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadAvg: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadAvg() string {
	l, err := procstat.LoadAverage()
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2])
}

// find returns the result of target at n sessions.
func (r *report) find(target string, n int) *result {
	for i := range r.Results {
		if r.Results[i].Target == target && r.Results[i].Sessions == n {
			return &r.Results[i]
		}
	}
	return nil
}

// finish computes the ratios and lists every missed target.
func (r *report) finish() {
	r.FinishedAt = time.Now().UTC()
	r.Machine.LoadAvgEnd = loadAvg()
	r.Ratios, r.RatiosDurable, r.Misses = nil, nil, nil
	miss := func(format string, args ...any) { r.Misses = append(r.Misses, fmt.Sprintf(format, args...)) }
	for _, n := range r.Config.Sessions {
		s, f, d := r.find(targetServer, n), r.find(targetFloor, n), r.find(targetFloorDurable, n)
		if s != nil && d != nil {
			r.RatiosDurable = append(r.RatiosDurable, p99Ratios(n, s, d))
		}
		if s != nil && f != nil {
			q := p99Ratios(n, s, f)
			r.Ratios = append(r.Ratios, q)
			for _, c := range []struct {
				name string
				v    float64
			}{{"turn → ack", q.Ack}, {"turn → LLM request", q.LLM}, {"chunk → delta", q.Delta}} {
				if c.v > maxP99Ratio {
					miss("N=%d: %s p99 is %.2f× the floor (target ≤ %.1f×)", n, c.name, c.v, maxP99Ratio)
				}
			}
		}
		// Every target measured must have run soundly, a floor included:
		// one that failed turns or shared its cores is no reference.
		for _, res := range []*result{s, f, d} {
			if res == nil {
				continue
			}
			if res.Failed > 0 || res.Connected < res.Sessions {
				miss("N=%d %s: %d failed turns, %d/%d connected", n, res.Target, res.Failed, res.Connected, res.Sessions)
			}
			if res.OtherCPU > 25 {
				miss("N=%d %s: other processes used %.0f%% of a core during the run; its latencies are not comparable", n, res.Target, res.OtherCPU)
			}
			if res.PersistenceFailed > 0 {
				miss("N=%d %s: %d exactly-once violations", n, res.Target, res.PersistenceFailed)
			}
		}
		if s != nil && s.RSSPerIdleConn > maxIdleConnBytes {
			miss("N=%d server: %.1f KiB RSS per idle connection (target ≤ %d KiB)", n, s.RSSPerIdleConn/1024, maxIdleConnBytes>>10)
		}
	}
}

// p99Ratios divides the server's p99s by those of the floor ref.
func p99Ratios(n int, s, ref *result) ratios {
	return ratios{Sessions: n, Ack: ratio(s.Ack.P99, ref.Ack.P99), LLM: ratio(s.LLM.P99, ref.LLM.P99),
		Delta: ratio(s.Delta.P99, ref.Delta.P99)}
}

// ratiosAt is the entry of qs for n sessions, or nil.
func ratiosAt(qs []ratios, n int) *ratios {
	for i := range qs {
		if qs[i].Sessions == n {
			return &qs[i]
		}
	}
	return nil
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

func writeReport(path string, r *report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// printReport writes one table per session count.
func printReport(w io.Writer, r *report) {
	fmt.Fprintf(w, "fmload: %d CPU (%s), %s, load %s → %s; %s active per phase, LLM TTFT %s at %g tokens/s, %d tokens of %d chars\n",
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Go, r.Machine.LoadAvg, r.Machine.LoadAvgEnd,
		r.Config.Duration, r.Config.TTFT, r.Config.TPS, r.Config.ReplyTokens, r.Config.ChunkChars)
	for _, n := range r.Config.Sessions {
		var cols []*result
		for _, t := range r.Config.Targets {
			if res := r.find(t, n); res != nil {
				cols = append(cols, res)
			}
		}
		if len(cols) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nN = %d sessions\n", n)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := "\t"
		for _, c := range cols {
			head += c.Target + " p50\t" + c.Target + " p99\t"
		}
		// The server's p99 over each floor's, when both were measured.
		var qs []*ratios
		q, qd := ratiosAt(r.Ratios, n), ratiosAt(r.RatiosDurable, n)
		switch {
		case q != nil && qd != nil:
			head += "p99 / floor\tp99 / durable\t"
			qs = []*ratios{q, qd}
		case q != nil:
			head += "p99 ratio\t"
			qs = []*ratios{q}
		case qd != nil:
			head += "p99 / durable\t"
			qs = []*ratios{qd}
		}
		fmt.Fprintln(tw, head)
		lat := func(name string, get func(*result) latency, qv func(ratios) float64) {
			line := fmt.Sprintf("%-26s\t", name)
			for _, c := range cols {
				l := get(c)
				line += fmt.Sprintf("%.2f ms\t%.2f ms\t", l.P50, l.P99)
			}
			for _, q := range qs {
				line += fmt.Sprintf("%.2f×\t", qv(*q))
			}
			fmt.Fprintln(tw, line)
		}
		lat("turn → durable ack", func(x *result) latency { return x.Ack }, func(q ratios) float64 { return q.Ack })
		if hasServerAck(cols) {
			line := fmt.Sprintf("%-26s\t", "… server frame → ack")
			for _, c := range cols {
				if c.ServerAck != nil {
					line += fmt.Sprintf("%.2f ms\t%.2f ms\t", c.ServerAck.P50, c.ServerAck.P99)
				} else {
					line += "\t\t"
				}
			}
			for range qs { // empty ratio cells keep the columns aligned
				line += "\t"
			}
			fmt.Fprintln(tw, line)
		}
		lat("turn → LLM request", func(x *result) latency { return x.LLM }, func(q ratios) float64 { return q.LLM })
		lat("LLM chunk → client delta", func(x *result) latency { return x.Delta }, func(q ratios) float64 { return q.Delta })
		row := func(name string, val func(*result) string) {
			line := fmt.Sprintf("%-26s\t", name)
			for _, c := range cols {
				line += val(c) + "\t\t"
			}
			fmt.Fprintln(tw, line)
		}
		row("turns/s", func(x *result) string { return fmt.Sprintf("%.1f", x.TurnsPerSec) })
		row("turns completed", func(x *result) string { return fmt.Sprint(x.Turns) })
		row("failed turns", func(x *result) string { return fmt.Sprint(x.Failed) })
		row("connected / lost", func(x *result) string { return fmt.Sprintf("%d / %d", x.Connected, x.LostConns) })
		row("RSS / idle conn", func(x *result) string { return kib(x.RSSPerIdleConn) })
		row("RSS / active conn", func(x *result) string { return kib(x.RSSPerActiveConn) })
		row("… net of free heap", func(x *result) string { return kib(x.NetRSSPerIdleConn) })
		row("generator CPU", func(x *result) string { return fmt.Sprintf("%.0f%%", x.GeneratorCPU) })
		row("target CPU", func(x *result) string { return fmt.Sprintf("%.0f%%", x.TargetCPU) })
		row("target CPU / turn", func(x *result) string {
			if x.Turns == 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.2f ms", x.TargetCPU/100*x.ActiveSec*1000/float64(x.Turns))
		})
		row("LLM request size", func(x *result) string { return kib(x.LLMRequestBytes) })
		row("other processes' CPU", func(x *result) string { return fmt.Sprintf("%.0f%%", x.OtherCPU) })
		row("exactly-once", func(x *result) string {
			if x.Persistence == nil {
				return "n/a"
			}
			if v := x.PersistenceFailed; v > 0 {
				return fmt.Sprintf("%d VIOLATIONS", v)
			}
			return fmt.Sprintf("ok (%d acked)", x.Persistence.Acked)
		})
		_ = tw.Flush()
		for _, c := range cols {
			if len(c.FailReasons) > 0 || c.FirstError != "" {
				fmt.Fprintf(w, "  %s failures: %v; first error: %s\n", c.Target, c.FailReasons, c.FirstError)
			}
			if c.TargetWarnings > 0 {
				fmt.Fprintf(w, "  %s logged %d warnings or errors (see the JSON for the last lines)\n", c.Target, c.TargetWarnings)
			}
		}
	}
	fmt.Fprintln(w)
	if len(r.Misses) == 0 && len(r.Errors) == 0 {
		fmt.Fprintln(w, "all targets met")
	}
	for _, m := range r.Misses {
		fmt.Fprintln(w, "MISSED:", m)
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, "ERROR:", e)
	}
}

// hasServerAck reports whether a column read the server's own ack
// histogram.
func hasServerAck(cols []*result) bool {
	for _, c := range cols {
		if c.ServerAck != nil {
			return true
		}
	}
	return false
}

func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }
