package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/anthdm/hollywood/actor"
	"github.com/faultmaven/faultmaven/actors/agent"
	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/agent/redact"
	"github.com/faultmaven/faultmaven/actors/casepb"
	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"
)

// Limits of a turn request.
const (
	maxTurnText     = 200_000
	maxClientMsgID  = 128
	maxAttachments  = 20
	autoTitleLength = 60
	knowledgeHits   = 5   // knowledge hits put into a turn's context
	historyMessages = 400 // most recent messages handed to the agent (it summarises the older ones)
)

// Turn-related operations carried by request.op.
type (
	opTurn      struct{ req TurnRequest }
	opCancel    struct{}
	opSubscribe struct {
		sub   Subscriber
		since uint64
	}
	opUnsubscribe struct{ sub Subscriber }
	opTurnResult  struct{ turn int }
)

// turnRun is the in-flight turn of a case.
type turnRun struct {
	n      int
	cancel context.CancelFunc
	// started is closed once turn_started is published: the turn delivers
	// no delta before.
	started chan struct{}
	// live is the case's subscribers, for the turn to deliver its deltas
	// to (turnActor.deliver); the case actor replaces it whenever they
	// change (caseRuntime.subsChanged). It lives here, not in every idle
	// case's runtime, as only a running turn reads it.
	live atomic.Pointer[[]Subscriber]
}

// markStarted publishes turn_started for the running turn and lets it
// deliver deltas.
func (a *caseActor) markStarted() {
	a.publish(Frame{Type: "turn_started", CaseID: a.id, Turn: a.rt.turn.n})
	close(a.rt.turn.started)
}

// queuedTurn waits for the in-flight turn to finish; its user message is
// already durable.
type queuedTurn struct {
	n     int
	text  string
	acked time.Time // set when the turn starts right at its ack
}

// Milestone names of the investigation method.
var milestoneNames = []string{
	"symptom_verified", "scope_assessed", "timeline_established", "changes_identified",
	"root_cause_identified", "solution_proposed", "solution_applied", "solution_verified",
}

// handleTurnOp dispatches the turn-related operations; it reports false for
// operations it does not own.
func (a *caseActor) handleTurnOp(ctx *actor.Context, r *request) bool {
	switch op := r.op.(type) {
	case opTurn:
		a.submitTurn(ctx, r, op.req)
	case opCancel:
		if a.rt.turn != nil {
			a.rt.turn.cancel()
		}
		r.respond(nil, nil)
	case opSubscribe:
		a.subscribe(r, op)
	case opUnsubscribe:
		delete(a.rt.subs, op.sub)
		a.rt.subsChanged()
		r.respond(nil, nil)
	case opTurnResult:
		out, err := a.turnOutcome(op.turn)
		r.respond(out, err)
	case opMilestones:
		a.toolMilestones(r, op)
	case opRecordHypothesis:
		a.toolRecordHypothesis(r, op)
	case opEvaluateHypothesis:
		a.toolEvaluateHypothesis(r, op)
	case opProposeSolution:
		a.toolProposeSolution(r, op)
	case opProposeStatus:
		a.toolProposeStatus(r, op)
	default:
		return false
	}
	return true
}

func validateTurn(req TurnRequest) error {
	if strings.TrimSpace(req.Text) == "" && len(req.Attachments) == 0 && len(req.Evidence) == 0 && req.IntentType == "" {
		return fmt.Errorf("%w: a turn needs text, an attachment or an intent", ErrInvalidInput)
	}
	if len(req.Text) > maxTurnText {
		return fmt.Errorf("%w: text must be at most %d characters", ErrInvalidInput, maxTurnText)
	}
	if !utf8.ValidString(req.Text) {
		return fmt.Errorf("%w: text must be valid UTF-8", ErrInvalidInput)
	}
	if len(req.ClientMsgID) > maxClientMsgID {
		return fmt.Errorf("%w: client_msg_id must be at most %d characters", ErrInvalidInput, maxClientMsgID)
	}
	if len(req.Attachments)+len(req.Evidence) > maxAttachments {
		return fmt.Errorf("%w: at most %d attachments per turn", ErrInvalidInput, maxAttachments)
	}
	return nil
}

// submitTurn persists the user message (and any status change its intent
// carries) in one synced batch, acknowledges, and starts or queues the turn.
func (a *caseActor) submitTurn(ctx *actor.Context, r *request, req TurnRequest) {
	if !req.ReceivedAt.IsZero() {
		a.d.metrics.stage(stageRoute, time.Since(req.ReceivedAt))
	}
	if err := validateTurn(req); err != nil {
		r.respond(nil, err)
		return
	}
	sn := a.state.snap
	if req.ClientMsgID != "" && slices.Contains(sn.ClientMsgIds, req.ClientMsgID) {
		ack, err := a.findAck(req.ClientMsgID)
		if err != nil {
			r.respond(nil, err)
			return
		}
		// A repeat of a turn that failed is the client's retry: run it
		// again. Anything else gets the first ack and no second turn.
		if out, err := a.turnOutcome(ack.Turn); err != nil || out.Status != TurnFailed {
			r.respond(ack, nil)
			return
		}
	}
	now := a.d.now()
	n := int(sn.CurrentTurn) + 1
	user := a.state.newEvent(now, r.owner)
	user.Kind = &casepb.Event_MessageAdded{MessageAdded: &casepb.MessageAdded{
		MessageId: "msg_" + strings.ToLower(ulid.Make().String()), Role: "user", Content: req.Text,
		TurnNumber: int32(n), ClientMsgId: req.ClientMsgID, AttachmentIds: req.Attachments,
	}}
	next := a.state.clone()
	if err := next.apply(user); err != nil {
		r.respond(nil, err)
		return
	}
	evs := []*casepb.Event{user}
	for _, e := range req.Evidence {
		ev := evidenceEvent(next, now, r.owner, n, e)
		if err := next.apply(ev); err != nil {
			r.respond(nil, err)
			return
		}
		evs = append(evs, ev)
	}
	more, err := next.decideIntent(req, r.owner, now)
	if err != nil {
		r.respond(nil, err)
		return
	}
	for _, ev := range more {
		if err := next.apply(ev); err != nil {
			r.respond(nil, err)
			return
		}
	}
	evs = append(evs, more...)
	if t := autoTitle(req.Text); sn.TitleIsPlaceholder && t != "" {
		ev := next.newEvent(now, "system")
		ev.Kind = &casepb.Event_TitleChanged{TitleChanged: &casepb.TitleChanged{Title: t, Source: "auto"}}
		if err := next.apply(ev); err != nil {
			r.respond(nil, err)
			return
		}
		evs = append(evs, ev)
	}
	text := req.Text
	if strings.TrimSpace(text) == "" && len(req.Evidence) > 0 {
		text = "(The user uploaded evidence without a message: " + evidenceNames(req.Evidence) + ". Look at it and say what stands out.)"
	}
	q := queuedTurn{n: n, text: text}

	// The user message's batch is applied and waited for; then the events
	// and the ack go out, and only then is the turn spawned. (Spawning it
	// while the sync ran, ADR 0007, delayed the ack on two cores: the
	// turn's preparation competed with the sync's completion and the ack's
	// delivery.) The turn reads its own input on its own goroutine
	// (turnPrep), so the case actor is free again at once.
	t0 := time.Now()
	pending, err := a.d.store.appendEventsNoWait(next, evs)
	t1 := time.Now()
	a.d.metrics.stage(stageApply, t1.Sub(t0))
	if err != nil {
		a.d.log.Error("append case events", zap.String("case_id", a.id), zap.Error(err))
		r.respond(nil, fmt.Errorf("persist turn of case %s: storage failed", a.id))
		return
	}
	a.state = next // the log holds it; only its durability is pending
	a.rt.noteHistory(evs)
	if err := pending.Wait(); err != nil {
		a.d.log.Error("sync case events", zap.String("case_id", a.id), zap.Error(err))
		r.respond(nil, fmt.Errorf("persist turn of case %s: storage failed", a.id))
		return
	}
	a.d.metrics.stage(stageSync, time.Since(t1))
	a.d.metrics.eventsAppended.Add(float64(len(evs)))
	for _, ev := range evs {
		a.publish(eventFrame(a.id, ev))
	}
	r.respond(Ack{CaseID: a.id, ClientMsgID: req.ClientMsgID, Seq: user.GetSeq(), Turn: n}, nil)
	if a.rt.turn != nil {
		ts := a.rt.turnState()
		ts.queue = append(ts.queue, q)
		return
	}
	q.acked = time.Now()
	// Let the goroutines just made runnable (the connection's writer with
	// the ack, the caller with the reply) run before spawning the turn: Go
	// queues each of them behind the next one readied on this P, so the
	// spawn and the turn_started frame would otherwise go first.
	runtime.Gosched()
	a.startTurn(ctx, q)
}

func evidenceNames(es []EvidenceRef) string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Filename
	}
	return strings.Join(names, ", ")
}

// decideIntent turns the extension's intents into status events (§4.8).
func (s *caseState) decideIntent(req TurnRequest, by string, t time.Time) ([]*casepb.Event, error) {
	switch req.IntentType {
	case "status_transition":
		to, _ := req.Intent["to_state"].(string)
		confirmed, _ := req.Intent["user_confirmed"].(bool)
		if !confirmed || to == "" {
			return nil, nil // a wish, not a decision: the agent may propose it
		}
		closure, _ := req.Intent["closure_reason"].(string)
		return s.decideStatus(to, "requested by the user: "+truncate(req.Text, 200), closure, by, t)
	case "confirmation":
		yes, ok := req.Intent["confirmation_value"].(bool)
		pending := s.snap.PendingStatus
		if !ok || pending == "" {
			return nil, nil
		}
		if yes {
			return s.decideStatus(pending, "confirmed by the user", "", by, t)
		}
		ev := s.newEvent(t, by)
		ev.Kind = &casepb.Event_StatusChangeProposed{StatusChangeProposed: &casepb.StatusChangeProposed{To: "", Reason: "declined by the user"}}
		return []*casepb.Event{ev}, nil
	}
	return nil, nil
}

// autoTitle derives a case title from the first user message: its first
// line, cut at a word boundary.
func autoTitle(text string) string {
	line := strings.TrimSpace(maskSecrets(text))
	if i := strings.IndexAny(line, "\r\n"); i >= 0 {
		line = strings.TrimSpace(line[:i])
	}
	line = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, line)
	if line == "" {
		return ""
	}
	runes := []rune(line)
	if len(runes) <= autoTitleLength {
		return line
	}
	cut := string(runes[:autoTitleLength])
	if i := strings.LastIndex(cut, " "); i > autoTitleLength/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,.;:-") + "…"
}

// maskSecrets hides detected secrets: titles are listed everywhere and
// must not carry a password the user pasted into the first message.
func maskSecrets(s string) string {
	spans := redact.Detect(s)
	for i := len(spans) - 1; i >= 0; i-- {
		s = s[:spans[i].Start] + "•••" + s[spans[i].End:]
	}
	return s
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// findAck rebuilds the ack of the latest user message with clientMsgID.
func (a *caseActor) findAck(clientMsgID string) (Ack, error) {
	var ack Ack
	found := func(ev *casepb.Event) {
		if m := ev.GetMessageAdded(); m != nil && m.GetRole() == "user" && m.GetClientMsgId() == clientMsgID {
			ack = Ack{CaseID: a.id, ClientMsgID: clientMsgID, Seq: ev.GetSeq(), Turn: int(m.GetTurnNumber()), Duplicate: true}
		}
	}
	// The case is loaded, so its log is indexed (caseStore.load).
	ev, err := a.d.store.indexedEvent(a.id, ackIndexKey(a.id, clientMsgID))
	if ev != nil {
		found(ev)
	}
	if err == nil && ack.Seq == 0 {
		err = fmt.Errorf("client_msg_id %q seen but its message is missing", clientMsgID)
	}
	return ack, err
}

// startTurn spawns the turn child for a queued turn, whose user message is
// durable already.
func (a *caseActor) startTurn(ctx *actor.Context, q queuedTurn) {
	a.spawnTurn(ctx, q)
	a.markStarted()
}

// spawnTurn spawns q's turn child; the caller publishes turn_started. The
// child reads what the agent needs (turnPrep.input) on its own goroutine;
// only the activation's first turn reads the log here, to prime the
// history cache.
func (a *caseActor) spawnTurn(ctx *actor.Context, q queuedTurn) {
	runCtx, cancel := context.WithTimeout(context.Background(), a.d.turnTimeout)
	clock := &turnClock{m: a.d.metrics, acked: q.acked}
	ag := a.d.newAgent(a.id, q.n, clock)
	sn := a.state.snap
	ts := a.rt.turnState()
	if ts.hist == nil {
		// From here on the case keeps its conversation (committed
		// messages are added as they commit).
		h, err := primeHistory(a.d.store, a.id)
		if err != nil {
			a.d.log.Warn("read case history", zap.String("case_id", a.id), zap.Error(err))
		} else {
			ts.hist = h
		}
	}
	prep := &turnPrep{caseID: a.id, owner: sn.Owner, q: q, info: caseInfo(sn, q.n), d: a.d}
	prep.hist, prep.histOK = ts.hist.before(q.n, historyMessages)
	run := &turnRun{n: q.n, cancel: cancel, started: make(chan struct{})}
	run.live.Store(a.rt.liveSubs())
	t := &turnActor{
		caseID: a.id, casePID: ctx.PID(), turn: q.n, agent: ag, runCtx: runCtx, rt: &turnRuntime{},
		started: run.started, live: &run.live, clock: clock,
		prep: prep,
		tools: &caseTools{caseID: a.id, owner: sn.Owner, turn: q.n, timeout: a.d.requestTimeout,
			evidence: a.d.evidence, knowledge: a.d.knowledge},
	}
	ctx.Engine().Spawn(newTurnActor(t), "turn", actor.WithID(a.id+"."+strconv.Itoa(q.n)),
		actor.WithInboxSize(64), actor.WithMaxRestarts(1<<30))
	a.rt.turn = run
}

func (a *caseActor) startNext(ctx *actor.Context) {
	if a.rt.turn != nil || a.rt.queued() == 0 {
		return
	}
	ts := a.rt.turns
	q := ts.queue[0]
	if ts.queue = ts.queue[1:]; len(ts.queue) == 0 {
		ts.queue = nil
	}
	a.startTurn(ctx, q)
}

// caseInfo is the case as the agent sees it at the start of turn n.
func caseInfo(sn *casepb.Snapshot, n int) agent.CaseInfo {
	info := agent.CaseInfo{
		ID: sn.CaseId, Title: sn.Title, Status: sn.Status, ProblemStatement: sn.Description,
		Milestones: slices.Clone(sn.Milestones), PendingStatus: sn.PendingStatus, Turn: n,
	}
	for _, h := range sn.Hypotheses {
		info.Hypotheses = append(info.Hypotheses, agent.Hypothesis{ID: h.HypothesisId, Statement: h.Statement,
			Category: h.Category, Status: h.Status, Confidence: h.Confidence, Rationale: h.Rationale})
	}
	return info
}

// turnPrep is what a turn reads before its agent runs, read by the turn
// actor: the conversation so far, the evidence digests and the knowledge
// hits for the new message.
type turnPrep struct {
	caseID, owner string
	q             queuedTurn
	info          agent.CaseInfo
	d             *caseDeps
	// hist is the conversation from the case's history cache when histOK;
	// otherwise the turn reads it from the log.
	hist   []agent.HistoryMessage
	histOK bool
}

// prepareError is a turn that could not be prepared.
type prepareError struct{ err error }

func (e *prepareError) Error() string { return e.err.Error() }
func (e *prepareError) Unwrap() error { return e.err }

// input assembles what the agent sees: the case, the conversation so far
// and the new message.
func (p *turnPrep) input() (agent.Input, error) {
	// The agent keeps recent turns verbatim and summarises older ones within
	// its token budget; historyMessages bounds what is read from the log.
	hist := p.hist
	if !p.histOK {
		msgs, err := p.d.store.recentMessages(p.caseID, p.q.n, historyMessages)
		if err != nil {
			return agent.Input{}, &prepareError{err}
		}
		hist = make([]agent.HistoryMessage, 0, len(msgs))
		for _, m := range msgs {
			hist = append(hist, historyMessage(m))
		}
	}
	var err error
	in := agent.Input{Case: p.info, History: hist, UserText: p.q.text}
	if p.d.evidence != nil {
		// A short, bounded read; the digests were computed at upload.
		ctx, cancel := context.WithTimeout(context.Background(), p.d.requestTimeout)
		in.Evidence, err = p.d.evidence.Digests(ctx, p.caseID)
		cancel()
		if err != nil {
			return agent.Input{}, &prepareError{err}
		}
	}
	if p.d.knowledge != nil && strings.TrimSpace(p.q.text) != "" {
		// An in-memory index lookup; a failure only costs the hits.
		ctx, cancel := context.WithTimeout(context.Background(), p.d.requestTimeout)
		hits, kerr := p.d.knowledge.Search(ctx, p.owner, p.caseID, p.q.text, knowledgeHits)
		cancel()
		if kerr == nil {
			in.Knowledge = hits
		} else {
			p.d.log.Warn("knowledge search for the turn context failed", zap.String("case_id", p.caseID), zap.Error(kerr))
		}
	}
	return in, nil
}

// onTurnFinished persists the answer (or the failure) and starts the next
// queued turn.
func (a *caseActor) onTurnFinished(ctx *actor.Context, m *turnFinished) {
	if a.rt.turn == nil || a.rt.turn.n != m.turn {
		return // a turn from before a restart: already marked failed
	}
	run := a.rt.turn
	a.rt.turn = nil
	run.cancel() // the turn actor stops itself
	if a.state == nil {
		return
	}
	if m.err != nil {
		a.failTurn(m.turn, turnFailureReason(m.err))
	} else {
		a.completeTurn(m.turn, m.out)
	}
	a.publish(Frame{Type: "turn_done", CaseID: a.id, Turn: m.turn})
	a.startNext(ctx)
}

func (a *caseActor) completeTurn(n int, out agent.Output) {
	actions, _ := json.Marshal(out.SuggestedActions)
	msg := &casepb.MessageAdded{
		MessageId: "msg_" + strings.ToLower(ulid.Make().String()), Role: "assistant", Content: out.Content,
		TurnNumber: int32(n), PromptTokens: out.Usage.PromptTokens, CompletionTokens: out.Usage.CompletionTokens,
		Provider: out.Provider, MilestonesCompleted: out.MilestonesCompleted, ProgressMade: out.ProgressMade,
		SuggestedActionsJson: string(actions), RetrievalOnly: out.RetrievalOnly,
	}
	for _, s := range out.Sources {
		msg.Sources = append(msg.Sources, &casepb.Source{DocumentId: s.DocumentID, Title: s.Title, Url: s.URL, Snippet: s.Snippet})
	}
	ev := a.state.newEvent(a.d.now(), "system")
	ev.Kind = &casepb.Event_MessageAdded{MessageAdded: msg}
	a.commitEvents([]*casepb.Event{ev})
	a.d.metrics.tokens(out.Provider, out.Usage)
}

func (a *caseActor) failTurn(n int, reason string) {
	ev := a.state.newEvent(a.d.now(), "system")
	ev.Kind = &casepb.Event_TurnFailed{TurnFailed: &casepb.TurnFailed{TurnNumber: int32(n), Reason: reason}}
	a.commitEvents([]*casepb.Event{ev})
	a.d.metrics.turnsFailed.Inc()
}

// turnFailureReason is the readable reason a client sees.
func turnFailureReason(err error) string {
	var (
		pe  *llm.ProviderError
		pre *prepareError
	)
	switch {
	case errors.As(err, &pre):
		return "could not prepare the turn: " + pre.Error()
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		return "the turn took too long and was stopped"
	case errors.As(err, &pe):
		return "the language model failed: " + err.Error()
	case errors.Is(err, llm.ErrNoProvider):
		return "no language model is configured"
	default:
		return "the turn failed: " + err.Error()
	}
}

// failOpenTurns closes turns left open by a crash or restart so the client
// can retry them; called right after the state is loaded.
func (a *caseActor) failOpenTurns() {
	if len(a.state.snap.OpenTurns) == 0 || a.rt.turn != nil {
		return
	}
	reason := "interrupted: the server restarted during this turn; please retry"
	if a.rt.starts > 1 {
		reason = "interrupted: the case hit an internal error during this turn; please retry"
	}
	for _, n := range slices.Clone(a.state.snap.OpenTurns) {
		a.failTurn(int(n), reason)
	}
}

// subscribe replays persisted events after since, then adds the subscriber
// for live frames. The actor is single-threaded, so nothing can slip in
// between replay and live delivery.
func (a *caseActor) subscribe(r *request, op opSubscribe) {
	ok := true
	err := a.d.store.ksEventsFrom(a.id, op.since+1, func(ev *casepb.Event) error {
		if !op.sub.Deliver(eventFrame(a.id, ev)) {
			ok = false
			return errStopReplay
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopReplay) {
		r.respond(nil, err)
		return
	}
	if !ok {
		r.respond(nil, ErrSlowSubscriber)
		return
	}
	head := a.state.snap.Seq
	if !op.sub.Deliver(Frame{Type: "subscribed", CaseID: a.id, HeadSeq: &head}) {
		r.respond(nil, ErrSlowSubscriber)
		return
	}
	if a.rt.subs == nil {
		a.rt.subs = map[Subscriber]struct{}{}
	}
	a.rt.subs[op.sub] = struct{}{}
	a.rt.subsChanged()
	if a.rt.turn != nil {
		op.sub.Deliver(Frame{Type: "turn_started", CaseID: a.id, Turn: a.rt.turn.n})
	}
	r.respond(head, nil)
}

// publish hands a frame to every subscriber without blocking; a subscriber
// that cannot keep up is dropped (it resumes with since_seq).
func (a *caseActor) publish(f Frame) {
	dropped := false
	for s := range a.rt.subs {
		if !s.Deliver(f) {
			delete(a.rt.subs, s)
			a.d.metrics.slowSubscribers.Inc()
			dropped = true
		}
	}
	if dropped {
		a.rt.subsChanged()
	}
}

// turnOutcome reports where turn n stands, from the state and the log.
func (a *caseActor) turnOutcome(n int) (TurnOutcome, error) {
	sn := a.state.snap
	out := TurnOutcome{Turn: n, CaseState: sn.Status}
	if n <= 0 || n > int(sn.CurrentTurn) {
		return out, ErrNotFound
	}
	if slices.Contains(sn.OpenTurns, int32(n)) {
		out.Status = TurnPending
		return out, nil
	}
	out.Status = ""
	// The case is loaded, so its log is indexed (caseStore.load).
	ev, err := a.d.store.indexedEvent(a.id, turnIndexKey(a.id, n))
	if ev != nil {
		if m := ev.GetMessageAdded(); m != nil && m.GetRole() == "assistant" && int(m.GetTurnNumber()) == n {
			out.Status = TurnCompleted
			out.AgentResponse = m.GetContent()
			out.MilestonesCompleted = nonNil(m.GetMilestonesCompleted())
			out.ProgressMade = m.GetProgressMade()
			out.RetrievalOnly = m.GetRetrievalOnly()
			out.SuggestedActions = nil
			if js := m.GetSuggestedActionsJson(); js != "" {
				_ = json.Unmarshal([]byte(js), &out.SuggestedActions)
			}
		}
		if f := ev.GetTurnFailed(); f != nil && int(f.GetTurnNumber()) == n {
			out.Status = TurnFailed
			out.Reason = f.GetReason()
		}
	}
	if out.Status == "" && err == nil {
		// Answered by neither: every closed turn ended in an answer or a
		// turn_failed, indexed in the same batch, so the state and the
		// turn index disagree.
		err = fmt.Errorf("turn %d of case %s has no outcome", n, a.id)
	}
	return out, err
}

// Tool handlers: re-validate against the current state, persist, answer.

func (a *caseActor) toolAllowed(r *request, turn int) bool {
	if a.rt.turn == nil || a.rt.turn.n != turn {
		r.respond(nil, fmt.Errorf("%w: turn %d is not running", ErrInvalidInput, turn))
		return false
	}
	return true
}

func (a *caseActor) toolMilestones(r *request, op opMilestones) {
	if !a.toolAllowed(r, op.turn) {
		return
	}
	set := slices.Clone(a.state.snap.Milestones)
	for _, m := range op.completed {
		if !slices.Contains(milestoneNames, m) {
			r.respond(nil, fmt.Errorf("%w: unknown milestone %q", ErrInvalidInput, m))
			return
		}
		if !slices.Contains(set, m) {
			set = append(set, m)
		}
	}
	if len(set) == len(a.state.snap.Milestones) {
		r.respond(set, nil)
		return
	}
	ev := a.state.newEvent(a.d.now(), "agent")
	ev.Kind = &casepb.Event_MilestonesUpdated{MilestonesUpdated: &casepb.MilestonesUpdated{Completed: set, Note: op.note}}
	if !a.commitEvents([]*casepb.Event{ev}) {
		r.respond(nil, errors.New("storage failed"))
		return
	}
	r.respond(slices.Clone(a.state.snap.Milestones), nil)
}

func (a *caseActor) toolRecordHypothesis(r *request, op opRecordHypothesis) {
	if !a.toolAllowed(r, op.turn) {
		return
	}
	if len(a.state.snap.Hypotheses) >= 100 {
		r.respond(nil, fmt.Errorf("%w: too many hypotheses", ErrInvalidInput))
		return
	}
	id := "hyp_" + strings.ToLower(ulid.Make().String())
	status := op.h.Status
	if status == "" {
		status = "active"
	}
	ev := a.state.newEvent(a.d.now(), "agent")
	ev.Kind = &casepb.Event_HypothesisRecorded{HypothesisRecorded: &casepb.HypothesisRecorded{
		HypothesisId: id, Statement: op.h.Statement, Category: op.h.Category, Confidence: op.h.Confidence, Status: status}}
	if !a.commitEvents([]*casepb.Event{ev}) {
		r.respond(nil, errors.New("storage failed"))
		return
	}
	r.respond(id, nil)
}

func (a *caseActor) toolEvaluateHypothesis(r *request, op opEvaluateHypothesis) {
	if !a.toolAllowed(r, op.turn) {
		return
	}
	found := slices.ContainsFunc(a.state.snap.Hypotheses, func(h *casepb.Hypothesis) bool { return h.HypothesisId == op.id })
	if !found {
		r.respond(nil, fmt.Errorf("%w: no hypothesis %q in this case", ErrInvalidInput, op.id))
		return
	}
	ev := a.state.newEvent(a.d.now(), "agent")
	ev.Kind = &casepb.Event_HypothesisEvaluated{HypothesisEvaluated: &casepb.HypothesisEvaluated{
		HypothesisId: op.id, Status: op.status, Confidence: op.confidence, Rationale: op.rationale}}
	if !a.commitEvents([]*casepb.Event{ev}) {
		r.respond(nil, errors.New("storage failed"))
		return
	}
	r.respond(nil, nil)
}

func (a *caseActor) toolProposeSolution(r *request, op opProposeSolution) {
	if !a.toolAllowed(r, op.turn) {
		return
	}
	id := "sol_" + strings.ToLower(ulid.Make().String())
	ev := a.state.newEvent(a.d.now(), "agent")
	ev.Kind = &casepb.Event_SolutionProposed{SolutionProposed: &casepb.SolutionProposed{SolutionId: id, Kind: op.kind, Description: op.description}}
	if !a.commitEvents([]*casepb.Event{ev}) {
		r.respond(nil, errors.New("storage failed"))
		return
	}
	r.respond(id, nil)
}

func (a *caseActor) toolProposeStatus(r *request, op opProposeStatus) {
	if !a.toolAllowed(r, op.turn) {
		return
	}
	if !slices.Contains(ValidNextStates(a.state.snap.Status), op.to) {
		r.respond(nil, fmt.Errorf("%w: %s → %s is not allowed", ErrInvalidTransition, a.state.snap.Status, op.to))
		return
	}
	ev := a.state.newEvent(a.d.now(), "agent")
	ev.Kind = &casepb.Event_StatusChangeProposed{StatusChangeProposed: &casepb.StatusChangeProposed{To: op.to, Reason: op.reason}}
	if !a.commitEvents([]*casepb.Event{ev}) {
		r.respond(nil, errors.New("storage failed"))
		return
	}
	r.respond(nil, nil)
}
