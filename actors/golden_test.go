package actors

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/casepb"
	"google.golang.org/protobuf/proto"
)

var updateGolden = flag.Bool("update-golden", false, "write a NEW golden event log for the current version (never overwrite an old one)")

// goldenVersion is the event-format version this build writes. Bump it (and
// run with -update-golden) when docs/events.md says a change needs a new
// golden; old files stay and keep being decoded.
const goldenVersion = "v1"

// goldenEvents is a case's whole life in every event type of this version.
func goldenEvents() []*casepb.Event {
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	var evs []*casepb.Event
	add := func(by string, kind any) {
		at = at.Add(time.Minute)
		ev := &casepb.Event{Seq: uint64(len(evs) + 1), AtUnixNano: at.UnixNano(), By: by}
		switch k := kind.(type) {
		case *casepb.CaseCreated:
			ev.Kind = &casepb.Event_Created{Created: k}
		case *casepb.StatusChanged:
			ev.Kind = &casepb.Event_StatusChanged{StatusChanged: k}
		case *casepb.TitleChanged:
			ev.Kind = &casepb.Event_TitleChanged{TitleChanged: k}
		case *casepb.MessageAdded:
			ev.Kind = &casepb.Event_MessageAdded{MessageAdded: k}
		case *casepb.TurnFailed:
			ev.Kind = &casepb.Event_TurnFailed{TurnFailed: k}
		case *casepb.MilestonesUpdated:
			ev.Kind = &casepb.Event_MilestonesUpdated{MilestonesUpdated: k}
		case *casepb.HypothesisRecorded:
			ev.Kind = &casepb.Event_HypothesisRecorded{HypothesisRecorded: k}
		case *casepb.HypothesisEvaluated:
			ev.Kind = &casepb.Event_HypothesisEvaluated{HypothesisEvaluated: k}
		case *casepb.SolutionProposed:
			ev.Kind = &casepb.Event_SolutionProposed{SolutionProposed: k}
		case *casepb.EvidenceAdded:
			ev.Kind = &casepb.Event_EvidenceAdded{EvidenceAdded: k}
		case *casepb.StatusChangeProposed:
			ev.Kind = &casepb.Event_StatusChangeProposed{StatusChangeProposed: k}
		}
		evs = append(evs, ev)
	}
	u := "usr_golden"
	add(u, &casepb.CaseCreated{CaseId: "case_01golden0000000000000000", Owner: u, Title: "Case-261125-1", Priority: "high", IdempotencyKey: "opt_case_1"})
	add(u, &casepb.MessageAdded{MessageId: "msg_1", Role: "user", Content: "API returns 502 since 14:00", TurnNumber: 1, ClientMsgId: "c1"})
	add(u, &casepb.EvidenceAdded{EvidenceId: "ev_1", Filename: "nginx.log", Digest: "ab", Size: 1234, SourceType: "logs", UploadSource: "file_upload", TurnNumber: 1})
	add("system", &casepb.TitleChanged{Title: "API 502s after deploy", Source: "auto"})
	add("system", &casepb.MessageAdded{MessageId: "msg_2", Role: "assistant", Content: "Let's look at the upstream.", TurnNumber: 1,
		Sources: []*casepb.Source{{DocumentId: "doc_1", Title: "Nginx runbook"}}, PromptTokens: 100, CompletionTokens: 20, Provider: "primary"})
	add("system", &casepb.StatusChangeProposed{To: StatusInvestigating, Reason: "needs investigation"})
	add(u, &casepb.StatusChanged{From: StatusInquiry, To: StatusInvestigating, Reason: "confirmed"})
	add("system", &casepb.MilestonesUpdated{Completed: []string{"symptom_verified", "timeline_established"}})
	add("system", &casepb.HypothesisRecorded{HypothesisId: "hyp_1", Statement: "bad upstream config", Category: "config", Confidence: "probable", Status: "active"})
	add("system", &casepb.HypothesisEvaluated{HypothesisId: "hyp_1", Status: "validated", Confidence: "confident", Rationale: "log shows it"})
	add("system", &casepb.SolutionProposed{SolutionId: "sol_1", Kind: "rollback", Description: "roll back the deploy"})
	add(u, &casepb.MessageAdded{MessageId: "msg_3", Role: "user", Content: "rolled back", TurnNumber: 2, ClientMsgId: "c2"})
	add("system", &casepb.TurnFailed{TurnNumber: 2, Reason: "provider unavailable", ClientMsgId: "c2"})
	add(u, &casepb.StatusChanged{From: StatusInvestigating, To: StatusResolved, Reason: "fixed"})
	return evs
}

// goldenExpect is what folding the golden log must give, in a stable form.
type goldenExpect struct {
	Row        CaseRow
	History    []StatusChange
	Milestones []string
	Seq        uint64
	Files      int
	Hypotheses []string // id:status:confidence
	ClientMsgs []string
}

func fold(t *testing.T, evs []*casepb.Event) goldenExpect {
	t.Helper()
	s := newCaseState()
	for _, ev := range evs {
		if err := s.apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	v := s.view()
	var hyps []string
	for _, h := range s.snap.Hypotheses {
		hyps = append(hyps, h.HypothesisId+":"+h.Status+":"+h.Confidence)
	}
	return goldenExpect{Row: v.Row, History: v.StatusHistory, Milestones: v.Milestones, Seq: v.Seq,
		Files: v.UploadedFiles, Hypotheses: hyps, ClientMsgs: s.snap.ClientMsgIds}
}

// TestGoldenEventLogs decodes every event log written by earlier versions
// and checks that this build folds it into the state that version recorded:
// an upgrade must never strand a case.
func TestGoldenEventLogs(t *testing.T) {
	if *updateGolden {
		writeGolden(t)
	}
	dirs, err := filepath.Glob("testdata/events/v*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden event logs found (%v)", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, "case.events"))
			if err != nil {
				t.Fatal(err)
			}
			var evs []*casepb.Event
			for len(raw) > 0 {
				n, w := binary.Uvarint(raw)
				if w <= 0 || uint64(len(raw)-w) < n {
					t.Fatal("truncated golden log")
				}
				ev := &casepb.Event{}
				if err := proto.Unmarshal(raw[w:w+int(n)], ev); err != nil {
					t.Fatalf("decode event %d: %v", len(evs)+1, err)
				}
				evs = append(evs, ev)
				raw = raw[w+int(n):]
			}
			got := fold(t, evs)
			wantJSON, err := os.ReadFile(filepath.Join(dir, "expect.json"))
			if err != nil {
				t.Fatal(err)
			}
			gotJSON, _ := json.MarshalIndent(got, "", "  ")
			if string(gotJSON)+"\n" != string(wantJSON) {
				t.Fatalf("folded state differs from what %s recorded:\n got: %s\nwant: %s", dir, gotJSON, wantJSON)
			}
		})
	}
}

func writeGolden(t *testing.T) {
	dir := filepath.Join("testdata", "events", goldenVersion)
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("%s exists: golden logs of a released version are never rewritten; bump goldenVersion", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	evs := goldenEvents()
	var out []byte
	for _, ev := range evs {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	exp, _ := json.MarshalIndent(fold(t, evs), "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "case.events"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "expect.json"), append(exp, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
