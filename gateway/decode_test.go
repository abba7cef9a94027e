package gateway

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeJSONShapes(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		code       string // "" = success
	}{
		{"empty body", "", ""},
		{"whitespace", " \n\t", ""},
		{"null", "null", ""},
		{"empty object", "{}", ""},
		{"explicit nulls", `{"title":null,"description":null,"priority":null,"metadata":null}`, ""},
		{"unknown fields", `{"title":"t","metadata":{"created_via":"browser_extension"},"extra":[1,2]}`, ""},
		{"trailing whitespace", "{}\n\n", ""},
		{"not json", "title=x", CodeMalformedJSON},
		{"truncated", `{"title":"x"`, CodeMalformedJSON},
		{"two values", `{} {}`, CodeMalformedJSON},
		{"trailing garbage", `{}x`, CodeMalformedJSON},
		{"array", `[]`, CodeValidation},
		{"string", `"x"`, CodeValidation},
		{"wrong field type", `{"title":5}`, CodeValidation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeCaseCreate(strings.NewReader(tc.body))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			ce, internal := ClientError(err)
			if err == nil || internal || ce.Code != tc.code {
				t.Fatalf("err %v → %s (internal %v), want %s", err, ce.Code, internal, tc.code)
			}
		})
	}
}

func TestDecodeFieldErrorsNameTheField(t *testing.T) {
	_, err := decodeSessionCreate(strings.NewReader(`{"client_id":"c","timeout_minutes":180.5}`))
	ce, _ := ClientError(err)
	if ce.Code != CodeValidation || ce.Message != "timeout_minutes must be an integer" {
		t.Fatalf("got %v", ce)
	}
	_, err = decodeLogin(strings.NewReader(`{"username":["a"]}`))
	if ce, _ := ClientError(err); ce.Message != "username must be a string" {
		t.Fatalf("got %v", ce)
	}
}

func TestDecodeBodies(t *testing.T) {
	long := strings.Repeat("x", 201)
	for _, tc := range []struct {
		name string
		run  func(io.Reader) error
		body string
		ok   bool
	}{
		{"login ok", wrapErr(decodeLogin), `{"username":" alice ","password":"pw"}`, true},
		{"login needs a username", wrapErr(decodeLogin), `{"password":"pw"}`, false},
		{"login password cap", wrapErr(decodeLogin), `{"username":"a","password":"` + strings.Repeat("p", 5000) + `"}`, false},
		{"register ok", wrapErr(decodeRegister), `{"username":"bob","password":"pw","email":null,"display_name":"Bob"}`, true},
		{"register control chars", wrapErr(decodeRegister), `{"username":"bo\u0000b"}`, false},
		{"refresh ok", wrapErr(decodeRefresh), `{"refresh_token":"abc"}`, true},
		{"refresh required", wrapErr(decodeRefresh), ``, false},
		{"session bodiless", wrapErr(decodeSessionCreate), ``, true},
		{"session full", wrapErr(decodeSessionCreate), `{"client_id":"0b7f","session_type":"troubleshooting","timeout_minutes":180,"metadata":{"a":1}}`, true},
		{"create null title", wrapErr(decodeCaseCreate), `{"title":null,"priority":"low"}`, true},
		{"create long title", wrapErr(decodeCaseCreate), `{"title":"` + long + `"}`, false},
		{"create newline title", wrapErr(decodeCaseCreate), `{"title":"a\nb"}`, false},
		{"rename ok", wrapErr(decodeRename), `{"title":"  Disk full on db-1  "}`, true},
		{"rename blank", wrapErr(decodeRename), `{"title":"   "}`, false},
		{"rename null", wrapErr(decodeRename), `{"title":null}`, false},
		{"rename 200 runes", wrapErr(decodeRename), `{"title":"` + strings.Repeat("é", 200) + `"}`, true},
		{"rename 201", wrapErr(decodeRename), `{"title":"` + long + `"}`, false},
		{"title bodiless", wrapErr(decodeTitle), ``, true},
		{"title max_words", wrapErr(decodeTitle), `{"max_words":8}`, true},
		{"title max_words negative", wrapErr(decodeTitle), `{"max_words":-1}`, false},
		{"close bodiless", wrapErr(decodeClose), ``, true},
		{"close with reasons", wrapErr(decodeClose), `{"closure_reason":"inquiry_only","reason":"not needed\nany more"}`, true},
		{"close reason too long", wrapErr(decodeClose), `{"reason":"` + strings.Repeat("r", 2001) + `"}`, false},
		{"status ok", wrapErr(decodeStatus), `{"to_state":" Investigating "}`, true},
		{"status required", wrapErr(decodeStatus), `{"reason":"x"}`, false},
		{"status unknown", wrapErr(decodeStatus), `{"to_state":"archived"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(strings.NewReader(tc.body))
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if ce, internal := ClientError(err); internal || ce.Code != CodeValidation {
					t.Fatalf("error %v is %s, want a 422", err, ce.Code)
				}
			}
		})
	}
	req, _ := decodeStatus(strings.NewReader(`{"to_state":" Investigating "}`))
	if req.ToState != "investigating" {
		t.Fatalf("to_state not normalised: %q", req.ToState)
	}
	ren, _ := decodeRename(strings.NewReader(`{"title":"  Disk full  "}`))
	if ren.Title != "Disk full" {
		t.Fatalf("title not trimmed: %q", ren.Title)
	}
}

func wrapErr[T any](f func(io.Reader) (T, error)) func(io.Reader) error {
	return func(r io.Reader) error { _, err := f(r); return err }
}

func TestParsePage(t *testing.T) {
	for _, tc := range []struct {
		query         string
		limit, offset int
		ok            bool
	}{
		{"", 50, 0, true},
		{"limit=100&offset=0", 100, 0, true},
		{"limit=1&offset=7", 1, 7, true},
		{"limit=0", 0, 0, false},
		{"limit=101", 0, 0, false},
		{"limit=-5", 0, 0, false},
		{"limit=abc", 0, 0, false},
		{"limit=1e2", 0, 0, false},
		{"offset=-1", 0, 0, false},
		{"offset=99999999999999999999", 0, 0, false},
	} {
		q, _ := url.ParseQuery(tc.query)
		p, err := parsePage(q)
		if tc.ok != (err == nil) {
			t.Fatalf("%q: err %v", tc.query, err)
		}
		if err == nil && (p.Limit != tc.limit || p.Offset != tc.offset) {
			t.Fatalf("%q: got %+v", tc.query, p)
		}
		if err != nil {
			if ce, _ := ClientError(err); ce.Code != CodeValidation {
				t.Fatalf("%q: %s, want 422", tc.query, ce.Code)
			}
		}
	}
}

func TestParseIdempotencyKey(t *testing.T) {
	for key, ok := range map[string]bool{
		"":                              true,
		"opt_case_1716400000000_3":      true,
		"9f1c2d3e-4b5a-6789-abcd-ef012": true,
		"short":                         false,
		strings.Repeat("k", 255):        true,
		strings.Repeat("k", 256):        false,
		"has space in it":               false,
		"semi;colon-key":                false,
	} {
		if _, err := parseIdempotencyKey(key); ok != (err == nil) {
			t.Errorf("%q: err %v, want ok=%v", key, err, ok)
		}
	}
}

// Fuzzing. Every decoder of outside input must never panic, and every
// error it returns must be a client error (400, 413 or 422), never an
// internal one.

const fuzzCap = 512

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	ce, internal := ClientError(err)
	if internal {
		t.Fatalf("decoder returned an internal error: %v", err)
	}
	switch HTTPStatus(ce.Code) {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
	default:
		t.Fatalf("decoder error %v maps to %d", err, HTTPStatus(ce.Code))
	}
	if ce.Message == "" || !utf8.ValidString(ce.Message) {
		t.Fatalf("bad detail %q", ce.Message)
	}
}

// capped feeds the fuzzer's bytes through the same cap the handlers use.
func capped(data []byte) io.Reader {
	return http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(string(data))), fuzzCap)
}

func seedBodies(f *testing.F, seeds ...string) {
	for _, s := range append(seeds, "", "null", "{}", "[]", `{"a":`, "\xff\xfe", `{"title":"\ud800"}`, strings.Repeat("[", 600)) {
		f.Add([]byte(s))
	}
}

func FuzzDecodeLogin(f *testing.F) {
	seedBodies(f, `{"username":"alice","password":"pw"}`, `{"username":null}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeLogin(capped(data))
		checkDecodeErr(t, err)
		if err == nil && (req.Username == "" || req.Username != strings.TrimSpace(req.Username)) {
			t.Fatalf("accepted username %q", req.Username)
		}
	})
}

func FuzzDecodeRegister(f *testing.F) {
	seedBodies(f, `{"username":"bob","password":"pw","email":"b@x.io","display_name":"Bob"}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := decodeRegister(capped(data))
		checkDecodeErr(t, err)
	})
}

func FuzzDecodeRefresh(f *testing.F) {
	seedBodies(f, `{"refresh_token":"abc"}`, `{"refresh_token":5}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeRefresh(capped(data))
		checkDecodeErr(t, err)
		if err == nil && req.RefreshToken == "" {
			t.Fatalf("accepted an empty refresh token")
		}
	})
}

func FuzzDecodeSessionCreate(f *testing.F) {
	seedBodies(f, `{"client_id":"0b7f","session_type":"troubleshooting","timeout_minutes":180}`, `{"timeout_minutes":1e99}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := decodeSessionCreate(capped(data))
		checkDecodeErr(t, err)
	})
}

func FuzzDecodeCaseCreate(f *testing.F) {
	seedBodies(f, `{"title":null,"priority":"low","metadata":{"created_via":"browser_extension"}}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeCaseCreate(capped(data))
		checkDecodeErr(t, err)
		if err == nil && utf8.RuneCountInString(req.Title) > maxTitleChars {
			t.Fatalf("accepted a %d-character title", utf8.RuneCountInString(req.Title))
		}
	})
}

func FuzzDecodeRename(f *testing.F) {
	seedBodies(f, `{"title":"Disk full"}`, `{"title":"  "}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeRename(capped(data))
		checkDecodeErr(t, err)
		if err == nil && (req.Title == "" || utf8.RuneCountInString(req.Title) > maxTitleChars) {
			t.Fatalf("accepted title %q", req.Title)
		}
	})
}

func FuzzDecodeTitle(f *testing.F) {
	seedBodies(f, `{"max_words":8}`, `{"max_words":-3,"hint":"x"}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := decodeTitle(capped(data))
		checkDecodeErr(t, err)
	})
}

func FuzzDecodeClose(f *testing.F) {
	seedBodies(f, `{"closure_reason":"inquiry_only","reason":"done"}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := decodeClose(capped(data))
		checkDecodeErr(t, err)
	})
}

func FuzzDecodeStatus(f *testing.F) {
	seedBodies(f, `{"to_state":"closed","reason":"r","closure_reason":"inquiry_only"}`, `{"to_state":"RESOLVED"}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeStatus(capped(data))
		checkDecodeErr(t, err)
		if err == nil {
			switch req.ToState {
			case "inquiry", "investigating", "resolved", "closed":
			default:
				t.Fatalf("accepted to_state %q", req.ToState)
			}
		}
	})
}

func FuzzParsePage(f *testing.F) {
	for _, s := range []string{"", "limit=100&offset=0", "limit=0", "offset=-1", "limit=%zz", "limit=1&limit=500"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return // net/http would have rejected the URL first
		}
		p, err := parsePage(q)
		checkDecodeErr(t, err)
		if err == nil && (p.Limit < 1 || p.Limit > maxPageLimit || p.Offset < 0) {
			t.Fatalf("accepted page %+v", p)
		}
	})
}

func FuzzParseIdempotencyKey(f *testing.F) {
	for _, s := range []string{"", "opt_case_1_2", "short", "bad key!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		got, err := parseIdempotencyKey(key)
		checkDecodeErr(t, err)
		if err == nil && key != "" && (got != key || len(key) < 8 || len(key) > 255) {
			t.Fatalf("accepted key %q", key)
		}
	})
}

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", "bearer  abc ", "Basic x", "Bearer", "Bearer a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := parseBearer(header)
		if err != nil {
			if header != "" && err != errInvalidToken {
				t.Fatalf("header %q: %v", header, err)
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") || len(tok) > maxTokenLen {
			t.Fatalf("accepted token %q", tok)
		}
	})
}

func FuzzValidRequestID(f *testing.F) {
	for _, s := range []string{"", "abc", "a b", strings.Repeat("z", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if validRequestID(id) && (len(id) > maxRequestIDLen || strings.ContainsAny(id, " \"\n\\{}")) {
			t.Fatalf("accepted request id %q", id)
		}
	})
}
