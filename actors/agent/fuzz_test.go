package agent

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// FuzzValidateToolArgs feeds arbitrary tool names and argument text, in
// every status, to the validator and the executor. It must never panic; a
// call the validator rejects must never reach Tools, and one it accepts must
// be well-formed JSON for an offered tool and reach Tools exactly once.
func FuzzValidateToolArgs(f *testing.F) {
	seeds := []struct{ name, args string }{
		{toolUpdateMilestones, `{"completed":["symptom_verified"],"note":"x"}`},
		{toolUpdateMilestones, `{"completed":["rootcause"]}`},
		{toolUpdateMilestones, `{"completed":[]}`},
		{toolRecordHypothesis, `{"statement":"s","category":"network","confidence":"probable"}`},
		{toolRecordHypothesis, `{"statement":"s","category":"net","confidence":"probable"`},
		{toolEvaluateHypothesis, `{"hypothesis_id":"h1","status":"refuted","confidence":"verified","rationale":"r"}`},
		{toolEvaluateHypothesis, `{"hypothesis_id":"h9","status":"refuted","confidence":"verified","rationale":"r"}`},
		{toolProposeSolution, `{"kind":"rollback","description":"d"}`},
		{toolRequestStatusChange, `{"to":"investigating","reason":"r"}`},
		{toolRequestStatusChange, `{"to":"resolved","reason":"r"}`},
		{toolSearchKnowledge, `{"query":"q","limit":10}`},
		{toolSearchKnowledge, `{"query":"q","limit":11}`},
		{toolSearchEvidence, `{"query":"q","limit":-1}`},
		{toolSearchEvidence, `{"query":"q"} {}`},
		{"", ""},
		{"nope", "null"},
		{toolSearchEvidence, `[]`},
		{toolSearchEvidence, "{\"query\":\"\xff\"}"},
	}
	for i, s := range seeds {
		f.Add(s.name, s.args, uint8(i))
	}
	statuses := append(slices.Clone(allStatuses), "archived")
	f.Fuzz(func(t *testing.T, name, args string, st uint8) {
		rec := &recTools{}
		in := &Input{Case: investigatingCase()}
		in.Case.Status = statuses[int(st)%len(statuses)]
		tr := newTurn(Config{MaxRepairRounds: 2}, in, rec)
		act, err := tr.validate(name, args)
		res, xerr := tr.execute(context.Background(), llm.ToolCall{ID: "c", Name: name, Arguments: args})
		if xerr != nil {
			t.Fatalf("execute returned %v without cancellation", xerr)
		}
		if err != nil {
			var ae *argsError
			if act != nil || !errors.As(err, &ae) {
				t.Fatalf("rejected call returned action %v and error %T", act, err)
			}
			if !res.invalid {
				t.Fatalf("execute accepted what validate rejected: %q %q", name, args)
			}
			if got := rec.log(); len(got) != 0 {
				t.Fatalf("invalid call %q %q reached Tools: %q", name, args, got)
			}
			return
		}
		if spec := specFor(name); spec == nil || !slices.Contains(spec.statuses, normalizeStatus(in.Case.Status)) {
			t.Fatalf("accepted tool %q not offered in status %q", name, in.Case.Status)
		}
		var obj map[string]any
		if json.Unmarshal([]byte(args), &obj) != nil {
			t.Fatalf("accepted arguments are not a JSON object: %q", args)
		}
		if res.invalid || len(rec.log()) != 1 {
			t.Fatalf("valid call %q %q: result %+v, Tools saw %q", name, args, res, rec.log())
		}
	})
}
