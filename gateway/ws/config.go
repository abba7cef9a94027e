package ws

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidConfig wraps every configuration problem New reports.
var ErrInvalidConfig = errors.New("ws: invalid config")

// DefaultMaxConnsPerUser is what a zero Config.MaxConnsPerUser takes.
const DefaultMaxConnsPerUser = 20

// Config configures a Hub. Zero fields take the defaults.
type Config struct {
	// MaxConnsPerUser caps a user's open connections; the next one is
	// refused (ErrTooManyConns before the upgrade, close code 4429 after).
	MaxConnsPerUser int
	Timing          Timing
	Limits          Limits
}

// Timing are the clocks of a connection (tests shorten them).
type Timing struct {
	WriteWait   time.Duration // deadline of one write
	PongWait    time.Duration // read deadline, extended by every pong and frame
	PingPeriod  time.Duration // must be well below PongWait
	AuthWait    time.Duration // time to send the auth frame
	CloseGrace  time.Duration // wait for the client's close reply before dropping TCP
	CallTimeout time.Duration // one call into the case or auth service
}

var defaultTiming = Timing{
	WriteWait: 10 * time.Second, PongWait: 60 * time.Second, PingPeriod: 25 * time.Second,
	AuthWait: 10 * time.Second, CloseGrace: time.Second, CallTimeout: 15 * time.Second,
}

// Limits bound what one connection may cost.
type Limits struct {
	ReadLimit    int64   // bytes of one client frame (1009 beyond)
	QueueFrames  int     // outbound frames waiting for the writer
	QueueBytes   int     // and their approximate size
	ReplayFrames int     // the same while a subscribe replays history
	ReplayBytes  int     //
	Rate, Burst  float64 // client frames per second, sustained and burst
	MaxSubs      int     // cases subscribed at once
}

var defaultLimits = Limits{
	ReadLimit:   512 << 10,
	QueueFrames: 1024, QueueBytes: 8 << 20,
	ReplayFrames: 16384, ReplayBytes: 32 << 20,
	Rate: 30, Burst: 60,
	MaxSubs: 64,
}

// EnsureDefaults fills in zero fields.
func (c *Config) EnsureDefaults() {
	orDefault(&c.MaxConnsPerUser, DefaultMaxConnsPerUser)
	t, d := &c.Timing, defaultTiming
	orDefault(&t.WriteWait, d.WriteWait)
	orDefault(&t.PongWait, d.PongWait)
	orDefault(&t.PingPeriod, d.PingPeriod)
	orDefault(&t.AuthWait, d.AuthWait)
	orDefault(&t.CloseGrace, d.CloseGrace)
	orDefault(&t.CallTimeout, d.CallTimeout)
	l, dl := &c.Limits, defaultLimits
	orDefault(&l.ReadLimit, dl.ReadLimit)
	orDefault(&l.QueueFrames, dl.QueueFrames)
	orDefault(&l.QueueBytes, dl.QueueBytes)
	orDefault(&l.ReplayFrames, dl.ReplayFrames)
	orDefault(&l.ReplayBytes, dl.ReplayBytes)
	orDefault(&l.Rate, dl.Rate)
	orDefault(&l.Burst, dl.Burst)
	orDefault(&l.MaxSubs, dl.MaxSubs)
}

func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports the first bad setting, naming it and the fix.
func (c Config) Validate() error {
	if c.MaxConnsPerUser < 0 {
		return fmt.Errorf("%w: MaxConnsPerUser is %d; use a positive number (0 takes the default of %d)", ErrInvalidConfig, c.MaxConnsPerUser, DefaultMaxConnsPerUser)
	}
	t := c.Timing
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"WriteWait", t.WriteWait}, {"PongWait", t.PongWait}, {"PingPeriod", t.PingPeriod},
		{"AuthWait", t.AuthWait}, {"CloseGrace", t.CloseGrace}, {"CallTimeout", t.CallTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("%w: Timing.%s is %s; use a positive duration (0 takes the default)", ErrInvalidConfig, d.name, d.v)
		}
	}
	if t.PingPeriod >= t.PongWait {
		return fmt.Errorf("%w: Timing.PingPeriod (%s) must be well below Timing.PongWait (%s), or a live client is dropped between pings", ErrInvalidConfig, t.PingPeriod, t.PongWait)
	}
	l := c.Limits
	for _, n := range []struct {
		name string
		v    float64
	}{
		{"ReadLimit", float64(l.ReadLimit)}, {"QueueFrames", float64(l.QueueFrames)}, {"QueueBytes", float64(l.QueueBytes)},
		{"ReplayFrames", float64(l.ReplayFrames)}, {"ReplayBytes", float64(l.ReplayBytes)},
		{"Rate", l.Rate}, {"Burst", l.Burst}, {"MaxSubs", float64(l.MaxSubs)},
	} {
		if n.v < 0 {
			return fmt.Errorf("%w: Limits.%s is %v; use a positive number (0 takes the default)", ErrInvalidConfig, n.name, n.v)
		}
	}
	return nil
}
