package actors

import (
	"fmt"

	"github.com/anthdm/hollywood/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// monitor subscribes to the engine's event stream and turns restarts, dead
// letters and duplicate activations into logs and metrics, so nothing the
// actor system does goes unseen.
type monitor struct {
	log         *zap.Logger
	restarts    prometheus.Counter
	deadLetters prometheus.Counter
}

// StartMonitor spawns the monitor on e and subscribes it to the event stream.
func StartMonitor(e *actor.Engine, log *zap.Logger, reg prometheus.Registerer) *actor.PID {
	m := &monitor{
		log: log,
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultmaven_actor_restarts_total", Help: "Restarts of any actor after a panic."}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultmaven_actor_dead_letters_total", Help: "Messages sent to an actor that no longer exists."}),
	}
	if reg != nil {
		reg.MustRegister(m.restarts, m.deadLetters)
	}
	pid := e.Spawn(func() actor.Receiver { return m }, "monitor", actor.WithID("main"), actor.WithMaxRestarts(1<<30))
	e.Subscribe(pid)
	return pid
}

func (m *monitor) Receive(ctx *actor.Context) {
	switch ev := ctx.Message().(type) {
	case actor.ActorRestartedEvent:
		m.restarts.Inc()
		m.log.Warn("actor restarted", zap.String("pid", ev.PID.String()), zap.Int32("restarts", ev.Restarts),
			zap.String("reason", fmt.Sprint(ev.Reason)))
	case actor.ActorMaxRestartsExceededEvent:
		m.log.Error("actor exceeded its restart limit", zap.String("pid", ev.PID.String()))
	case actor.DeadLetterEvent:
		m.deadLetters.Inc()
		m.log.Debug("dead letter", zap.String("target", ev.Target.String()), zap.String("message", fmt.Sprintf("%T", ev.Message)))
	case actor.ActorDuplicateIdEvent:
		m.log.Error("duplicate actor id", zap.String("pid", ev.PID.String()))
	}
}
