package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/openai/openai-go/v3"
)

var (
	// ErrTimeout is wrapped by a ProviderError whose attempt made no progress
	// for Config.AttemptTimeout, or whose turn ran out of Config.TurnTimeout.
	ErrTimeout = errors.New("llm: timed out")
	// ErrInterrupted is wrapped by a ProviderError whose stream ended before
	// the model finished.
	ErrInterrupted = errors.New("llm: stream interrupted")
	// ErrAllProvidersFailed is matched (errors.Is) by the error a Chain
	// returns when no provider could answer; it also unwraps to each
	// provider's *ProviderError.
	ErrAllProvidersFailed = errors.New("llm: all providers failed")
	// ErrBadRequest marks a Request this package refuses to send (a caller
	// bug, not a provider failure).
	ErrBadRequest = errors.New("llm: bad request")
)

// maxServerMessage bounds how much of a provider's error message a Reason
// quotes.
const maxServerMessage = 160

// attempt records what one Stream call saw on the wire; the classifier turns
// it into a readable reason.
type attempt struct {
	provider     string
	timeout      time.Duration
	tries        int    // HTTP attempts made (1 + retries)
	status       int    // HTTP status of the last attempt, 0 if none
	gotHeaders   bool   // a 2xx response started
	chunks       int    // chunks decoded
	timedOut     bool   // the attempt watchdog fired
	badJSON      error  // a chunk was not valid JSON
	errEvent     string // the server's message in an error event
	badChunk     bool   // a chunk did not fit the completion so far
	noFinish     bool   // the stream ended cleanly without a finish_reason
	emptyChoices bool   // a finished stream had no choice at all
}

// classify turns a failed attempt into a *ProviderError. err may be nil for
// the protocol failures recorded in a.
func classify(a attempt, err error) *ProviderError {
	pe := &ProviderError{Provider: a.provider, Err: err}
	var apiErr *openai.Error
	switch {
	case a.timedOut:
		pe.Reason = "timed out after " + fmtDuration(a.timeout)
		// Not err: that is the context.Canceled of the abandoned attempt,
		// and callers must not mistake a timeout for their own cancel.
		pe.Err = ErrTimeout
	case errors.As(err, &apiErr):
		pe.Status = apiErr.StatusCode
		pe.Reason = statusReason(apiErr.StatusCode, apiErr.Message) + retried(a.tries)
	case a.status >= 400:
		// An error body the SDK could not parse (an HTML page from a proxy).
		pe.Status = a.status
		pe.Reason = statusReason(a.status, "") + retried(a.tries)
	case a.errEvent != "":
		pe.Reason = "error event in stream: " + clip(a.errEvent)
	case a.badJSON != nil:
		pe.Reason = "bad stream: a chunk is not valid JSON"
		pe.Err = a.badJSON
	case errors.Is(err, errEventTooLarge):
		pe.Reason = "bad stream: an event is larger than 16 MiB"
	case a.badChunk:
		pe.Reason = "bad stream: a chunk did not fit the completion so far"
	case a.noFinish:
		pe.Reason = "stream interrupted: ended before the model finished"
		pe.Err = ErrInterrupted
	case a.emptyChoices:
		pe.Reason = "bad response: no choices"
	case a.gotHeaders:
		pe.Reason = "stream interrupted: " + transportText(err)
		pe.Err = errors.Join(ErrInterrupted, err)
	default:
		pe.Reason = "connection failed: " + transportText(err) + retried(a.tries)
	}
	return pe
}

func statusReason(status int, msg string) string {
	switch {
	case status == 401:
		return "unauthorized (401): check the API key"
	case status == 403:
		return "forbidden (403): check the API key and its permissions"
	case status == 404 && strings.Contains(strings.ToLower(msg), "model"):
		return withMessage("model not found (404)", msg)
	case status == 404:
		// No model named: the path is wrong, usually a base URL without the
		// /v1/ the OpenAI-compatible servers serve under.
		return withMessage("not found (404): check the base URL (OpenAI-compatible servers usually serve under /v1/, e.g. http://localhost:11434/v1/)", msg)
	case status == 429:
		return "rate limited (429)"
	case status >= 500:
		return fmt.Sprintf("server error (%d)", status)
	case status == 400:
		return withMessage("bad request (400)", msg)
	default:
		return withMessage(fmt.Sprintf("rejected (%d)", status), msg)
	}
}

func withMessage(reason, msg string) string {
	if msg = clip(msg); msg != "" {
		return reason + ": " + msg
	}
	return reason
}

func retried(tries int) string {
	switch n := tries - 1; {
	case n <= 0:
		return ""
	case n == 1:
		return ", retried 1 time"
	default:
		return fmt.Sprintf(", retried %d times", n)
	}
}

// transportText is the innermost useful text of a network error: the URL
// that *url.Error adds is dropped (it says nothing the provider name does
// not, and it might carry credentials).
func transportText(err error) string {
	if err == nil {
		return "unknown error"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected EOF"
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return clip(err.Error())
}

// clip makes a provider-supplied message safe for one log line.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxServerMessage {
		return s
	}
	cut := maxServerMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// fmtDuration prints whole seconds as "60s" rather than "1m0s".
func fmtDuration(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", int64(d/time.Second))
	}
	return d.String()
}

// allFailedError is what a Chain returns when every provider failed. Its
// message lists each provider's reason on one line.
type allFailedError struct {
	errs []error
}

func (e *allFailedError) Error() string {
	var b strings.Builder
	b.WriteString(ErrAllProvidersFailed.Error())
	for i, err := range e.errs {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		var pe *ProviderError
		if errors.As(err, &pe) {
			b.WriteString(pe.Provider + ": " + pe.Reason)
		} else {
			b.WriteString(err.Error())
		}
	}
	return b.String()
}

func (e *allFailedError) Unwrap() []error { return e.errs }

func (e *allFailedError) Is(target error) bool { return target == ErrAllProvidersFailed }

// cancelled wraps the caller's cancellation so that errors.Is(err,
// context.Canceled) (or DeadlineExceeded) holds.
func cancelled(ctx context.Context) error {
	return fmt.Errorf("llm: call cancelled: %w", ctx.Err())
}
