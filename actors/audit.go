package actors

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent"
	"github.com/faultmaven/faultmaven/actors/agent/redact"
	"github.com/faultmaven/faultmaven/persistence"
)

// auditStore keeps the egress record of every LLM call in the "audit"
// keyspace: e/<case id>/<turn:4 BE>/<call:4 BE> → JSON EgressRecord. A call
// is recorded, request and all, before the request leaves ("sending"); its
// outcome ("sent" or "failed", the provider that answered, the error) goes
// to the same key plus "o" when it returns, and list shows the two as one
// record. Records outlive the case they belong to (they are the audit
// trail). Logs written before outcomes had their own key hold the outcome
// in the request's record itself; list reads both.
type auditStore struct {
	ks *persistence.Keyspace
}

// phaseSending is the phase of a call's first record.
const phaseSending = "sending"

// auditOutcome is what the second record of a call adds to the first.
type auditOutcome struct {
	Phase    string    `json:"phase"`
	At       time.Time `json:"at"`
	Provider string    `json:"provider"`
	Model    string    `json:"model"`
	Error    string    `json:"error,omitempty"`
}

// auditKeyLen is the length of a record's key after the case prefix.
const auditKeyLen = 8

func auditPrefix(caseID string) []byte { return []byte("e/" + caseID + "/") }

func (s *auditStore) write(rec EgressRecord) error {
	if s.ks == nil {
		return errors.New("actors: no audit keyspace configured")
	}
	k := auditPrefix(rec.CaseID)
	k = binary.BigEndian.AppendUint32(k, uint32(rec.Turn))
	k = binary.BigEndian.AppendUint32(k, uint32(rec.Call))
	if rec.Phase == phaseSending {
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		// Synced: the record must be durable before the request leaves.
		return s.ks.Set(k, v, true)
	}
	v, err := json.Marshal(auditOutcome{Phase: rec.Phase, At: rec.At, Provider: rec.Provider, Model: rec.Model, Error: rec.Error})
	if err != nil {
		return err
	}
	// Not synced: what left is on disk already, in the request's record. The
	// outcome becomes durable with the next synced write, which always
	// follows before the turn's end is durable (the next call's request, a
	// tool's event, the answer or the turn_failed event, all synced on the
	// same log). A crash before that leaves "sending", and the turn failed.
	return s.ks.Set(append(k, 'o'), v, false)
}

func (s *auditStore) list(caseID string) ([]EgressRecord, error) {
	out := []EgressRecord{}
	if s.ks == nil {
		return out, nil
	}
	prefix := auditPrefix(caseID)
	err := s.ks.Scan(prefix, false, func(k, v []byte) error {
		switch len(k) - len(prefix) {
		case auditKeyLen:
			var r EgressRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode egress record: %w", err)
			}
			out = append(out, r)
		case auditKeyLen + 1: // an outcome: it sorts right after its request
			var o auditOutcome
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("decode egress outcome: %w", err)
			}
			if n := len(out); n > 0 {
				r := &out[n-1]
				r.Phase, r.At, r.Provider, r.Model, r.Error = o.Phase, o.At, o.Provider, o.Model, o.Error
			}
		}
		return nil
	})
	return out, err
}

// pseudonymKey derives the per-case pseudonym key from the node secret, so the
// same secret gets the same pseudonym in every turn of a case and different
// pseudonyms in different cases, with no table to store.
func pseudonymKey(nodeSecret []byte, caseID string) []byte {
	m := hmac.New(sha256.New, nodeSecret)
	m.Write([]byte("faultmaven/redact/v1/" + caseID))
	return m.Sum(nil)
}

// agentFactory builds the agent of one turn: with an LLM, every request is
// pseudonymised and audited (fail closed) before it leaves.
func (c *Cases) agentFactory(cfg Config, deps Deps) func(caseID string, turn int, clock *turnClock) *agent.Agent {
	return func(caseID string, turn int, clock *turnClock) *agent.Agent {
		if deps.LLM == nil {
			return agent.New(cfg.Agent, nil)
		}
		p := redact.NewPseudonymizer(pseudonymKey(deps.NodeSecret, caseID), redact.Options{Emails: cfg.RedactEmails})
		call := 0 // the agent's LLM calls within a turn are sequential
		client := redact.WrapClient(deps.LLM, p, func(r redact.EgressRecord) error {
			phase := phaseSending
			if r.Phase == redact.EgressIntent {
				call++
			} else if phase = "sent"; r.Err != "" {
				phase = "failed"
			}
			rec := EgressRecord{CaseID: caseID, Turn: turn, Call: call, Phase: phase, At: r.At, Provider: r.Provider,
				Model: r.Model, Tools: r.Tools, SecretsRedacted: r.SecretsRedacted, Error: r.Err}
			if phase != phaseSending {
				return c.audit.write(rec) // the outcome: the request is recorded already
			}
			if call == 1 {
				start := time.Now()
				clock.observe(stageAssemble, start.Sub(clock.ready))
				defer func() { clock.observe(stageAudit, time.Since(start)) }()
			}
			rec.Messages = make([]EgressMsg, 0, len(r.Messages))
			for _, m := range r.Messages {
				em := EgressMsg{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID}
				if len(m.ToolCalls) > 0 {
					b, _ := json.Marshal(m.ToolCalls)
					em.ToolCalls = string(b)
				}
				rec.Messages = append(rec.Messages, em)
			}
			return c.audit.write(rec)
		})
		return agent.New(cfg.Agent, client)
	}
}
