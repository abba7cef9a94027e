package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The REST calls of the workload (copilot contract routes, served by both
// targets): register/login, create a case, page a case's messages, and
// the memory gauges of /metrics.

// api calls one target.
type api struct {
	base string // http://127.0.0.1:port
	hc   *http.Client
}

func newAPI(addr string) *api {
	return &api{
		base: "http://" + addr,
		hc: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
			},
		},
	}
}

func (a *api) close() { a.hc.CloseIdleConnections() }

// statusError is an unexpected HTTP status.
type statusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// call sends a JSON request and decodes a JSON answer with status want.
func (a *api) call(ctx context.Context, method, path, token string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return &statusError{method, path, resp.StatusCode, strings.TrimSpace(string(data[:min(len(data), 300)]))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}

type tokenReply struct {
	AccessToken string `json:"access_token"`
}

// register creates a user and returns an access token; a user that
// exists already logs in instead.
func (a *api) register(ctx context.Context, username, password string) (string, error) {
	var tok tokenReply
	in := map[string]string{
		"username": username, "password": password,
		"email": username + "@example.com", "display_name": username,
	}
	err := a.call(ctx, http.MethodPost, "/api/v1/auth/register", "", in, http.StatusCreated, &tok)
	var se *statusError
	if errors.As(err, &se) && se.Status == http.StatusConflict {
		err = a.call(ctx, http.MethodPost, "/api/v1/auth/login", "",
			map[string]string{"username": username, "password": password}, http.StatusOK, &tok)
	}
	if err == nil && tok.AccessToken == "" {
		err = errors.New("register: no access_token in the answer")
	}
	return tok.AccessToken, err
}

// createCase creates a case and returns its id.
func (a *api) createCase(ctx context.Context, token, title string) (string, error) {
	var row struct {
		CaseID string `json:"case_id"`
	}
	err := a.call(ctx, http.MethodPost, "/api/v1/cases", token,
		map[string]string{"title": title, "description": "fmload session"}, http.StatusCreated, &row)
	if err == nil && row.CaseID == "" {
		err = errors.New("create case: no case_id in the answer")
	}
	return row.CaseID, err
}

// maxMessagePages bounds the paging of one case's messages.
const maxMessagePages = 1000

// messages pages through a case's conversation, 100 at a time.
func (a *api) messages(ctx context.Context, token, caseID string) ([]message, error) {
	var all []message
	for page := 0; page < maxMessagePages; page++ {
		var resp struct {
			Messages []message `json:"messages"`
			HasMore  bool      `json:"has_more"`
		}
		path := fmt.Sprintf("/api/v1/cases/%s/messages?limit=100&offset=%d", url.PathEscape(caseID), len(all))
		if err := a.call(ctx, http.MethodGet, path, token, nil, http.StatusOK, &resp); err != nil {
			return all, err
		}
		all = append(all, resp.Messages...)
		if !resp.HasMore || len(resp.Messages) == 0 {
			return all, nil
		}
	}
	return all, fmt.Errorf("case %s: more than %d pages of messages", caseID, maxMessagePages)
}

// goMem is what a Go target's /metrics says about its memory.
type goMem struct {
	HeapInuse, StackInuse, HeapIdle, HeapReleased int64
}

// used is the memory connections occupy: heap spans in use (which holds
// garbage not yet collected, so it is noisy) plus goroutine stacks.
func (m goMem) used() int64 { return m.HeapInuse + m.StackInuse }

// reusable is free heap the runtime still holds: new objects can use it
// without the RSS growing.
func (m goMem) reusable() int64 { return m.HeapIdle - m.HeapReleased }

// metricsText fetches the target's whole /metrics.
func (a *api) metricsText(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 32<<20))
}

// histogram is the cumulative buckets of one Prometheus histogram, in
// ascending bound order, the last one +Inf.
type histogram struct {
	le, count []float64
}

// parseHistogram reads the buckets of the latency histogram name (bounds
// in seconds, so not negative), which must carry no labels but le, from a
// Prometheus text exposition.
func parseHistogram(r io.Reader, name string) (histogram, error) {
	var h histogram
	prefix := name + `_bucket{le="`
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		bound, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			return histogram{}, fmt.Errorf("/metrics %s: malformed bucket %q", name, sc.Text())
		}
		le, err := strconv.ParseFloat(bound, 64)
		if err == nil && (math.IsNaN(le) || le < 0) {
			err = errors.New("not a duration") // the harness reads latency histograms only
		}
		if err != nil {
			return histogram{}, fmt.Errorf("/metrics %s: bucket bound: %w", name, err)
		}
		c, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
			return histogram{}, fmt.Errorf("/metrics %s: bucket count %q", name, value)
		}
		if n := len(h.le); n > 0 && (le <= h.le[n-1] || c < h.count[n-1]) {
			return histogram{}, fmt.Errorf("/metrics %s: buckets out of order at le=%s", name, bound)
		}
		h.le, h.count = append(h.le, le), append(h.count, c)
	}
	if err := sc.Err(); err != nil {
		return histogram{}, err
	}
	if n := len(h.le); n == 0 || !math.IsInf(h.le[n-1], 1) {
		return histogram{}, fmt.Errorf("/metrics has no complete histogram %s", name)
	}
	return h, nil
}

// total is the number of observations.
func (h histogram) total() float64 { return h.count[len(h.count)-1] }

// quantile is the q-quantile (0 < q ≤ 1) of h, interpolated linearly
// within its bucket as Prometheus' histogram_quantile does (the first
// bucket starts at 0); one that falls in the +Inf bucket is reported as
// the largest finite bound. With no observations it is 0.
func (h histogram) quantile(q float64) float64 {
	total := h.total()
	if total == 0 {
		return 0
	}
	rank := q * total
	lo, below := 0.0, 0.0
	for i, le := range h.le {
		if h.count[i] >= rank {
			if math.IsInf(le, 1) {
				return lo
			}
			in := h.count[i] - below
			if in == 0 {
				return le
			}
			return lo + (le-lo)*(rank-below)/in
		}
		lo, below = le, h.count[i]
	}
	return lo
}

// goMemory reads the target's memory gauges from /metrics.
func (a *api) goMemory(ctx context.Context) (goMem, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/metrics", nil)
	if err != nil {
		return goMem{}, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return goMem{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return goMem{}, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	return parseGoMemory(resp.Body)
}

// parseGoMemory reads the go_memstats gauges goMem holds from a
// Prometheus text exposition.
func parseGoMemory(r io.Reader) (goMem, error) {
	var m goMem
	fields := map[string]*int64{
		"go_memstats_heap_inuse_bytes":    &m.HeapInuse,
		"go_memstats_stack_inuse_bytes":   &m.StackInuse,
		"go_memstats_heap_idle_bytes":     &m.HeapIdle,
		"go_memstats_heap_released_bytes": &m.HeapReleased,
	}
	found := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		dst := fields[name]
		if !ok || dst == nil {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return m, fmt.Errorf("/metrics %s: %w", name, err)
		}
		*dst = int64(v)
		found++
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if found != len(fields) {
		return m, errors.New("/metrics lacks some go_memstats heap or stack gauges")
	}
	return m, nil
}
