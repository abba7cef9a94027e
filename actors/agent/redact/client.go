package redact

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// ErrAuditFailed means the egress audit callback failed (or none was
// configured). Before sending, it stops the call: nothing leaves unaudited.
var ErrAuditFailed = errors.New("redact: egress audit failed")

// EgressPhase tells the two audit records of one call apart.
type EgressPhase string

const (
	// EgressIntent is recorded before the request is handed to the inner
	// client. If the callback fails, the call fails and nothing is sent.
	EgressIntent EgressPhase = "intent"
	// EgressDone is recorded after the inner client returned, with the
	// provider and model that answered (or the provider of a failed
	// attempt) and the error, if any: data may have left even then.
	EgressDone EgressPhase = "done"
)

// EgressRecord is what an LLM call sent, exactly as sent: pseudonymised.
type EgressRecord struct {
	At       time.Time
	Phase    EgressPhase
	Provider string // EgressDone only; "" when unknown
	Model    string // EgressDone only; "" when unknown
	// Messages as sent. Shared by the two records of a call; do not modify.
	Messages        []llm.Message
	Tools           []string // names of the tools offered
	SecretsRedacted int      // pseudonyms written into Messages
	Err             string   // EgressDone: the inner client's error, "" on success
}

// WrapClient returns an llm.Client that pseudonymises every request with p
// before c sees it, restores pseudonyms in what c returns (streamed deltas,
// content, tool-call arguments), and reports every call to audit.
//
// It fails closed: if a message cannot be redacted, if audit is nil or
// returns an error for the intent record, or if p is nil, Stream returns an
// error without calling c. The done record is written whether or not c
// failed; if writing it fails, Stream returns an ErrAuditFailed error (the
// reply is already in the stream, but the turn must not be recorded as a
// clean success without its audit trail).
func WrapClient(c llm.Client, p *Pseudonymizer, audit func(EgressRecord) error) llm.Client {
	return &client{inner: c, p: p, audit: audit}
}

type client struct {
	inner llm.Client
	p     *Pseudonymizer
	audit func(EgressRecord) error
}

var _ llm.Client = (*client)(nil)

// SupportsTools reports whether the inner client accepts tools.
func (w *client) SupportsTools() bool { return w.inner != nil && w.inner.SupportsTools() }

// Stream pseudonymises req, audits it, streams it through the inner client
// and restores the reply.
func (w *client) Stream(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Response, error) {
	if w.inner == nil || w.p == nil {
		return llm.Response{}, fmt.Errorf("%w: no client or pseudonymizer configured", ErrRedactionFailed)
	}
	if w.audit == nil {
		return llm.Response{}, fmt.Errorf("%w: no audit callback configured", ErrAuditFailed)
	}
	sent, n, err := w.p.redactRequest(req)
	if err != nil {
		return llm.Response{}, err
	}
	rec := EgressRecord{
		At:              time.Now(),
		Phase:           EgressIntent,
		Messages:        sent.Messages,
		Tools:           toolNames(req.Tools),
		SecretsRedacted: n,
	}
	if err := w.audit(rec); err != nil {
		return llm.Response{}, fmt.Errorf("%w: %w", ErrAuditFailed, err)
	}

	sr := w.p.NewStreamRestorer(onDelta)
	resp, callErr := w.inner.Stream(ctx, sent, sr.Write)
	sr.Flush()

	rec.At, rec.Phase = time.Now(), EgressDone
	rec.Provider, rec.Model = resp.Provider, resp.Model
	if callErr != nil {
		rec.Err = callErr.Error()
		var pe *llm.ProviderError
		if rec.Provider == "" && errors.As(callErr, &pe) {
			rec.Provider = pe.Provider
		}
	}
	auditErr := w.audit(rec)

	resp.Content = w.p.Restore(resp.Content)
	if len(resp.ToolCalls) > 0 {
		calls := make([]llm.ToolCall, len(resp.ToolCalls))
		for i, tc := range resp.ToolCalls {
			tc.Arguments = w.p.restoreArguments(tc.Arguments)
			calls[i] = tc
		}
		resp.ToolCalls = calls
	}
	switch {
	case callErr != nil && auditErr != nil:
		return resp, errors.Join(callErr, fmt.Errorf("%w: %w", ErrAuditFailed, auditErr))
	case callErr != nil:
		return resp, callErr
	case auditErr != nil:
		return resp, fmt.Errorf("%w: %w", ErrAuditFailed, auditErr)
	}
	return resp, nil
}

// redactRequest returns a copy of req with every message's content and
// every tool call's arguments pseudonymised (tool results are messages of
// role tool), and the number of secrets replaced. req is not modified.
// Tool definitions and the response schema are written by the server, not
// by users, and are passed through.
func (p *Pseudonymizer) redactRequest(req llm.Request) (llm.Request, int, error) {
	out := req
	out.Messages = make([]llm.Message, len(req.Messages))
	total := 0
	for i, m := range req.Messages {
		c, n, err := p.redact(m.Content, nil)
		if err != nil {
			return llm.Request{}, 0, fmt.Errorf("message %d (%s): %w", i, m.Role, err)
		}
		m.Content = c
		total += n
		if len(m.ToolCalls) > 0 {
			calls := make([]llm.ToolCall, len(m.ToolCalls))
			for j, tc := range m.ToolCalls {
				a, n, err := p.redactArguments(tc.Arguments)
				if err != nil {
					return llm.Request{}, 0, fmt.Errorf("message %d tool call %d (%s): %w", i, j, tc.Name, err)
				}
				tc.Arguments = a
				total += n
				calls[j] = tc
			}
			m.ToolCalls = calls
		}
		out.Messages[i] = m
	}
	return out, total, nil
}

func toolNames(tools []llm.Tool) []string {
	if len(tools) == 0 {
		return nil
	}
	names := make([]string, len(tools))
	for i, t := range tools {
		names[i] = t.Name
	}
	return names
}
