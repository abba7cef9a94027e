package actors

import (
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/faultmaven/faultmaven/persistence"
)

const auditCase = "case_00000000000000000000000001"

func auditRecord(turn, call int, phase string) EgressRecord {
	return EgressRecord{CaseID: auditCase, Turn: turn, Call: call, Phase: phase, At: time.Unix(1_700_000_000, 0).UTC(),
		Messages: []EgressMsg{{Role: "user", Content: "disk full on <secret-1>"}}, Tools: []string{"update_milestones"}}
}

func TestAuditListsRequestWithItsOutcome(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	defer st.Close()
	ks, _ := st.Keyspace(persistence.SpaceAudit)
	a := &auditStore{ks: ks}

	// A record from before outcomes had their own key: request and outcome
	// in one value.
	legacy := auditRecord(1, 1, "sent")
	legacy.Provider, legacy.Model = "old", "m0"
	v, _ := json.Marshal(legacy)
	k := binary.BigEndian.AppendUint32(auditPrefix(auditCase), 1)
	if err := ks.Set(binary.BigEndian.AppendUint32(k, 1), v, true); err != nil {
		t.Fatal(err)
	}

	for _, r := range []EgressRecord{auditRecord(2, 1, phaseSending), auditRecord(2, 2, phaseSending), auditRecord(3, 1, phaseSending)} {
		if err := a.write(r); err != nil {
			t.Fatal(err)
		}
	}
	done := EgressRecord{CaseID: auditCase, Turn: 2, Call: 1, Phase: "sent", At: time.Unix(1_700_000_009, 0).UTC(),
		Provider: "primary", Model: "m1"}
	failed := EgressRecord{CaseID: auditCase, Turn: 2, Call: 2, Phase: "failed", At: done.At, Provider: "primary",
		Error: "llm provider primary: rate limited (429)"}
	for _, r := range []EgressRecord{done, failed} {
		if err := a.write(r); err != nil {
			t.Fatal(err)
		}
	}

	recs, err := a.list(auditCase)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		turn, call             int
		phase, provider, model string
		errText                string
		at                     time.Time
	}
	var got []row
	for _, r := range recs {
		got = append(got, row{r.Turn, r.Call, r.Phase, r.Provider, r.Model, r.Error, r.At})
		if len(r.Messages) != 1 || r.Messages[0].Content != "disk full on <secret-1>" || len(r.Tools) != 1 {
			t.Errorf("record %d/%d lost its request: %+v", r.Turn, r.Call, r)
		}
	}
	want := []row{
		{1, 1, "sent", "old", "m0", "", legacy.At},
		{2, 1, "sent", "primary", "m1", "", done.At},
		{2, 2, "failed", "primary", "", failed.Error, done.At},
		{3, 1, "sending", "", "", "", legacy.At},
	}
	if len(got) != len(want) {
		t.Fatalf("records = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestAuditOutcomeDurability: the request's record is durable when write
// returns; the outcome, written without sync, is durable once any later
// synced write (the turn's next event) is.
func TestAuditOutcomeDurability(t *testing.T) {
	fs := vfs.NewCrashableMem()
	st, err := persistence.Open("/data", &persistence.Options{FS: fs, NoBlobs: true})
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := st.Keyspace(persistence.SpaceAudit)
	cases, _ := st.Keyspace(persistence.SpaceCase)
	a := &auditStore{ks: ks}
	if err := a.write(auditRecord(1, 1, phaseSending)); err != nil {
		t.Fatal(err)
	}
	if err := a.write(EgressRecord{CaseID: auditCase, Turn: 1, Call: 1, Phase: "sent", Provider: "p"}); err != nil {
		t.Fatal(err)
	}
	beforeSync := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := cases.Set([]byte("c/x/e/1"), []byte("the answer"), true); err != nil {
		t.Fatal(err)
	}
	afterSync := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		fs    *vfs.MemFS
		phase string
	}{
		{"crash before the next synced write", beforeSync, phaseSending},
		{"crash after it", afterSync, "sent"},
	} {
		st, err := persistence.Open("/data", &persistence.Options{FS: tc.fs, NoBlobs: true})
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := st.Keyspace(persistence.SpaceAudit)
		recs, err := (&auditStore{ks: ks}).list(auditCase)
		_ = st.Close()
		if err != nil || len(recs) != 1 || recs[0].Phase != tc.phase || len(recs[0].Messages) != 1 {
			t.Fatalf("%s: records %+v (%v), want one %q record with its request", tc.name, recs, err, tc.phase)
		}
	}
}
