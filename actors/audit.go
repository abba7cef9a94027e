package actors

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/faultmaven/faultmaven/actors/agent"
	"github.com/faultmaven/faultmaven/actors/agent/redact"
	"github.com/faultmaven/faultmaven/persistence"
)

// auditStore keeps the egress record of every LLM call in the "audit"
// keyspace: e/<case id>/<turn:4 BE>/<call:4 BE> → JSON EgressRecord. A call
// is recorded before the request leaves ("sending") and the same key is
// rewritten when it returns ("sent" or "failed", with the provider). Records
// outlive the case they belong to (they are the audit trail).
type auditStore struct {
	ks *persistence.Keyspace
}

func (s *auditStore) write(rec EgressRecord) error {
	if s.ks == nil {
		return errors.New("actors: no audit keyspace configured")
	}
	k := []byte("e/" + rec.CaseID + "/")
	k = binary.BigEndian.AppendUint32(k, uint32(rec.Turn))
	k = binary.BigEndian.AppendUint32(k, uint32(rec.Call))
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	// Synced: the record must be durable before the request leaves.
	return s.ks.Set(k, v, true)
}

func (s *auditStore) list(caseID string) ([]EgressRecord, error) {
	out := []EgressRecord{}
	if s.ks == nil {
		return out, nil
	}
	err := s.ks.Scan([]byte("e/"+caseID+"/"), false, func(_, v []byte) error {
		var r EgressRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode egress record: %w", err)
		}
		out = append(out, r)
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
func (c *Cases) agentFactory(cfg Config, deps Deps) func(caseID string, turn int) *agent.Agent {
	return func(caseID string, turn int) *agent.Agent {
		if deps.LLM == nil {
			return agent.New(cfg.Agent, nil)
		}
		p := redact.NewPseudonymizer(pseudonymKey(deps.NodeSecret, caseID), redact.Options{Emails: cfg.RedactEmails})
		call := 0 // the agent's LLM calls within a turn are sequential
		client := redact.WrapClient(deps.LLM, p, func(r redact.EgressRecord) error {
			phase := "sending"
			if r.Phase == redact.EgressIntent {
				call++
			} else if phase = "sent"; r.Err != "" {
				phase = "failed"
			}
			rec := EgressRecord{CaseID: caseID, Turn: turn, Call: call, Phase: phase, At: r.At, Provider: r.Provider,
				Model: r.Model, Tools: r.Tools, SecretsRedacted: r.SecretsRedacted, Error: r.Err}
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
