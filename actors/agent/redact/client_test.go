package redact

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// fakeLLM is the boundary: it records what would have left the building
// and answers with a script built from the request it saw.
type fakeLLM struct {
	calls  int
	got    []llm.Request
	onCall func(req llm.Request) // assertions at call time
	answer func(req llm.Request) ([]string, llm.Response, error)
}

func (f *fakeLLM) Stream(_ context.Context, req llm.Request, onDelta func(string)) (llm.Response, error) {
	f.calls++
	f.got = append(f.got, req)
	if f.onCall != nil {
		f.onCall(req)
	}
	if f.answer == nil {
		return llm.Response{Provider: "fake", Model: "m1", FinishReason: "stop"}, nil
	}
	deltas, resp, err := f.answer(req)
	for _, d := range deltas {
		onDelta(d)
	}
	return resp, err
}

func (f *fakeLLM) SupportsTools() bool { return true }

type auditLog struct {
	recs []EgressRecord
	fail func(EgressRecord) error
}

func (a *auditLog) record(r EgressRecord) error {
	a.recs = append(a.recs, r)
	if a.fail != nil {
		return a.fail(r)
	}
	return nil
}

// sentText is everything a request would put on the wire that can carry
// user data.
func sentText(req llm.Request) []string {
	var out []string
	for _, m := range req.Messages {
		out = append(out, m.Content)
		for _, tc := range m.ToolCalls {
			out = append(out, tc.Arguments)
		}
	}
	return out
}

func TestWrapClientPseudonymisesAndRestores(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	req := llm.Request{
		Messages: []llm.Message{{Role: llm.RoleSystem, Content: "You are FaultMaven."}},
		Tools:    []llm.Tool{{Name: "run_command"}, {Name: "search_logs"}},
	}
	var secrets []string
	for _, tc := range positives {
		req.Messages = append(req.Messages, llm.Message{Role: llm.RoleUser, Content: tc.in})
		for _, f := range tc.want {
			if len(f.secret) >= 6 {
				secrets = append(secrets, f.secret)
			}
		}
	}
	const quoted = `pa"ss\word`
	req.Messages = append(req.Messages,
		llm.Message{Role: llm.RoleUser, Content: "db:\n  password: '" + quoted + "'\n"},
		llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "run_command",
			Arguments: `{"command": "psql postgres://app:S3cr3t!@db.internal:5432/orders", "env": {"PGPASSWORD": "hunter2-Xy"}, "retries": 3}`}}},
		llm.Message{Role: llm.RoleTool, ToolCallID: "c1", Content: "[default]\naws_secret_access_key = " + fakeAWSSecret + "\n"},
	)
	secrets = append(secrets, "hunter2-Xy", quoted)
	orig := cloneRequest(req)

	audit := &auditLog{}
	var pseudoPW string // the pseudonym the model sees for the quoted password
	inner := &fakeLLM{
		onCall: func(req llm.Request) {
			if len(audit.recs) != 1 || audit.recs[0].Phase != EgressIntent {
				t.Errorf("inner called with %d audit records; the intent record must come first", len(audit.recs))
			}
			for i, s := range sentText(req) {
				for _, sec := range secrets {
					if strings.Contains(s, sec) {
						t.Errorf("inner client saw secret %q in part %d: %q", sec, i, s)
					}
				}
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(req.Messages[len(req.Messages)-2].ToolCalls[0].Arguments), &args); err != nil {
				t.Errorf("redacted tool arguments are not JSON: %v", err)
			} else if env := args["env"].(map[string]any); !pseudonymRE.MatchString(env["PGPASSWORD"].(string)) {
				t.Errorf("PGPASSWORD not pseudonymised: %v", args)
			}
		},
		answer: func(req llm.Request) ([]string, llm.Response, error) {
			pseudoPW = pseudonymRE.FindString(req.Messages[len(req.Messages)-3].Content)
			text := "Reset " + pseudoPW + " now."
			half := len("Reset ") + len(pseudoPW)/2
			return []string{text[:3], text[3:half], text[half:]}, llm.Response{
				Content:   text,
				ToolCalls: []llm.ToolCall{{ID: "c2", Name: "run_command", Arguments: `{"command":"login --password ` + pseudoPW + `"}`}},
				Provider:  "fake", Model: "m1", FinishReason: "tool_calls",
			}, nil
		},
	}
	var deltas []string
	resp, err := WrapClient(inner, p, audit.record).Stream(context.Background(), req, func(d string) { deltas = append(deltas, d) })
	if err != nil {
		t.Fatal(err)
	}
	if inner.calls != 1 {
		t.Fatalf("inner called %d times", inner.calls)
	}
	if !reflect.DeepEqual(req, orig) {
		t.Error("the caller's request was modified")
	}
	if want := "Reset " + quoted + " now."; strings.Join(deltas, "") != want || resp.Content != want {
		t.Errorf("deltas %q, content %q; want %q restored", deltas, resp.Content, want)
	}
	var args struct{ Command string }
	if err := json.Unmarshal([]byte(resp.ToolCalls[0].Arguments), &args); err != nil || args.Command != "login --password "+quoted {
		t.Errorf("restored arguments %s (%v): want the original password, JSON-escaped", resp.ToolCalls[0].Arguments, err)
	}

	if len(audit.recs) != 2 {
		t.Fatalf("%d audit records, want intent + done", len(audit.recs))
	}
	intent, done := audit.recs[0], audit.recs[1]
	if !reflect.DeepEqual(intent.Messages, inner.got[0].Messages) || !reflect.DeepEqual(done.Messages, inner.got[0].Messages) {
		t.Error("audited messages differ from what the inner client received")
	}
	if !reflect.DeepEqual(intent.Tools, []string{"run_command", "search_logs"}) {
		t.Errorf("audited tools %q", intent.Tools)
	}
	if intent.SecretsRedacted < len(secrets) || done.SecretsRedacted != intent.SecretsRedacted {
		t.Errorf("SecretsRedacted %d / %d, want ≥ %d", intent.SecretsRedacted, done.SecretsRedacted, len(secrets))
	}
	if intent.Provider != "" || done.Provider != "fake" || done.Model != "m1" || done.Phase != EgressDone || done.Err != "" {
		t.Errorf("records: intent %+v done %+v", intent, done)
	}
	if intent.At.IsZero() || done.At.Before(intent.At) {
		t.Errorf("timestamps %v, %v", intent.At, done.At)
	}
}

func cloneRequest(r llm.Request) llm.Request {
	c := r
	c.Messages = make([]llm.Message, len(r.Messages))
	for i, m := range r.Messages {
		m.ToolCalls = append([]llm.ToolCall(nil), m.ToolCalls...)
		c.Messages[i] = m
	}
	c.Tools = append([]llm.Tool(nil), r.Tools...)
	return c
}

// TestWrapClientFailsClosed: whenever redaction or the intent audit fails,
// the inner client is never called.
func TestWrapClientFailsClosed(t *testing.T) {
	ok := []llm.Message{{Role: llm.RoleUser, Content: "password=hunter2"}}
	tests := []struct {
		name    string
		p       *Pseudonymizer
		msgs    []llm.Message
		audit   func(EgressRecord) error
		wantErr error
		audited int
	}{
		{"audit fails", NewPseudonymizer(testKey, Options{}), ok,
			func(EgressRecord) error { return errors.New("disk full") }, ErrAuditFailed, 1},
		{"no audit", NewPseudonymizer(testKey, Options{}), ok, nil, ErrAuditFailed, 0},
		{"invalid UTF-8 content", NewPseudonymizer(testKey, Options{}),
			[]llm.Message{{Role: llm.RoleUser, Content: "password=\xffhunter2"}}, nil, ErrRedactionFailed, 0},
		{"invalid UTF-8 tool arguments", NewPseudonymizer(testKey, Options{}),
			[]llm.Message{{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{Name: "x", Arguments: "{\"a\":\"\xc3\"}"}}}}, nil, ErrRedactionFailed, 0},
		{"invalid UTF-8 tool result", NewPseudonymizer(testKey, Options{}),
			[]llm.Message{{Role: llm.RoleTool, ToolCallID: "c1", Content: "\xed\xa0\x80"}}, nil, ErrRedactionFailed, 0},
		{"short case key", NewPseudonymizer([]byte("k"), Options{}), ok, nil, ErrRedactionFailed, 0},
		{"no pseudonymizer", nil, ok, nil, ErrRedactionFailed, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inner := &fakeLLM{}
			audit := &auditLog{fail: tc.audit}
			fn := audit.record
			if tc.audit == nil && tc.name == "no audit" {
				fn = nil
			}
			_, err := WrapClient(inner, tc.p, fn).Stream(context.Background(), llm.Request{Messages: tc.msgs}, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if inner.calls != 0 {
				t.Errorf("inner client was called: data left the building")
			}
			if len(audit.recs) != tc.audited {
				t.Errorf("%d audit records, want %d", len(audit.recs), tc.audited)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

// TestWrapClientAuditsFailedCalls: a failed call may still have sent data,
// so it is recorded with the provider of the failed attempt.
func TestWrapClientAuditsFailedCalls(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	perr := &llm.ProviderError{Provider: "openai", Status: 500, Reason: "server error (500)"}
	inner := &fakeLLM{answer: func(llm.Request) ([]string, llm.Response, error) {
		return []string{"partial <secr"}, llm.Response{}, perr
	}}
	audit := &auditLog{}
	var deltas []string
	_, err := WrapClient(inner, p, audit.record).Stream(context.Background(),
		llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "token=abcDEF123456"}}},
		func(d string) { deltas = append(deltas, d) })
	var pe *llm.ProviderError
	if !errors.As(err, &pe) || pe.Provider != "openai" {
		t.Fatalf("err = %v, want the provider error", err)
	}
	if len(audit.recs) != 2 || audit.recs[1].Provider != "openai" || audit.recs[1].Err != perr.Error() {
		t.Fatalf("audit records %+v", audit.recs)
	}
	if strings.Join(deltas, "") != "partial <secr" {
		t.Errorf("held-back tail not flushed on error: %q", deltas)
	}

	// The done record failing turns a successful call into an error.
	audit = &auditLog{fail: func(r EgressRecord) error {
		if r.Phase == EgressDone {
			return errors.New("disk full")
		}
		return nil
	}}
	inner = &fakeLLM{}
	if _, err := WrapClient(inner, p, audit.record).Stream(context.Background(), llm.Request{}, nil); !errors.Is(err, ErrAuditFailed) || inner.calls != 1 {
		t.Errorf("done audit failure: err = %v, calls = %d", err, inner.calls)
	}
}

func TestRestoreArgumentsInvalidJSON(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	red, n, err := p.redactArguments(`{"cmd": "mysql -phunter2", password=oops}`)
	if err != nil || n != 2 || strings.Contains(red, "hunter2") || strings.Contains(red, "oops") {
		t.Fatalf("redactArguments = %q, %d, %v", red, n, err)
	}
	if got := p.restoreArguments(red); got != `{"cmd": "mysql -phunter2", password=oops}` {
		t.Errorf("restoreArguments = %q", got)
	}
}
