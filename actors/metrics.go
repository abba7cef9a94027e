package actors

import "github.com/prometheus/client_golang/prometheus"

type caseMetrics struct {
	active         prometheus.Gauge
	activations    prometheus.Counter
	passivations   prometheus.Counter
	restarts       prometheus.Counter
	degraded       prometheus.Counter
	eventsAppended prometheus.Counter
}

func newCaseMetrics(reg prometheus.Registerer) *caseMetrics {
	m := &caseMetrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faultmaven_case_actors_active", Help: "Case actors currently active in memory."}),
		activations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultmaven_case_activations_total", Help: "Case actors started (rehydrated) on demand."}),
		passivations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultmaven_case_passivations_total", Help: "Case actors stopped after being idle or deleted."}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultmaven_case_actor_restarts_total", Help: "Case actor restarts after a panic."}),
		degraded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultmaven_case_degraded_total", Help: "Cases marked degraded after repeated panics."}),
		eventsAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultmaven_case_events_appended_total", Help: "Case events durably appended."}),
	}
	if reg != nil {
		reg.MustRegister(m.active, m.activations, m.passivations, m.restarts, m.degraded, m.eventsAppended)
	}
	return m
}
