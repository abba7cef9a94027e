package actors

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/faultmaven/faultmaven/actors/agent"
	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/casepb"
	"github.com/faultmaven/faultmaven/persistence"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// ErrCaseFailed is returned to the caller whose request was being handled
// when the case actor crashed; the actor restarts from Pebble.
var ErrCaseFailed = errors.New("actors: case failed while handling the request and was restarted")

// Config tunes the case actors. Zero fields take defaults.
type Config struct {
	CaseIdle       time.Duration // passivate after this long without a request (default 10m)
	SnapshotEvery  int           // write a snapshot every N events (default 64)
	RequestTimeout time.Duration // deadline for one request to a case (default 10s)
	MaxRestarts    int           // panics tolerated per incarnation before the case is degraded (default 3)
	InboxSize      int           // initial inbox size per case actor (default 4; it grows on demand, idle actors must be cheap)
	RestartDelay   time.Duration // pause before a crashed case restarts (default 10ms)
	TurnTimeout    time.Duration // whole agent turn, LLM calls and tools included (default 5m)
	Agent          agent.Config  // the investigation method's budgets
	RedactEmails   bool          // also pseudonymise e-mail addresses sent to the LLM
	TestHooks      bool          // honour opPanic (tests only)
}

func (c *Config) ensureDefaults() {
	if c.CaseIdle <= 0 {
		c.CaseIdle = 10 * time.Minute
	}
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = 64
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.MaxRestarts <= 0 {
		c.MaxRestarts = 3
	}
	if c.InboxSize <= 0 {
		c.InboxSize = 4
	}
	if c.RestartDelay <= 0 {
		c.RestartDelay = 10 * time.Millisecond
	}
	if c.TurnTimeout <= 0 {
		c.TurnTimeout = 5 * time.Minute
	}
}

// Deps are the collaborators of the case system.
type Deps struct {
	Keyspace *persistence.Keyspace // the "case" keyspace (required)
	Engine   *actor.Engine         // nil: a private engine is created
	Logger   *zap.Logger
	Metrics  prometheus.Registerer // nil: metrics are not exported
	Now      func() time.Time
	// LLM answers turns; nil means no model is configured and turns get a
	// labelled retrieval-only answer.
	LLM llm.Client
	// Audit is the "audit" keyspace: the egress record of every LLM call.
	Audit *persistence.Keyspace
	// Evidence serves the case's uploaded files to the agent (digests in the
	// context, the evidence tools) and to the timeline; nil disables them.
	Evidence EvidenceSource
	// Knowledge serves search_knowledge and the knowledge hits put into each
	// turn's context; nil disables them.
	Knowledge KnowledgeSource
	// NodeSecret keys the per-case pseudonyms of secrets (≥ 32 random bytes,
	// stable across restarts so a secret keeps its pseudonym).
	NodeSecret []byte
}

// caseDeps is what every case actor and casemgr share (read-only).
type caseDeps struct {
	store          *caseStore
	log            *zap.Logger
	now            func() time.Time
	metrics        *caseMetrics
	caseIdle       time.Duration
	inboxSize      int
	restartDelay   time.Duration
	maxRestarts    int
	testHooks      bool
	turnTimeout    time.Duration
	requestTimeout time.Duration
	newAgent       func(caseID string, turn int, clock *turnClock) *agent.Agent
	evidence       EvidenceSource
	knowledge      KnowledgeSource
	owners         sync.Map // interned owner ids, shared by that owner's case actors
	mgr            *actor.PID
}

// intern returns one shared copy of an owner id.
func (d *caseDeps) intern(s string) string {
	v, _ := d.owners.LoadOrStore(s, s)
	return v.(string)
}

// Cases is the case system's API: the gateway calls it, it routes commands to
// the case actors through casemgr, and it serves list/detail rows straight
// from the row projection so listing never activates actors.
type Cases struct {
	cfg      Config
	d        *caseDeps
	engine   *actor.Engine
	mgr      *actor.PID
	degraded sync.Map
	stopped  atomic.Bool
	createMu sync.Mutex // serialises idempotency checks and title counters
	audit    *auditStore
}

// NewCases starts casemgr on the engine.
func NewCases(cfg Config, deps Deps) (*Cases, error) {
	cfg.ensureDefaults()
	if deps.Keyspace == nil {
		return nil, errors.New("actors: Deps.Keyspace is required")
	}
	if deps.LLM != nil && (deps.Audit == nil || len(deps.NodeSecret) < 32) {
		return nil, errors.New("actors: with an LLM, Deps.Audit and a 32-byte Deps.NodeSecret are required (no egress without redaction and audit)")
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Engine == nil {
		e, err := actor.NewEngine(actor.NewEngineConfig())
		if err != nil {
			return nil, fmt.Errorf("actors: start engine: %w", err)
		}
		deps.Engine = e
	}
	c := &Cases{cfg: cfg, engine: deps.Engine}
	c.d = &caseDeps{
		store:          &caseStore{ks: deps.Keyspace, snapEvery: uint64(cfg.SnapshotEvery)},
		log:            deps.Logger,
		now:            deps.Now,
		metrics:        newCaseMetrics(deps.Metrics),
		caseIdle:       cfg.CaseIdle,
		inboxSize:      cfg.InboxSize,
		restartDelay:   cfg.RestartDelay,
		maxRestarts:    cfg.MaxRestarts,
		testHooks:      cfg.TestHooks,
		turnTimeout:    cfg.TurnTimeout,
		requestTimeout: cfg.RequestTimeout,
		evidence:       deps.Evidence,
		knowledge:      deps.Knowledge,
	}
	c.audit = &auditStore{ks: deps.Audit}
	c.d.newAgent = c.agentFactory(cfg, deps)
	c.mgr = deps.Engine.Spawn(newCasemgr(c.d, &c.degraded), "casemgr",
		actor.WithID("main"), actor.WithInboxSize(1024), actor.WithMaxRestarts(1<<30))
	// Case actors report to casemgr; the first one is spawned only after a
	// request has reached casemgr, which happens after this write.
	c.d.mgr = c.mgr
	return c, nil
}

// Ready reports whether the case system accepts requests.
func (c *Cases) Ready() error {
	if c.stopped.Load() {
		return ErrStopped
	}
	return nil
}

// Shutdown stops accepting requests and drains every case actor: requests
// already queued are answered before their actor stops. Idempotent.
func (c *Cases) Shutdown(ctx context.Context) error {
	if c.stopped.Swap(true) {
		return nil
	}
	done := make(chan struct{})
	c.engine.Send(c.mgr, &drain{done: done})
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("actors: drain case actors: %w", ctx.Err())
	}
	select {
	case <-c.engine.Poison(c.mgr).Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("actors: stop casemgr: %w", ctx.Err())
	}
}

// ask sends one request to a case and waits for its answer.
func (c *Cases) ask(ctx context.Context, caseID, owner string, op any) (any, error) {
	if c.stopped.Load() {
		return nil, ErrStopped
	}
	if !validCaseID(caseID) {
		return nil, ErrNotFound
	}
	r := &request{caseID: caseID, owner: owner, op: op, reply: make(chan result, 1)}
	c.engine.Send(c.mgr, r)
	t := time.NewTimer(c.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case res := <-r.reply:
		return res.val, res.err
	case <-t.C:
		return nil, ErrTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

var caseIDRE = regexp.MustCompile(`^case_[0-9a-z]{26}$`)

// validCaseID rejects ids this server could not have issued before they
// reach a key or an actor name.
func validCaseID(id string) bool { return caseIDRE.MatchString(id) }

var idemKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{8,255}$`)

// Create makes a new case owned by req.Owner. It writes the creation event,
// row, list index and idempotency entry in one synced batch; the case actor
// is activated by the first command that needs it.
func (c *Cases) Create(ctx context.Context, req CreateCase) (CaseRow, error) {
	if c.stopped.Load() {
		return CaseRow{}, ErrStopped
	}
	if req.Owner == "" {
		return CaseRow{}, fmt.Errorf("%w: owner is required", ErrInvalidInput)
	}
	if req.IdempotencyKey != "" && !idemKeyRE.MatchString(req.IdempotencyKey) {
		return CaseRow{}, fmt.Errorf("%w: Idempotency-Key must be 8-255 characters of A-Z a-z 0-9 _ -", ErrInvalidInput)
	}
	req.Title = strings.TrimSpace(req.Title)
	if req.Title != "" {
		if err := validTitle(req.Title); err != nil {
			return CaseRow{}, err
		}
	}
	if len(req.Description) > 20000 {
		return CaseRow{}, fmt.Errorf("%w: description must be at most 20000 characters", ErrInvalidInput)
	}
	switch req.Priority {
	case "", "low", "medium", "high", "critical":
	default:
		return CaseRow{}, fmt.Errorf("%w: priority must be low, medium, high or critical", ErrInvalidInput)
	}

	c.createMu.Lock()
	defer c.createMu.Unlock()
	st := c.d.store
	if req.IdempotencyKey != "" {
		id, err := st.lookupIdem(req.Owner, req.IdempotencyKey)
		if err == nil {
			return st.row(id)
		}
		if !errors.Is(err, persistence.ErrNotFound) {
			return CaseRow{}, err
		}
	}
	now := c.d.now().UTC()
	var ctrKey []byte
	var ctr uint32
	if req.Title == "" {
		day := now.Format("060102")
		n, err := st.counter(req.Owner, day)
		if err != nil {
			return CaseRow{}, err
		}
		ctr = n + 1
		ctrKey = counterKey(req.Owner, day)
		req.Title = fmt.Sprintf("Case-%s-%d", day, ctr)
	}
	id := "case_" + strings.ToLower(ulid.Make().String())
	s := newCaseState()
	ev := s.newEvent(now, req.Owner)
	ev.Kind = &casepb.Event_Created{Created: &casepb.CaseCreated{
		CaseId: id, Owner: req.Owner, Title: req.Title, Description: req.Description,
		Priority: req.Priority, IdempotencyKey: req.IdempotencyKey,
	}}
	if err := s.apply(ev); err != nil {
		return CaseRow{}, err
	}
	if err := st.createCase(s, ev, ctrKey, ctr); err != nil {
		return CaseRow{}, fmt.Errorf("create case: %w", err)
	}
	c.d.metrics.eventsAppended.Inc()
	return s.row(), nil
}

// Get returns the row of a case the owner may see.
func (c *Cases) Get(_ context.Context, owner, caseID string) (CaseRow, error) {
	if !validCaseID(caseID) {
		return CaseRow{}, ErrNotFound
	}
	r, err := c.d.store.row(caseID)
	if err != nil {
		return CaseRow{}, err
	}
	if r.UserID != owner {
		return CaseRow{}, ErrNotFound
	}
	_, r.Degraded = c.degraded.Load(caseID)
	return r, nil
}

// List returns the owner's cases, newest first, including closed ones.
func (c *Cases) List(_ context.Context, owner string, limit, offset int) ([]CaseRow, int, error) {
	if limit <= 0 || offset < 0 {
		return nil, 0, fmt.Errorf("%w: limit must be positive and offset not negative", ErrInvalidInput)
	}
	rows, total, err := c.d.store.list(owner, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	for i := range rows {
		_, rows[i].Degraded = c.degraded.Load(rows[i].CaseID)
	}
	return rows, total, nil
}

// View returns the full read model of a case (for /ui).
func (c *Cases) View(ctx context.Context, owner, caseID string) (CaseView, error) {
	v, err := c.ask(ctx, caseID, owner, opView{})
	if err != nil {
		return CaseView{}, err
	}
	return v.(CaseView), nil
}

// Messages returns one page of the conversation, oldest first.
func (c *Cases) Messages(ctx context.Context, owner, caseID string, limit, offset int) ([]Message, int, error) {
	if _, err := c.Get(ctx, owner, caseID); err != nil {
		return nil, 0, err
	}
	if limit <= 0 || offset < 0 {
		return nil, 0, fmt.Errorf("%w: limit must be positive and offset not negative", ErrInvalidInput)
	}
	return c.d.store.messages(caseID, limit, offset)
}

// Rename sets a user-chosen title.
func (c *Cases) Rename(ctx context.Context, owner, caseID, title string) (CaseRow, error) {
	return c.rowOp(ctx, caseID, owner, opRename{title: title, by: owner})
}

// ChangeStatus moves a case along its lifecycle; an invalid move is
// ErrInvalidTransition and leaves the history untouched.
func (c *Cases) ChangeStatus(ctx context.Context, owner, caseID, to, reason, closureReason string) (CaseRow, error) {
	return c.rowOp(ctx, caseID, owner, opStatus{to: to, reason: reason, closure: closureReason, by: owner})
}

// Delete removes a case and its whole event log.
func (c *Cases) Delete(ctx context.Context, owner, caseID string) error {
	_, err := c.ask(ctx, caseID, owner, opDelete{})
	return err
}

// InjectPanic makes the case actor panic while handling a request. It works
// only when Config.TestHooks is set.
func (c *Cases) InjectPanic(ctx context.Context, owner, caseID string) error {
	_, err := c.ask(ctx, caseID, owner, opPanic{})
	return err
}

func (c *Cases) rowOp(ctx context.Context, caseID, owner string, op any) (CaseRow, error) {
	v, err := c.ask(ctx, caseID, owner, op)
	if err != nil {
		return CaseRow{}, err
	}
	r := v.(CaseRow)
	return r, nil
}
