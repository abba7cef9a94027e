package gateway

import (
	"fmt"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/gateway/ws"
	"github.com/faultmaven/faultmaven/gateway/ws/wstest"
)

// go test -run '^$' -bench WS -benchtime 200x ./gateway/
//
// Both ends run in this process on loopback, so the numbers include the
// client's costs; the store is Pebble on an in-memory filesystem (no fsync).
// The frame decoder's and encoder's micro-benchmarks are in gateway/ws.

// BenchmarkWSTurnAck is one turn frame → its ack (the user message
// durable), on a subscribed connection while earlier turns stream.
func BenchmarkWSTurnAck(b *testing.B) {
	e := newLiveEnv(b, Config{}, func(o *liveOption) {
		o.tune = func(c *ws.Config) { c.Limits.Rate, c.Limits.Burst = 1e9, 1e9 }
	})
	tok := e.register("bench").AccessToken
	id := e.newCase(tok)
	c := e.connect(tok)
	c.Subscribe(id, 0)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		c.Send(wstest.TurnFrame(id, fmt.Sprintf("bench-%d", i), "ping the database"))
		for f := c.Next(); f.Type != "ack"; f = c.Next() {
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkWSIdleConnections is the heap an authenticated, idle connection
// costs (server and client side together).
func BenchmarkWSIdleConnections(b *testing.B) {
	e := newLiveEnv(b, Config{WSMaxConnsPerUser: 1 << 20})
	tok := e.register("bench").AccessToken
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	conns := make([]*wsClient, 0, b.N)
	for range b.N {
		conns = append(conns, e.connect(tok))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heap-B/conn")
	b.ReportMetric(float64(runtime.NumGoroutine()-goroutines)/float64(b.N), "goroutines/conn")
	for _, c := range conns {
		_ = c.Conn.Close()
	}
}
