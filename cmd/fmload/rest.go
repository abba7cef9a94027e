package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
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

// saveMetrics writes the target's whole /metrics to path.
func (a *api) saveMetrics(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
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
