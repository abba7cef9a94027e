package actors

import (
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/prometheus/client_golang/prometheus"
)

type caseMetrics struct {
	active          prometheus.Gauge
	activations     prometheus.Counter
	passivations    prometheus.Counter
	restarts        prometheus.Counter
	degraded        prometheus.Counter
	eventsAppended  prometheus.Counter
	turnsFailed     prometheus.Counter
	slowSubscribers prometheus.Counter
	tokenUsage      *prometheus.CounterVec
	// ackStages times the steps of a turn before its ack, by stage.
	ackStages *prometheus.HistogramVec
}

// Ack stages of a turn (faultmaven_turn_ack_stage_seconds).
const (
	stageRoute = "route" // the gateway read it → the case actor takes it
	stageApply = "apply" // building and applying the user message's batch
	stageSync  = "sync"  // waiting for the batch to be durable
)

func (m *caseMetrics) stage(name string, d time.Duration) {
	m.ackStages.WithLabelValues(name).Observe(d.Seconds())
}

func (m *caseMetrics) tokens(provider string, u llm.Usage) {
	if provider == "" {
		provider = "none"
	}
	m.tokenUsage.WithLabelValues(provider, "prompt").Add(float64(u.PromptTokens))
	m.tokenUsage.WithLabelValues(provider, "completion").Add(float64(u.CompletionTokens))
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
		turnsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultmaven_turns_failed_total", Help: "Agent turns that ended in turn_failed."}),
		slowSubscribers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultmaven_case_subscribers_dropped_total", Help: "Subscribers dropped because they could not keep up."}),
		tokenUsage: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faultmaven_llm_tokens_total", Help: "LLM tokens used, by provider and kind (prompt or completion)."},
			[]string{"provider", "kind"}),
		ackStages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "faultmaven_turn_ack_stage_seconds",
			Help:    "Steps of a turn before its ack, by stage: route (gateway to case actor), apply (the user message's batch), sync (waiting for durability).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16)}, []string{"stage"}),
	}
	if reg != nil {
		reg.MustRegister(m.active, m.activations, m.passivations, m.restarts, m.degraded, m.eventsAppended,
			m.turnsFailed, m.slowSubscribers, m.tokenUsage, m.ackStages)
	}
	return m
}
