package actors

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/actors/casepb"
	"github.com/faultmaven/faultmaven/persistence"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// A crash at the moment the ack arrives, or at the moment the fake LLM has
// the request, must find the user message on disk (the crash images keep
// only synced data). It guards submitTurn's order: the user message's sync
// before the ack and before the turn starts (ADR 0007 tried preparing the
// turn during that sync; this test then also caught an unsynced egress
// record).
func TestUserMessageIsDurableBeforeAckAndBeforeTheLLMRequest(t *testing.T) {
	fs := vfs.NewCrashableMem()
	// Syncs take a few milliseconds, as on a real disk, so a request that
	// did not wait for the user message's sync would leave before it.
	st, err := persistence.Open("/data", &persistence.Options{FS: slowSyncFS{fs, 3 * time.Millisecond}, NoBlobs: true})
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := st.Keyspace(persistence.SpaceCase)
	audit, _ := st.Keyspace(persistence.SpaceAudit)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	fake := llmtest.New()
	defer fake.Close()
	type image struct {
		text string // the user message that must be in it
		fs   *vfs.MemFS
		at   string
	}
	var (
		mu     sync.Mutex
		images []image
	)
	fake.SetResponder(func(req *llmtest.ChatRequest) llmtest.Reply {
		last := ""
		for _, m := range req.Messages {
			if m.Role == "user" {
				last = m.Content
			}
		}
		img := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
		mu.Lock()
		images = append(images, image{text: last, fs: img, at: "the LLM request"})
		mu.Unlock()
		return llmtest.Reply{Content: "noted", ChunkChars: 3}
	})
	chain, err := llm.NewChain(llm.Config{Providers: []llm.ProviderConfig{{Name: "fake", BaseURL: fake.URL(), Model: "m"}},
		AttemptTimeout: 5 * time.Second, MaxRetries: -1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCases(Config{}, Deps{Keyspace: ks, Audit: audit, NodeSecret: secret, LLM: chain})
	if err != nil {
		t.Fatal(err)
	}
	sys := &testSys{cases: c, store: st}
	defer sys.stop()

	ctx := context.Background()
	r, err := c.Create(ctx, CreateCase{Owner: "usr_a"})
	if err != nil {
		t.Fatal(err)
	}
	sub := &collector{}
	if _, err := c.Subscribe(ctx, "usr_a", r.CaseID, 0, sub); err != nil {
		t.Fatal(err)
	}
	const turns = 12
	for i := 1; i <= turns; i++ {
		text := fmt.Sprintf("turn %d: the disk on db-%d is full", i, i)
		if _, err := c.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: fmt.Sprint("m", i), Text: text}); err != nil {
			t.Fatal(err)
		}
		img := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
		mu.Lock()
		images = append(images, image{text: text, fs: img, at: "the ack"})
		mu.Unlock()
		sub.waitFor(t, "turn_done", func(f Frame) bool { return f.Type == "turn_done" && f.Turn == i })
	}

	mu.Lock()
	defer mu.Unlock()
	if len(images) != 2*turns {
		t.Fatalf("%d crash images, want %d (one per ack, one per LLM request)", len(images), 2*turns)
	}
	for _, img := range images {
		st, err := persistence.Open("/data", &persistence.Options{FS: img.fs, NoBlobs: true})
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := st.Keyspace(persistence.SpaceCase)
		found := false
		err = (&caseStore{ks: ks, snapEvery: 64}).events(r.CaseID, func(ev *casepb.Event) error {
			if m := ev.GetMessageAdded(); m != nil && m.GetRole() == "user" && m.GetContent() == img.text {
				found = true
			}
			return nil
		})
		_ = st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			t.Errorf("a crash at %s loses the user message %q", img.at, img.text)
		}
	}
}

// slowSyncFS delays every sync of a file written through it.
type slowSyncFS struct {
	vfs.FS
	delay time.Duration
}

func (f slowSyncFS) wrap(file vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return slowSyncFile{file, f.delay}, nil
}

func (f slowSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return f.wrap(f.FS.Create(name, c))
}

func (f slowSyncFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return f.wrap(f.FS.ReuseForWrite(oldname, newname, c))
}

func (f slowSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return f.wrap(f.FS.OpenReadWrite(name, c, opts...))
}

type slowSyncFile struct {
	vfs.File
	delay time.Duration
}

func (f slowSyncFile) Sync() error {
	time.Sleep(f.delay)
	return f.File.Sync()
}

func (f slowSyncFile) SyncData() error {
	time.Sleep(f.delay)
	return f.File.SyncData()
}

func (f slowSyncFile) SyncTo(length int64) (bool, error) {
	time.Sleep(f.delay)
	return f.File.SyncTo(length)
}

// The ack stages of a turn are timed: route when the request carries
// ReceivedAt, apply and sync for every turn, queued or not.
func TestAckStagesAreTimed(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	fake.SetDefault(llmtest.Reply{Content: "slow answer", TTFT: 300 * time.Millisecond})
	sys := startTurnCases(t, fake, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	count := func(stage string) uint64 {
		var d dto.Metric
		if err := sys.cases.d.metrics.ackStages.WithLabelValues(stage).(prometheus.Histogram).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetHistogram().GetSampleCount()
	}
	first, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "a", Text: "one", ReceivedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "b", Text: "two"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.cases.AwaitTurn(ctx, "usr_a", first, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, s := range []string{stageRoute, stageApply, stageSync} {
		got[s] = count(s)
	}
	want := map[string]uint64{stageRoute: 1, stageApply: 2, stageSync: 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stage samples %v, want %v", got, want)
	}

	// The way to the first LLM request: start only for the turn that began
	// at its ack (the second waited in the queue), the others for both.
	second, err := sys.cases.AwaitTurn(ctx, "usr_a", Ack{CaseID: r.CaseID, ClientMsgID: "b", Turn: first.Turn + 1}, 10*time.Second)
	if err != nil || second.Status != TurnCompleted {
		t.Fatalf("second turn: %+v, %v", second, err)
	}
	reqCount := func(stage string) uint64 {
		var d dto.Metric
		if err := sys.cases.d.metrics.requestStages.WithLabelValues(stage).(prometheus.Histogram).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetHistogram().GetSampleCount()
	}
	got = map[string]uint64{}
	for _, s := range []string{stageStart, stagePrepare, stageAssemble, stageAudit} {
		got[s] = reqCount(s)
	}
	want = map[string]uint64{stageStart: 1, stagePrepare: 2, stageAssemble: 2, stageAudit: 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("request stage samples %v, want %v", got, want)
	}
}
