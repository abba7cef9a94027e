package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the gateway's Prometheus series. Labels are bounded: the
// route is chi's pattern (never the raw path) and unknown methods fold into
// "OTHER".
type httpMetrics struct {
	latency *prometheus.HistogramVec
	panics  prometheus.Counter
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
	m := &httpMetrics{}
	var err error
	if m.latency, err = register(reg, latency); err != nil {
		return nil, err
	}
	if m.panics, err = register(reg, panics); err != nil {
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
