package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// step is one change a writer makes to its case, with the state it leads to.
type step struct {
	method, path string
	body         map[string]any
	title, state string
	history      int // status history length after the step
}

func caseSteps(id string, w, n int) []step {
	p := "/api/v1/cases/" + id
	t1, t2 := fmt.Sprintf("w%d-c%d renamed", w, n), fmt.Sprintf("w%d-c%d final", w, n)
	return []step{
		{"PUT", p, map[string]any{"title": t1}, t1, "inquiry", 0},
		{"POST", p + "/status", map[string]any{"to_state": "investigating", "reason": "looks real"}, t1, "investigating", 1},
		{"PUT", p, map[string]any{"title": t2}, t2, "investigating", 1},
		{"POST", p + "/close", map[string]any{"closure_reason": "mitigation_sufficient", "reason": "mitigated"}, t2, "closed", 2},
	}
}

// tracked is what a writer knows about one case when the server dies.
type tracked struct {
	id        string
	createdAt string // title right after create
	steps     []step
	acked     int // steps that got a 2xx
	attempted int // steps sent (the last one may have been applied without an answer)
}

// TestKill9 kills the server with SIGKILL at random points while several
// clients create cases and change them, restarts it, and checks that every
// change that got a 2xx survived and that each case is in a state one of the
// sent requests leads to — never half-written.
func TestKill9(t *testing.T) {
	rounds := 20
	if v, err := strconv.Atoi(os.Getenv("FM_CRASH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d, %d kill points", seed, rounds)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	data := t.TempDir()

	srv := startServer(t, data)
	tk := register(t, srv.base, "crash-user")
	var all []*tracked
	for round := 0; round < rounds; round++ {
		var mu sync.Mutex
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					var row struct {
						CaseID string `json:"case_id"`
						Title  string `json:"title"`
					}
					code, err := call(srv.base, "POST", "/api/v1/cases", tk.AccessToken, map[string]any{"title": nil, "priority": "low"}, &row)
					if err != nil || code != 201 {
						return // the server is gone
					}
					tr := &tracked{id: row.CaseID, createdAt: row.Title, steps: caseSteps(row.CaseID, w, n)}
					mu.Lock()
					all = append(all, tr)
					mu.Unlock()
					for _, s := range tr.steps {
						mu.Lock()
						tr.attempted++
						mu.Unlock()
						code, err := call(srv.base, s.method, s.path, tk.AccessToken, s.body, nil)
						if err != nil || code >= 300 {
							if err == nil {
								t.Errorf("%s %s: status %d", s.method, s.path, code)
							}
							return
						}
						mu.Lock()
						tr.acked++
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(30+rng.IntN(300)) * time.Millisecond)
		srv.kill()
		close(stop)
		wg.Wait()

		srv = startServer(t, data)
		verifyCases(t, srv.base, tk.AccessToken, all, round)
	}
	steps := 0
	for _, tr := range all {
		steps += tr.acked
	}
	t.Logf("%d cases and %d acknowledged changes verified across %d kill -9 restarts", len(all), steps, rounds)
	if len(all) < rounds {
		t.Fatalf("only %d cases were created over %d rounds: the load never ran", len(all), rounds)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
}

func verifyCases(t *testing.T, base, token string, all []*tracked, round int) {
	t.Helper()
	for _, tr := range all {
		var row struct {
			Title string `json:"title"`
			State string `json:"state"`
		}
		code, err := call(base, "GET", "/api/v1/cases/"+tr.id, token, nil, &row)
		if err != nil || code != 200 {
			t.Fatalf("round %d: acknowledged case %s is gone after kill -9: %d %v", round, tr.id, code, err)
		}
		var ui struct {
			StatusHistory []map[string]any `json:"status_history"`
		}
		if code, err := call(base, "GET", "/api/v1/cases/"+tr.id+"/ui", token, nil, &ui); err != nil || code != 200 {
			t.Fatalf("round %d: /ui of %s: %d %v", round, tr.id, code, err)
		}
		// The case must be exactly in the state after step k for some k
		// between the last acknowledged step and the last attempted one.
		ok := false
		for k := tr.acked; k <= tr.attempted; k++ {
			title, state, hist := tr.createdAt, "inquiry", 0
			if k > 0 {
				s := tr.steps[k-1]
				title, state, hist = s.title, s.state, s.history
			}
			if row.Title == title && row.State == state && len(ui.StatusHistory) == hist {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("round %d: case %s is %q/%s with %d status changes; acknowledged %d steps, attempted %d",
				round, tr.id, row.Title, row.State, len(ui.StatusHistory), tr.acked, tr.attempted)
		}
		// Once verified, the case's fate is settled: later rounds must
		// still see it, so record what it is now.
		tr.acked = matchIndex(tr, row.Title, row.State, len(ui.StatusHistory))
		tr.attempted = tr.acked
	}
	var list struct {
		TotalCount int `json:"total_count"`
	}
	if code, err := call(base, "GET", "/api/v1/cases?limit=1&offset=0", token, nil, &list); err != nil || code != 200 {
		t.Fatalf("list: %d %v", code, err)
	}
	if list.TotalCount < len(all) {
		t.Fatalf("round %d: list shows %d cases, %d were acknowledged", round, list.TotalCount, len(all))
	}
}

func matchIndex(tr *tracked, title, state string, hist int) int {
	for k := len(tr.steps); k > 0; k-- {
		s := tr.steps[k-1]
		if s.title == title && s.state == state && s.history == hist {
			return k
		}
	}
	return 0
}
