package llm

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"
)

// errTurnTimeout is the cancellation cause of a call that ran out of
// Config.TurnTimeout.
var errTurnTimeout = errors.New("llm: turn timed out")

// Chain is the Client the agent uses: a primary provider and its fallbacks.
// It is safe for concurrent use.
type Chain struct {
	providers   []*OpenAI
	turnTimeout time.Duration
	log         *zap.Logger
}

var _ Client = (*Chain)(nil)

// NewChain validates cfg (defaults applied) and builds its providers. It
// returns ErrNoProvider when cfg has none, and errors wrapping ErrConfig for
// bad settings.
func NewChain(cfg Config, log *zap.Logger) (*Chain, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cfg.Providers = slices.Clone(cfg.Providers)
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Chain{turnTimeout: cfg.TurnTimeout, log: log}
	for _, p := range cfg.Providers {
		o, err := newOpenAI(p, cfg, log)
		if err != nil {
			return nil, err
		}
		c.providers = append(c.providers, o)
	}
	return c, nil
}

// SupportsTools reports the primary provider's setting.
func (c *Chain) SupportsTools() bool { return c.providers[0].SupportsTools() }

// Providers lists the provider names in the order they are tried.
func (c *Chain) Providers() []string {
	names := make([]string, len(c.providers))
	for i, p := range c.providers {
		names[i] = p.Name()
	}
	return names
}

// Stream tries each provider in turn until one answers. A provider that
// fails before any content reached onDelta is skipped for the next one; a
// failure after content was delivered ends the call with that provider's
// *ProviderError, since the delivered text cannot be taken back. When every
// provider fails the error matches ErrAllProvidersFailed and unwraps to each
// *ProviderError. A cancelled ctx returns promptly with ctx.Err() wrapped.
func (c *Chain) Stream(ctx context.Context, req Request, onDelta func(text string)) (Response, error) {
	if err := checkRequest(req); err != nil {
		return Response{}, err
	}
	tctx, cancel := context.WithTimeoutCause(ctx, c.turnTimeout, errTurnTimeout)
	defer cancel()

	var failed []error
	for i, p := range c.providers {
		if i > 0 && len(req.Tools) > 0 && !p.SupportsTools() {
			pe := &ProviderError{Provider: p.Name(), Reason: "skipped: does not support tools"}
			c.log.Info("llm provider skipped", zap.String("provider", p.Name()), zap.String("reason", pe.Reason))
			failed = append(failed, pe)
			continue
		}
		delivered := false
		resp, err := p.Stream(tctx, req, func(text string) {
			delivered = true
			if onDelta != nil {
				onDelta(text)
			}
		})
		if err == nil {
			if i > 0 {
				c.log.Info("llm answered by fallback", zap.String("provider", p.Name()), zap.Int("position", i))
			}
			return resp, nil
		}
		if ctx.Err() != nil {
			return Response{}, cancelled(ctx)
		}
		var pe *ProviderError
		switch {
		case tctx.Err() != nil:
			// The turn ran out while this provider was working.
			pe = &ProviderError{
				Provider: p.Name(),
				Reason:   "timed out after " + fmtDuration(c.turnTimeout) + " (whole turn)",
				Err:      errors.Join(ErrTimeout, context.DeadlineExceeded),
			}
		case !errors.As(err, &pe):
			return Response{}, err // a bad request: no provider would take it
		}
		c.log.Warn("llm provider failed",
			zap.String("provider", pe.Provider),
			zap.Int("status", pe.Status),
			zap.String("reason", pe.Reason),
			zap.Bool("after_output", delivered),
		)
		if delivered {
			return Response{}, pe
		}
		failed = append(failed, pe)
		if tctx.Err() != nil {
			break
		}
	}
	return Response{}, &allFailedError{errs: failed}
}
