package main

import (
	"math"
	"slices"
	"time"
)

// Pure measurement helpers: percentiles, which LLM chunk a delta frame
// carries, and the exactly-once check of a persisted conversation.

// latency summarises one kind of latency sample, in milliseconds.
type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// histLatency is a latency read from a target's histogram: p50 and p99
// interpolated within buckets, so less exact than latency's.
type histLatency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

// percentile is the nearest-rank percentile (0 < q ≤ 1) of sorted samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// summarize sorts ds in place and summarises it.
func summarize(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	slices.Sort(ds)
	return latency{
		N:   len(ds),
		P50: ms(percentile(ds, 0.50)),
		P99: ms(percentile(ds, 0.99)),
		Max: ms(ds[len(ds)-1]),
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// pacing is how the fake LLM streams every reply: chunk i is written at
// arrival + TTFT + i/TPS and holds ChunkChars characters (ASCII).
type pacing struct {
	TTFT       time.Duration
	TPS        float64
	ChunkChars int
	Chunks     int
}

// chunkAt is the scheduled write time of chunk i of a reply whose request
// arrived at arrival.
func (p pacing) chunkAt(arrival time.Time, i int) time.Time {
	t := arrival.Add(p.TTFT)
	if p.TPS > 0 {
		t = t.Add(time.Duration(float64(i) * float64(time.Second) / p.TPS))
	}
	return t
}

// chunkOf names the chunk holding character offset off of the reply; ok is
// false past the reply's end (text the target added on its own).
func (p pacing) chunkOf(off int) (int, bool) {
	if off < 0 || p.ChunkChars <= 0 || off >= p.ChunkChars*p.Chunks {
		return 0, false
	}
	return off / p.ChunkChars, true
}

// deltaSeen is one delta frame as the client received it: when, and the
// reply offset of its first character.
type deltaSeen struct {
	at  time.Time
	off int
}

// deltaLatencies attributes each delta frame to the first chunk it carries
// and returns frame receipt minus that chunk's scheduled write time. A
// frame carrying chunks i..j therefore counts once, at chunk i's age.
func (p pacing) deltaLatencies(arrival time.Time, seen []deltaSeen, out []time.Duration) []time.Duration {
	for _, d := range seen {
		i, ok := p.chunkOf(d.off)
		if !ok {
			continue
		}
		out = append(out, max(d.at.Sub(p.chunkAt(arrival, i)), 0))
	}
	return out
}

// sentTurn is a turn the client sent, and whether the target acknowledged
// it (acknowledged means durable on the server).
type sentTurn struct {
	Text  string
	Acked bool
}

// message is the part of a persisted message the check reads.
type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// persistence is the outcome of the exactly-once check; Violations is the
// sum of the counts that must be zero.
type persistence struct {
	Cases             int `json:"cases"`
	Acked             int `json:"acked"`
	Missing           int `json:"acked_missing"`
	Duplicated        int `json:"acked_duplicated"`
	UnackedDuplicated int `json:"unacked_duplicated"`
	UnackedPersisted  int `json:"unacked_persisted"`
	Unexpected        int `json:"unexpected_user_messages"`
	FetchErrors       int `json:"fetch_errors"`
}

// Violations counts what breaks exactly-once.
func (p persistence) Violations() int {
	return p.Missing + p.Duplicated + p.UnackedDuplicated + p.Unexpected + p.FetchErrors
}

func (p *persistence) add(q persistence) {
	p.Cases += q.Cases
	p.Acked += q.Acked
	p.Missing += q.Missing
	p.Duplicated += q.Duplicated
	p.UnackedDuplicated += q.UnackedDuplicated
	p.UnackedPersisted += q.UnackedPersisted
	p.Unexpected += q.Unexpected
	p.FetchErrors += q.FetchErrors
}

// checkExactlyOnce compares one case's turns with its persisted messages:
// every acknowledged turn appears exactly once as a user message, an
// unacknowledged one at most once (it may have become durable just before
// a timeout), and no other user message exists.
func checkExactlyOnce(sent []sentTurn, msgs []message) persistence {
	res := persistence{Cases: 1}
	count := map[string]int{}
	for _, m := range msgs {
		if m.Role == "user" {
			count[m.Content]++
		}
	}
	known := make(map[string]bool, len(sent))
	for _, t := range sent {
		known[t.Text] = true
		n := count[t.Text]
		switch {
		case t.Acked:
			res.Acked++
			if n == 0 {
				res.Missing++
			} else if n > 1 {
				res.Duplicated++
			}
		case n > 1:
			res.UnackedDuplicated++
		case n == 1:
			res.UnackedPersisted++
		}
	}
	for text, n := range count {
		if !known[text] {
			res.Unexpected += n
		}
	}
	return res
}
