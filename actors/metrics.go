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
	// requestStages times the steps from a turn's ack to its first LLM
	// request, by stage.
	requestStages *prometheus.HistogramVec
}

// Request stages of a turn (faultmaven_turn_request_stage_seconds), from
// the ack to the first request's egress record being durable; the HTTP
// request follows at once.
const (
	stageStart    = "start"    // the ack → the turn actor runs (turns started at their ack only, not queued ones)
	stagePrepare  = "prepare"  // reading the history, evidence digests and knowledge hits
	stageAssemble = "assemble" // building the prompt and pseudonymising it
	stageAudit    = "audit"    // writing and syncing the egress record
)

// turnClock carries a turn's timestamps to the stages it times; all but
// acked are touched only on the turn's goroutine. spawnTurn makes one for
// every turn.
type turnClock struct {
	m     *caseMetrics
	acked time.Time // zero for a turn that waited in the queue
	ready time.Time // the agent's input is ready (zero until then)
}

func (c *turnClock) observe(stage string, d time.Duration) {
	c.m.requestStages.WithLabelValues(stage).Observe(d.Seconds())
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
		requestStages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "faultmaven_turn_request_stage_seconds",
			Help: "Steps of a turn from its ack to its first LLM request, by stage: start (ack to the turn running; not for queued turns), " +
				"prepare (history, evidence, knowledge), assemble (prompt and pseudonymisation), audit (the egress record, synced).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16)}, []string{"stage"}),
	}
	if reg != nil {
		reg.MustRegister(m.active, m.activations, m.passivations, m.restarts, m.degraded, m.eventsAppended,
			m.turnsFailed, m.slowSubscribers, m.tokenUsage, m.ackStages, m.requestStages)
	}
	return m
}
