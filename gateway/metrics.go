package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faultmaven/faultmaven/gateway/ws"
)

// httpMetrics are the gateway's Prometheus series. Labels are bounded: the
// route is chi's pattern (never the raw path) and unknown methods fold into
// "OTHER".
type httpMetrics struct {
	latency *prometheus.HistogramVec
	panics  prometheus.Counter

	// WebSocket connections.
	wsActive    prometheus.Gauge
	wsFramesIn  prometheus.Counter
	wsFramesOut prometheus.Counter
	wsCoalesced prometheus.Counter
	wsSlow      prometheus.Counter
	wsRefused   *prometheus.CounterVec
	wsAck       prometheus.Histogram
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "faultmaven",
		Subsystem: "http",
		Name:      "request_duration_seconds",
		Help:      "Time to serve an HTTP request, by method, route pattern and status.",
		Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"method", "route", "status"})
	panics := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "faultmaven",
		Subsystem: "http",
		Name:      "panics_total",
		Help:      "Handler panics recovered by the gateway.",
	})
	ws := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "faultmaven", Subsystem: "ws", Name: name, Help: help})
	}
	m := &httpMetrics{}
	var err error
	if m.latency, err = register(reg, latency); err != nil {
		return nil, err
	}
	if m.panics, err = register(reg, panics); err != nil {
		return nil, err
	}
	if m.wsActive, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "faultmaven", Subsystem: "ws", Name: "connections",
		Help: "Open WebSocket connections (authenticated or not yet).",
	})); err != nil {
		return nil, err
	}
	if m.wsFramesIn, err = register(reg, ws("frames_in_total", "WebSocket frames received from clients.")); err != nil {
		return nil, err
	}
	if m.wsFramesOut, err = register(reg, ws("frames_out_total", "WebSocket frames written to clients.")); err != nil {
		return nil, err
	}
	if m.wsCoalesced, err = register(reg, ws("deltas_coalesced_total", "Delta frames merged into an earlier queued delta because the client was behind.")); err != nil {
		return nil, err
	}
	if m.wsSlow, err = register(reg, ws("slow_consumer_closes_total", "WebSocket connections closed (4008) because their outbound queue overflowed.")); err != nil {
		return nil, err
	}
	if m.wsRefused, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "faultmaven", Subsystem: "ws", Name: "refused_total",
		Help: "WebSocket connections refused or closed before use, by reason.",
	}, []string{"reason"})); err != nil {
		return nil, err
	}
	if m.wsAck, err = register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "faultmaven", Subsystem: "ws", Name: "ack_seconds",
		Help:    "From reading a turn frame to writing its ack (the user message is durable by then).",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
	})); err != nil {
		return nil, err
	}
	return m, nil
}

// register adds c to reg; if an identical collector is already there (two
// servers on one registry) it shares that one.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// wsMetrics are the WebSocket series, for the hub to update.
func (m *httpMetrics) wsMetrics() ws.Metrics {
	return ws.Metrics{
		Connections: m.wsActive, FramesIn: m.wsFramesIn, FramesOut: m.wsFramesOut,
		Coalesced: m.wsCoalesced, SlowCloses: m.wsSlow, Refused: m.wsRefused, AckSeconds: m.wsAck,
	}
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	m.latency.WithLabelValues(methodLabel(method), route, strconv.Itoa(status)).Observe(d.Seconds())
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
