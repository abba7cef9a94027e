package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain lets the test binary stand in for fmload when the floor target
// starts "<binary> relay …" as a subprocess.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "relay" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3), 0.5, 2 * time.Millisecond},
		{"median of even is the lower", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 0.50, 50 * time.Millisecond},
		{"p100", ms(hundred...), 1, 100 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.samples, tc.q); got != tc.want {
				t.Fatalf("percentile(%v, %v) = %v, want %v", tc.samples, tc.q, got, tc.want)
			}
		})
	}
	got := summarize(ms(5, 1, 4, 2, 3))
	if want := (latency{N: 5, P50: 3, P99: 5, Max: 5}); got != want {
		t.Fatalf("summarize = %+v, want %+v", got, want)
	}
}

func TestChunkAttribution(t *testing.T) {
	p := pacing{TTFT: 100 * time.Millisecond, TPS: 10, ChunkChars: 4, Chunks: 5}
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// Chunk i is written at t0 + 100ms + i*100ms.
	seen := []deltaSeen{
		{at(105 * time.Millisecond), 0},  // chunk 0 alone: 5 ms
		{at(350 * time.Millisecond), 4},  // chunks 1..2 together: attributed to chunk 1 (200 ms)
		{at(390 * time.Millisecond), 12}, // chunk 3, received before its schedule: 0, never negative
		{at(520 * time.Millisecond), 18}, // mid-chunk 4 (a target that splits chunks): 20 ms
		{at(600 * time.Millisecond), 20}, // past the reply: text the target added, ignored
	}
	got := p.deltaLatencies(t0, seen, nil)
	want := []time.Duration{5 * time.Millisecond, 150 * time.Millisecond, 0, 20 * time.Millisecond}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("deltaLatencies = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		off  int
		want int
		ok   bool
	}{{0, 0, true}, {3, 0, true}, {4, 1, true}, {19, 4, true}, {20, 0, false}, {-1, 0, false}} {
		if i, ok := p.chunkOf(tc.off); i != tc.want || ok != tc.ok {
			t.Errorf("chunkOf(%d) = %d, %v; want %d, %v", tc.off, i, ok, tc.want, tc.ok)
		}
	}
	if text := replyText(p.Chunks, p.ChunkChars); len(text) != 20 || text[:8] != "aaa bbb " {
		t.Fatalf("replyText = %q", text)
	}
}

func TestCheckExactlyOnce(t *testing.T) {
	sent := []sentTurn{
		{Text: "once", Acked: true},
		{Text: "lost", Acked: true},
		{Text: "twice", Acked: true},
		{Text: "unacked twice"},
		{Text: "unacked once"},
		{Text: "unacked never"},
	}
	msgs := []message{
		{"user", "once"}, {"assistant", "once"}, // an answer quoting the turn is not a user message
		{"user", "twice"}, {"assistant", "x"}, {"user", "twice"},
		{"user", "unacked twice"}, {"user", "unacked twice"},
		{"user", "unacked once"},
		{"user", "from nowhere"},
	}
	got := checkExactlyOnce(sent, msgs)
	want := persistence{Cases: 1, Acked: 3, Missing: 1, Duplicated: 1, UnackedDuplicated: 1, UnackedPersisted: 1, Unexpected: 1}
	if got != want {
		t.Fatalf("checkExactlyOnce = %+v, want %+v", got, want)
	}
	if got.Violations() != 4 {
		t.Fatalf("Violations = %d, want 4", got.Violations())
	}
	clean := checkExactlyOnce(sent[:1], msgs[:2])
	if clean.Violations() != 0 {
		t.Fatalf("a clean case has violations: %+v", clean)
	}
}

func TestParsers(t *testing.T) {
	if k := turnKey("see fmload-p1-s17-k3 for the trace"); k != "fmload-p1-s17-k3" {
		t.Errorf("turnKey = %q", k)
	}
	if k := turnKey("no key, fmload- alone"); k != "" {
		t.Errorf("turnKey of a bare prefix = %q", k)
	}
	addr, ok := servingAddr([]byte(`{"level":"info","msg":"faultmaven serving","addr":"127.0.0.1:4321","data":"/tmp/x"}`))
	if !ok || addr != "127.0.0.1:4321" {
		t.Errorf("servingAddr = %q, %v", addr, ok)
	}
	if _, ok := servingAddr([]byte(`{"msg":"ws closed","close_reason":"serving"}`)); ok {
		t.Error("servingAddr accepted a line that only mentions serving")
	}
	cpu, err := parseStatCPU("4242 (fault maven) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 30")
	if err != nil || cpu != 3*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 3s", cpu, err)
	}
	table := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n" +
		"   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0\n" +
		"   2: 0100007F:1F92 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n"
	if got := parseListening(table, map[string]bool{"111": true}); fmt.Sprint(got) != "[127.0.0.1:8080]" {
		t.Errorf("parseListening = %v", got)
	}
	m, err := parseGoMemory(strings.NewReader("# HELP x\ngo_memstats_heap_inuse_bytes 2.5e+06\n" +
		"go_memstats_stack_inuse_bytes 500000\ngo_memstats_heap_idle_bytes 1e6\ngo_memstats_heap_released_bytes 400000\n"))
	if err != nil || m.used() != 3_000_000 || m.reusable() != 600_000 {
		t.Errorf("parseGoMemory = %+v, %v", m, err)
	}
	if _, err := parseCounts("10,0"); err == nil {
		t.Error("parseCounts accepted 0 sessions")
	}
	if _, err := parseTargets("server,elsewhere"); err == nil {
		t.Error("parseTargets accepted an unknown target")
	}
	if got, err := parseTargets("floor-durable, server,floor-durable"); err != nil || fmt.Sprint(got) != "[floor-durable server]" {
		t.Errorf("parseTargets = %v, %v", got, err)
	}
}

// smallBench runs the whole harness, small, against one relay target
// (this test binary started as "relay"); inspect, if set, sees
// floor-durable's log directory before it is removed.
func smallBench(t *testing.T, target string, inspect func(dir string)) *report {
	t.Helper()
	cfg := config{
		Sessions: []int{5}, Targets: []string{target}, Duration: 2 * time.Second,
		TTFT: 50 * time.Millisecond, TPS: 100, ReplyTokens: 10, ChunkChars: 4, SessionsPerUser: 2,
		Think: 100 * time.Millisecond, TurnTimeout: 10 * time.Second, Idle: 200 * time.Millisecond,
		Deadline: time.Minute, Seed: 1, inspectDurableLog: inspect,
	}
	t.Logf("seed %d", cfg.Seed)
	var log bytes.Buffer
	rep, err := runBench(context.Background(), cfg, &log)
	if err != nil {
		t.Fatalf("runBench: %v\n%s", err, log.String())
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want 1", len(rep.Results))
	}
	checkRelayResult(t, rep.Results[0])
	return rep
}

// checkRelayResult holds a small relay run to turns, latencies and no
// failures.
func checkRelayResult(t *testing.T, r result) {
	t.Helper()
	switch {
	case r.Connected != 5 || r.Users != 3:
		t.Errorf("connected %d sessions of %d users, want 5 of 3", r.Connected, r.Users)
	case r.Failed != 0 || r.LostConns != 0:
		t.Errorf("failed turns %d (%v), lost %d: %s", r.Failed, r.FailReasons, r.LostConns, r.FirstError)
	case r.Turns < 5:
		t.Errorf("only %d turns in 2s", r.Turns)
	case r.Ack.N < r.Turns || r.LLM.N < r.Turns:
		t.Errorf("samples: %d acks, %d LLM requests for %d turns", r.Ack.N, r.LLM.N, r.Turns)
	case r.Delta.N < r.Turns: // at least one delta frame per turn
		t.Errorf("%d delta samples for %d turns", r.Delta.N, r.Turns)
	case r.Ack.P50 <= 0 || r.LLM.P50 <= 0 || r.Ack.P99 < r.Ack.P50:
		t.Errorf("implausible latencies: ack %+v, llm %+v", r.Ack, r.LLM)
	case r.TurnsPerSec <= 0 || r.RSSIdle <= 0 || r.Persistence != nil:
		t.Errorf("turns/s %v, idle RSS %d, persistence %+v", r.TurnsPerSec, r.RSSIdle, r.Persistence)
	case r.UntaggedLLM != 0 || r.RepeatedLLM != 0:
		t.Errorf("LLM requests: %d untagged, %d repeated", r.UntaggedLLM, r.RepeatedLLM)
	}
}

// checkOnlyBusyMisses fails on any miss but the warning that, on a busy
// machine, others competed for the cores.
func checkOnlyBusyMisses(t *testing.T, rep *report) {
	t.Helper()
	for _, m := range rep.Misses {
		if !strings.Contains(m, "other processes used") {
			t.Errorf("missed: %s", m)
		}
	}
}

// TestRelayWorkload runs the whole harness, small, against the floor
// relay: the plumbing from frames to the report must yield turns,
// latencies and no failures.
func TestRelayWorkload(t *testing.T) {
	defer goleak.VerifyNone(t)
	rep := smallBench(t, targetFloor, nil)
	// A floor-only run has no ratios, and misses nothing but, on a busy
	// machine, the warning that others competed for the cores.
	if len(rep.Ratios) != 0 {
		t.Errorf("ratios %v", rep.Ratios)
	}
	checkOnlyBusyMisses(t, rep)

	var table bytes.Buffer
	printReport(&table, rep)
	for _, want := range []string{"N = 5 sessions", "floor p99", "turn → durable ack", "other processes' CPU"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	path := filepath.Join(t.TempDir(), "bench.json")
	if err := writeReport(path, rep); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Config struct {
			Duration string `json:"duration"`
		} `json:"config"`
		Results []result `json:"results"`
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &back)
	}
	if err != nil || len(back.Results) != 1 || back.Config.Duration != "2s" {
		t.Fatalf("JSON report does not read back (%v): %s", err, data)
	}
}

// TestDurableRelayWorkload runs the harness against floor-durable: the
// relay with --durable must serve the same workload without failures, and
// its log, read after the relay stopped, must hold every turn exactly
// once: the user message, then its answer at the next seq.
func TestDurableRelayWorkload(t *testing.T) {
	defer goleak.VerifyNone(t)
	var recs []logRecord
	var readErr error
	var dirs []string
	rep := smallBench(t, targetFloorDurable, func(dir string) {
		dirs = append(dirs, dir)
		recs, readErr = readRelayLog(filepath.Join(dir, relayLogName))
	})
	if len(dirs) != 1 || readErr != nil {
		t.Fatalf("log directories %v: %v", dirs, readErr)
	}
	if _, err := os.Stat(dirs[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("log directory left behind: %v", err)
	}
	r := rep.Results[0]
	if r.Target != targetFloorDurable {
		t.Fatalf("target %q", r.Target)
	}
	checkTurnsLogged(t, recs, r.Turns, replyText(rep.Config.ReplyTokens, rep.Config.ChunkChars))
	if len(rep.Ratios) != 0 || len(rep.RatiosDurable) != 0 {
		t.Errorf("ratios without a server: %v, %v", rep.Ratios, rep.RatiosDurable)
	}
	checkOnlyBusyMisses(t, rep)
	var table bytes.Buffer
	printReport(&table, rep)
	if !strings.Contains(table.String(), "floor-durable p99") {
		t.Errorf("table lacks the floor-durable column:\n%s", table.String())
	}
}

// checkTurnsLogged checks a relay log against a run of turns that all
// completed: per case, a user record at an odd seq (a turn key seen
// nowhere else), the LLM request carrying that key at the same seq, and
// the answer at the next seq.
func checkTurnsLogged(t *testing.T, recs []logRecord, turns int, answer string) {
	t.Helper()
	if len(recs) != 3*turns {
		t.Fatalf("%d records for %d turns, want a user message, a request and an answer each", len(recs), turns)
	}
	requested := map[string]bool{} // cases whose pending turn's request is logged
	lastSeq := map[string]uint64{}
	keys := map[string]bool{}
	pending := map[string]bool{} // cases whose user message awaits its answer
	for i, rec := range recs {
		switch rec.Kind {
		case recordUser:
			key := turnKey(rec.Text)
			if pending[rec.CaseID] || rec.Seq != lastSeq[rec.CaseID]+1 || key == "" || keys[key] {
				t.Fatalf("record %d: user message %+v out of place (last seq %d, key %q seen: %v)",
					i, rec, lastSeq[rec.CaseID], key, keys[key])
			}
			keys[key], pending[rec.CaseID], requested[rec.CaseID] = true, true, false
		case recordRequest:
			if !pending[rec.CaseID] || requested[rec.CaseID] || rec.Seq != lastSeq[rec.CaseID] || turnKey(rec.Text) == "" || !keys[turnKey(rec.Text)] {
				t.Fatalf("record %d: request %+v out of place (last seq %d)", i, rec, lastSeq[rec.CaseID])
			}
			requested[rec.CaseID] = true
			continue // the request shares the user message's seq
		case recordAnswer:
			if !pending[rec.CaseID] || !requested[rec.CaseID] || rec.Seq != lastSeq[rec.CaseID]+1 || rec.Text != answer {
				t.Fatalf("record %d: answer %+v out of place (last seq %d)", i, rec, lastSeq[rec.CaseID])
			}
			pending[rec.CaseID] = false
		default:
			t.Fatalf("record %d: %+v, kind %q", i, rec, rec.Kind)
		}
		lastSeq[rec.CaseID] = rec.Seq
	}
	for caseID, open := range pending {
		if open {
			t.Errorf("case %s: a user message without its answer", caseID)
		}
	}
	if len(keys) != turns {
		t.Errorf("%d turns logged, %d completed", len(keys), turns)
	}
}

// TestReportDurableFloor checks the ratios to both floors: those to the
// floor are held to maxP99Ratio, those to floor-durable only reported, and
// the table shows both.
func TestReportDurableFloor(t *testing.T) {
	res := func(target string, ack, llm, delta float64) result {
		return result{Target: target, Sessions: 10, Connected: 10,
			Ack: latency{P50: ack / 2, P99: ack}, LLM: latency{P50: llm / 2, P99: llm}, Delta: latency{P50: delta / 2, P99: delta}}
	}
	rep := &report{
		Config: config{Sessions: []int{10}, Targets: []string{targetServer, targetFloor, targetFloorDurable}},
		Results: []result{
			res(targetServer, 3, 3, 1),
			res(targetFloor, 1, 1, 1),
			res(targetFloorDurable, 1.5, 1.2, 0.5),
		},
	}
	rep.Results[0].ServerAck = &histLatency{N: 40, P50: 0.61, P99: 1.87}
	rep.finish()
	if want := []ratios{{Sessions: 10, Ack: 3, LLM: 3, Delta: 1}}; fmt.Sprint(rep.Ratios) != fmt.Sprint(want) {
		t.Errorf("ratios to the floor %v, want %v", rep.Ratios, want)
	}
	if want := []ratios{{Sessions: 10, Ack: 2, LLM: 2.5, Delta: 2}}; fmt.Sprint(rep.RatiosDurable) != fmt.Sprint(want) {
		t.Errorf("ratios to the durable floor %v, want %v", rep.RatiosDurable, want)
	}
	// Ack and LLM request miss against the floor; the durable floor's
	// ratios, all above maxP99Ratio, add nothing.
	if len(rep.Misses) != 2 || !strings.Contains(rep.Misses[0], "turn → ack p99 is 3.00× the floor") {
		t.Errorf("misses %q", rep.Misses)
	}
	var table bytes.Buffer
	printReport(&table, rep)
	for _, want := range []string{"floor-durable p50", "floor-durable p99", "p99 / floor", "p99 / durable", "3.00×", "2.50×",
		"… server frame → ack", "0.61 ms", "1.87 ms"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	t.Logf("\n%s", table.String())
	b, err := json.Marshal(rep)
	if err != nil || !strings.Contains(string(b), `"p99_ratios_server_over_durable_floor":[{"sessions":10,"turn_to_ack":2,`) ||
		!strings.Contains(string(b), `"server_frame_to_ack":{"n":40,"p50_ms":0.61,"p99_ms":1.87}`) || strings.Count(string(b), "server_frame_to_ack") != 1 {
		t.Errorf("JSON: %v %s", err, b)
	}
}

func TestParseHistogramAndQuantile(t *testing.T) {
	text := "# HELP faultmaven_ws_ack_seconds x\n# TYPE faultmaven_ws_ack_seconds histogram\n" +
		`faultmaven_ws_ack_seconds_bucket{le="0.001"} 50` + "\n" +
		`faultmaven_ws_ack_seconds_bucket{le="0.002"} 90` + "\n" +
		`faultmaven_ws_ack_seconds_bucket{le="0.004"} 100` + "\n" +
		`faultmaven_ws_ack_seconds_bucket{le="+Inf"} 100` + "\n" +
		"faultmaven_ws_ack_seconds_sum 0.1\nfaultmaven_ws_ack_seconds_count 100\n" +
		`faultmaven_ws_ack_seconds_other_bucket{le="1"} 7` + "\n"
	h, err := parseHistogram(strings.NewReader(text), "faultmaven_ws_ack_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if h.total() != 100 || len(h.le) != 4 {
		t.Fatalf("histogram %+v", h)
	}
	for _, c := range []struct{ q, want float64 }{
		{0.5, 0.001},   // the 50th observation closes the first bucket
		{0.25, 0.0005}, // halfway through the first bucket, from 0
		{0.7, 0.0015},  // halfway through the second
		{0.95, 0.003},  // halfway through the third
		{0.99, 0.0038}, // 9 of 10 through the third
		{1, 0.004},     // the last observation
	} {
		if got := h.quantile(c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	// Observations past the last finite bound report that bound.
	inf, err := parseHistogram(strings.NewReader(`x_bucket{le="1"} 1`+"\n"+`x_bucket{le="+Inf"} 10`+"\n"), "x")
	if err != nil || inf.quantile(0.99) != 1 {
		t.Errorf("quantile in +Inf: %v, %v", inf.quantile(0.99), err)
	}
	empty, err := parseHistogram(strings.NewReader(`x_bucket{le="+Inf"} 0`+"\n"), "x")
	if err != nil || empty.quantile(0.5) != 0 {
		t.Errorf("empty histogram: %v, %v", empty.quantile(0.5), err)
	}
	for name, bad := range map[string]string{
		"missing":      "y_bucket{le=\"+Inf\"} 1\n",
		"no +Inf":      `x_bucket{le="1"} 1` + "\n",
		"out of order": `x_bucket{le="2"} 1` + "\n" + `x_bucket{le="1"} 2` + "\n" + `x_bucket{le="+Inf"} 2` + "\n",
		"count falls":  `x_bucket{le="1"} 5` + "\n" + `x_bucket{le="+Inf"} 4` + "\n",
		"bad count":    `x_bucket{le="1"} many` + "\n" + `x_bucket{le="+Inf"} 4` + "\n",
		"NaN bound":    `x_bucket{le="NaN"} 1` + "\n" + `x_bucket{le="+Inf"} 4` + "\n",
		"labels":       `x_bucket{le="1",space="a"} 1` + "\n" + `x_bucket{le="+Inf"} 1` + "\n",
		"negative":     `x_bucket{le="1"} -1` + "\n" + `x_bucket{le="+Inf"} 1` + "\n",
	} {
		if h, err := parseHistogram(strings.NewReader(bad), "x"); err == nil {
			t.Errorf("%s: accepted as %+v", name, h)
		}
	}
}

// FuzzParseHistogram: any text either fails to parse or gives quantiles
// that rise with q and stay within [0, the largest finite bound].
func FuzzParseHistogram(f *testing.F) {
	f.Add(`x_bucket{le="0.001"} 50` + "\n" + `x_bucket{le="0.002"} 90` + "\n" + `x_bucket{le="+Inf"} 100` + "\n")
	f.Add(`x_bucket{le="+Inf"} 0` + "\n")
	f.Add(`x_bucket{le="1e-3"} 1e3` + "\n" + `x_bucket{le="+Inf"} 1e3` + "\n")
	f.Fuzz(func(t *testing.T, text string) {
		h, err := parseHistogram(strings.NewReader(text), "x")
		if err != nil {
			return
		}
		maxFinite := 0.0
		for _, le := range h.le {
			if !math.IsInf(le, 1) {
				maxFinite = math.Max(maxFinite, le)
			}
		}
		prev := math.Inf(-1)
		for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 1} {
			v := h.quantile(q)
			if math.IsNaN(v) || v < 0 || v < prev-1e-9*math.Abs(prev) || v > maxFinite {
				t.Fatalf("quantile(%v) = %v after %v; buckets %+v", q, v, prev, h)
			}
			prev = v
		}
	})
}
