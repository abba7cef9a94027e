package llm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/zap"
)

// dummyAPIKey is sent to servers that need no key (Ollama): the SDK always
// sends an Authorization header.
const dummyAPIKey = "unused"

// drainWait bounds the wait, after [DONE], for a response to end: a server
// ends it right away, and a connection read to its end is reused.
const drainWait = 250 * time.Millisecond

// OpenAI is one OpenAI-compatible provider (OpenAI, Ollama, vLLM, LM Studio,
// ...). It is safe for concurrent use; every Stream call has its own state.
type OpenAI struct {
	p              ProviderConfig
	client         openai.Client
	attemptTimeout time.Duration
	log            *zap.Logger
}

var _ Client = (*OpenAI)(nil)

// NewOpenAI makes the provider p; cfg supplies the timeouts, retry count and
// HTTP client (its Providers are ignored).
func NewOpenAI(p ProviderConfig, cfg Config) (*OpenAI, error) {
	return newOpenAI(p, cfg, zap.NewNop())
}

func newOpenAI(p ProviderConfig, cfg Config, log *zap.Logger) (*OpenAI, error) {
	cfg.Providers = nil
	cfg.EnsureDefaults()
	p.ensureDefaults()
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("%w: provider %s: %w", ErrConfig, p.Name, err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	key := cmp.Or(p.APIKey, dummyAPIKey)
	client := openai.NewClient(
		option.WithBaseURL(p.BaseURL),
		option.WithAPIKey(key),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(cfg.retries()),
		// A server-requested wait longer than one attempt's budget is not
		// worth it: fall back instead.
		option.WithMaxRetryDelay(cfg.AttemptTimeout),
	)
	return &OpenAI{p: p, client: client, attemptTimeout: cfg.AttemptTimeout, log: log}, nil
}

// defaultHTTPClient is shared by every provider built without
// Config.HTTPClient. Its pool keeps many idle connections per host because a
// busy server streams hundreds of completions from one provider at once.
var defaultHTTPClient = sync.OnceValue(func() *http.Client {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return &http.Client{}
	}
	t = t.Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: t}
})

// Name is the provider's name.
func (o *OpenAI) Name() string { return o.p.Name }

// SupportsTools reports the provider's Tools setting.
func (o *OpenAI) SupportsTools() bool { return o.p.SupportsTools() }

// Stream runs one streamed completion. Content fragments go to onDelta in
// order; tool calls are returned whole. Failures are *ProviderError, except
// a cancelled ctx (wrapped ctx.Err()) and an invalid req (ErrBadRequest).
//
// openai-go sends the request (base URL, auth, retries honouring
// Retry-After, the middleware below) and hands back the raw response; the
// body is read by this package's decoder (stream.go, ADR 0004).
//
// Config.AttemptTimeout is enforced by a watchdog that every HTTP attempt
// and every received event re-arms, so a long but steady stream is never
// cut, while a silent server is abandoned after AttemptTimeout.
func (o *OpenAI) Stream(ctx context.Context, req Request, onDelta func(text string)) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, cancelled(ctx)
	}
	if err := checkRequest(req); err != nil {
		return Response{}, err
	}
	body, err := encodeRequest(&o.p, req)
	if err != nil {
		return Response{}, fmt.Errorf("%w: encode request: %w", ErrBadRequest, err)
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(o.attemptTimeout, func() { cancel(ErrTimeout) })
	defer watchdog.Stop()

	a := attempt{provider: o.p.Name, timeout: o.attemptTimeout}
	// track runs synchronously inside Post, once per HTTP attempt.
	track := func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		a.tries++
		watchdog.Reset(o.attemptTimeout)
		res, err := next(r)
		a.status, a.gotHeaders = 0, false
		if res != nil {
			a.status = res.StatusCode
			a.gotHeaders = res.StatusCode < 300
		}
		if a.gotHeaders {
			watchdog.Reset(o.attemptTimeout)
			return res, err
		}
		// A retry wait may follow: it is bounded by the retry delay cap and
		// the turn, not by the attempt watchdog.
		watchdog.Stop()
		o.logAttempt(a, err)
		return res, err
	}

	var raw *http.Response
	err = o.client.Post(actx, "chat/completions", body, &raw, option.WithMiddleware(track))
	if err == nil && raw == nil {
		err = errors.New("llm: no response")
	}
	if raw != nil && raw.Body != nil {
		defer raw.Body.Close()
	}
	var acc completion
	var out streamOutcome
	if err == nil {
		out = readStream(raw.Body, &acc,
			func() { watchdog.Reset(o.attemptTimeout) },
			func() { watchdog.Reset(min(o.attemptTimeout, drainWait)) },
			onDelta)
		err = out.err
	}
	if ctx.Err() != nil {
		return Response{}, cancelled(ctx)
	}
	a.chunks = out.chunks
	if err != nil {
		a.timedOut = errors.Is(context.Cause(actx), ErrTimeout)
		return Response{}, classify(a, err)
	}
	switch {
	case out.badJSON != nil:
		a.badJSON = out.badJSON
	case out.errEvent != "":
		a.errEvent = out.errEvent
	case out.badChunk:
		a.badChunk = true
	case !acc.gotChoice:
		a.emptyChoices = true
	case acc.finish == "":
		a.noFinish = true
	default:
		return acc.response(o.p.Name, o.p.Model), nil
	}
	return Response{}, classify(a, nil)
}

func (o *OpenAI) logAttempt(a attempt, err error) {
	fields := []zap.Field{
		zap.String("provider", o.p.Name),
		zap.Int("attempt", a.tries),
		zap.Int("status", a.status),
	}
	if err != nil {
		fields = append(fields, zap.String("error", transportText(err)))
	}
	o.log.Info("llm http attempt failed", fields...)
}

// checkRequest rejects requests no provider could accept; they are caller
// bugs and must not trigger fallbacks.
func checkRequest(req Request) error {
	if len(req.Messages) == 0 {
		return fmt.Errorf("%w: no messages", ErrBadRequest)
	}
	roles := []string{RoleSystem, RoleUser, RoleAssistant, RoleTool}
	for i, m := range req.Messages {
		switch {
		case !slices.Contains(roles, m.Role):
			return fmt.Errorf("%w: message %d: unknown role %q", ErrBadRequest, i, m.Role)
		case m.Role == RoleTool && m.ToolCallID == "":
			return fmt.Errorf("%w: message %d: tool message without ToolCallID", ErrBadRequest, i)
		case len(m.ToolCalls) > 0 && m.Role != RoleAssistant:
			return fmt.Errorf("%w: message %d: only assistant messages carry tool calls", ErrBadRequest, i)
		}
		for j, tc := range m.ToolCalls {
			if tc.ID == "" || tc.Name == "" {
				return fmt.Errorf("%w: message %d: tool call %d needs an ID and a name", ErrBadRequest, i, j)
			}
		}
	}
	for i, t := range req.Tools {
		if t.Name == "" {
			return fmt.Errorf("%w: tool %d: no name", ErrBadRequest, i)
		}
	}
	if req.ResponseFormat != nil && req.ResponseFormat.Schema == nil {
		return fmt.Errorf("%w: response format %q has no schema", ErrBadRequest, req.ResponseFormat.Name)
	}
	if req.MaxTokens < 0 {
		return fmt.Errorf("%w: MaxTokens %d is negative", ErrBadRequest, req.MaxTokens)
	}
	return nil
}
