package embedpool

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the pool; every method is a no-op on a nil *metrics.
type metrics struct {
	depth    prometheus.Gauge
	batches  prometheus.Histogram
	embedded prometheus.Counter
	busy     prometheus.Counter
	failures prometheus.Counter
	seconds  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		depth: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "faultmaven", Subsystem: "embed",
			Name: "queue_texts", Help: "Texts waiting in the embedding pool's queue."}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "faultmaven", Subsystem: "embed",
			Name: "batch_texts", Help: "Texts per batch handed to an embedder.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64}}),
		embedded: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "faultmaven", Subsystem: "embed",
			Name: "texts_total", Help: "Texts embedded (rate = texts/s)."}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "faultmaven", Subsystem: "embed",
			Name: "busy_rejections_total", Help: "Requests refused because the queue was full."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "faultmaven", Subsystem: "embed",
			Name: "failed_batches_total", Help: "Batches the model failed on."}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "faultmaven", Subsystem: "embed",
			Name: "batch_seconds", Help: "Time an embedder spent on one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	for _, c := range []prometheus.Collector{m.depth, m.batches, m.embedded, m.busy, m.failures, m.seconds} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) queue(n int) {
	if m != nil {
		m.depth.Set(float64(n))
	}
}

func (m *metrics) batch(n int) {
	if m != nil {
		m.batches.Observe(float64(n))
	}
}

func (m *metrics) texts(n int) {
	if m != nil {
		m.embedded.Add(float64(n))
	}
}

func (m *metrics) rejected() {
	if m != nil {
		m.busy.Inc()
	}
}

func (m *metrics) failedBatch() {
	if m != nil {
		m.failures.Inc()
	}
}

func (m *metrics) took(micros int64) {
	if m != nil {
		m.seconds.Observe(float64(micros) / 1e6)
	}
}
