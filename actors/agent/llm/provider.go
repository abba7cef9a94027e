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
	"github.com/openai/openai-go/v3/shared"
	"go.uber.org/zap"
)

// dummyAPIKey is sent to servers that need no key (Ollama): the SDK always
// sends an Authorization header.
const dummyAPIKey = "unused"

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
// Config.AttemptTimeout is enforced by a watchdog that every HTTP attempt
// and every received chunk re-arms, so a long but steady stream is never
// cut, while a silent server is abandoned after AttemptTimeout.
func (o *OpenAI) Stream(ctx context.Context, req Request, onDelta func(text string)) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, cancelled(ctx)
	}
	params, err := o.params(req)
	if err != nil {
		return Response{}, err
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(o.attemptTimeout, func() { cancel(ErrTimeout) })
	defer watchdog.Stop()

	a := attempt{provider: o.p.Name, timeout: o.attemptTimeout}
	// track runs synchronously inside NewStreaming, once per HTTP attempt.
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

	stream := o.client.Chat.Completions.NewStreaming(actx, params, option.WithMiddleware(track))
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		watchdog.Reset(o.attemptTimeout)
		chunk := stream.Current()
		a.chunks++
		if acc.ID != "" {
			// The accumulator rejects a chunk whose id differs from the
			// first; some servers vary it or leave it empty on the usage
			// chunk, though it is one completion.
			chunk.ID = acc.ID
		}
		if !acc.AddChunk(chunk) {
			a.badChunk = true
			break
		}
		if onDelta == nil {
			continue
		}
		for _, c := range chunk.Choices {
			if c.Index == 0 && c.Delta.Content != "" {
				onDelta(c.Delta.Content)
			}
		}
	}
	err = stream.Err()
	if ctx.Err() != nil {
		return Response{}, cancelled(ctx)
	}
	if err != nil {
		a.timedOut = errors.Is(context.Cause(actx), ErrTimeout)
		return Response{}, classify(a, err)
	}
	switch {
	case a.badChunk:
	case len(acc.Choices) == 0:
		a.emptyChoices = true
	case acc.Choices[0].FinishReason == "":
		a.noFinish = true
	default:
		return o.response(&acc), nil
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

func (o *OpenAI) response(acc *openai.ChatCompletionAccumulator) Response {
	choice := acc.Choices[0]
	resp := Response{
		Content:      choice.Message.Content,
		FinishReason: choice.FinishReason,
		Usage: Usage{
			PromptTokens:     acc.Usage.PromptTokens,
			CompletionTokens: acc.Usage.CompletionTokens,
		},
		Provider: o.p.Name,
		Model:    cmp.Or(acc.Model, o.p.Model),
	}
	for _, tc := range choice.Message.ToolCalls {
		resp.ToolCalls = append(resp.ToolCalls, ToolCall{
			ID:        tc.ID,
			Name:      tc.Function.Name,
			Arguments: tc.Function.Arguments,
		})
	}
	return resp
}

// params converts req into the SDK's request for this provider.
func (o *OpenAI) params(req Request) (openai.ChatCompletionNewParams, error) {
	if err := checkRequest(req); err != nil {
		return openai.ChatCompletionNewParams{}, err
	}
	p := openai.ChatCompletionNewParams{
		Model:         o.p.Model,
		Messages:      make([]openai.ChatCompletionMessageParamUnion, 0, len(req.Messages)),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	for _, m := range req.Messages {
		p.Messages = append(p.Messages, toMessage(m))
	}
	// max_tokens rather than max_completion_tokens: it is what every
	// OpenAI-compatible server (Ollama, vLLM, LM Studio) understands.
	if n := cmp.Or(req.MaxTokens, o.p.MaxTokens); n > 0 {
		p.MaxTokens = openai.Int(int64(n))
	}
	if req.Temperature != nil {
		p.Temperature = openai.Float(*req.Temperature)
	}
	for _, t := range req.Tools {
		fn := shared.FunctionDefinitionParam{Name: t.Name, Parameters: shared.FunctionParameters(t.Parameters)}
		if t.Description != "" {
			fn.Description = openai.String(t.Description)
		}
		p.Tools = append(p.Tools, openai.ChatCompletionFunctionTool(fn))
	}
	if rf := req.ResponseFormat; rf != nil {
		p.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{
			OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
				JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{
					Name:   cmp.Or(rf.Name, "response"),
					Schema: rf.Schema,
				},
			},
		}
	}
	return p, nil
}

func toMessage(m Message) openai.ChatCompletionMessageParamUnion {
	switch m.Role {
	case RoleSystem:
		return openai.SystemMessage(m.Content)
	case RoleUser:
		return openai.UserMessage(m.Content)
	case RoleTool:
		return openai.ToolMessage(m.Content, m.ToolCallID)
	default: // RoleAssistant; checkRequest rejected anything else.
		var am openai.ChatCompletionAssistantMessageParam
		if m.Content != "" || len(m.ToolCalls) == 0 {
			am.Content.OfString = openai.String(m.Content)
		}
		for _, tc := range m.ToolCalls {
			am.ToolCalls = append(am.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
				OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
					ID: tc.ID,
					Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{
						Name:      tc.Name,
						Arguments: tc.Arguments,
					},
				},
			})
		}
		return openai.ChatCompletionMessageParamUnion{OfAssistant: &am}
	}
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
