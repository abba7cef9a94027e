package actors

// Local-only messages between the Cases service, casemgr and case actors.
// They never cross nodes, so they are plain structs (house rule 8). A request
// carries its own buffered reply channel instead of using hollywood's
// Request/Response: the answer reaches the caller even when it comes after a
// restart, there is no temporary responder to leak, and a late answer after
// the caller gave up is simply dropped.

// request is one command or query for one case.
type request struct {
	caseID string
	owner  string // caller's user id; the case answers ErrNotFound to anyone else
	op     any
	reply  chan result // buffered, capacity 1
}

type result struct {
	val any
	err error
}

// respond answers a request exactly once; a second answer is dropped.
func (r *request) respond(val any, err error) {
	select {
	case r.reply <- result{val: val, err: err}:
	default:
	}
}

// Operations carried by request.op.
type (
	opView   struct{}
	opRename struct{ title, by string }
	opStatus struct{ to, reason, closure, by string }
	opDelete struct{}
	// opPanic panics inside the case actor; honoured only with Config.TestHooks.
	opPanic struct{}
)

// Messages between casemgr and its case actors.
type (
	// passivateQuery asks an active case whether it is idle.
	passivateQuery struct{}
	// caseIdle is a case's answer: it may be stopped now.
	caseIdle struct {
		id    string
		gen   uint64
		force bool // deleted: stop regardless of recent activity
	}
	// caseStopped tells casemgr that an actor has fully stopped.
	caseStopped struct {
		id  string
		gen uint64
	}
	// caseRestarted tells casemgr that an actor came back after a panic.
	caseRestarted struct {
		id       string
		gen      uint64
		restarts int
	}
	// tick drives casemgr's idle sweep.
	tick struct{}
	// drain asks casemgr to stop every case actor; done is closed when
	// all have stopped.
	drain struct{ done chan struct{} }
)
