package llm_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParseFallbacks(t *testing.T) {
	yes := true
	getenv := env(map[string]string{"GROQ_KEY": "gsk-123"})
	for _, tc := range []struct {
		name string
		in   string
		want []llm.ProviderConfig
		err  string // substring of the error; "" means success
	}{
		{name: "empty", in: "  "},
		{name: "empty array", in: "[]", want: []llm.ProviderConfig{}},
		{
			name: "full",
			in: `[{"name":"ollama","base_url":"http://localhost:11434/v1/","model":"llama3.1","tools":true},
			      {"base_url":"https://api.groq.com/openai/v1","model":"llama-3.3-70b","api_key_env":"GROQ_KEY","max_tokens":2048}]`,
			want: []llm.ProviderConfig{
				{Name: "ollama", BaseURL: "http://localhost:11434/v1/", Model: "llama3.1", Tools: &yes},
				{Name: "api.groq.com/llama-3.3-70b", BaseURL: "https://api.groq.com/openai/v1", Model: "llama-3.3-70b", APIKey: "gsk-123", MaxTokens: 2048},
			},
		},
		{name: "inline key", in: `[{"base_url":"http://h/v1/","model":"m","api_key":"k"}]`,
			want: []llm.ProviderConfig{{Name: "h/m", BaseURL: "http://h/v1/", Model: "m", APIKey: "k"}}},
		{name: "not an array", in: `{"base_url":"http://h"}`, err: "want a JSON array"},
		{name: "syntax", in: `[{"base_url":}]`, err: "invalid JSON at byte"},
		{name: "trailing", in: `[] []`, err: "unexpected text after the JSON array"},
		{name: "unknown field", in: `[{"base_url":"http://h/","model":"m","modle":"x"}]`, err: `unknown field "modle"`},
		{name: "no model", in: `[{"base_url":"http://h/"},{}]`, err: "entry 0: model: required"},
		{name: "relative url", in: `[{"base_url":"http://h/","model":"m"},{"base_url":"/v1","model":"m"}]`, err: "entry 1: base_url"},
		{name: "no url", in: `[{"model":"m"}]`, err: "entry 0: base_url: required"},
		{name: "both keys", in: `[{"base_url":"http://h/","model":"m","api_key":"a","api_key_env":"GROQ_KEY"}]`, err: "entry 0: api_key_env: set either"},
		{name: "unset env", in: `[{"base_url":"http://h/","model":"m","api_key_env":"NOPE"}]`, err: `entry 0: api_key_env: environment variable "NOPE" is unset`},
		{name: "wrong type", in: `[{"base_url":"http://h/","model":"m","tools":"yes"}]`, err: "field tools"},
		{name: "negative max", in: `[{"base_url":"http://h/","model":"m","max_tokens":-1}]`, err: "entry 0: max_tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := llm.ParseFallbacks(tc.in, getenv)
			if tc.err != "" {
				if err == nil || !errors.Is(err, llm.ErrConfig) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFallbacks: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseFallbacksNeverEchoesKeys(t *testing.T) {
	_, err := llm.ParseFallbacks(`[{"base_url":"::bad","model":"m","api_key":"sk-live-zzz"}]`, nil)
	if err == nil || strings.Contains(err.Error(), "sk-live-zzz") {
		t.Fatalf("err = %v, want an error that does not echo the key", err)
	}
}

func TestLoadConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "llm.json")
	body := `[{"name":"local","base_url":"http://127.0.0.1:11434/v1/","model":"qwen2.5","api_key_env":"K"}]`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := llm.LoadConfigFile(path, env(map[string]string{"K": "secret"}))
	if err != nil {
		t.Fatalf("LoadConfigFile: %v", err)
	}
	if len(got) != 1 || got[0].Name != "local" || got[0].APIKey != "secret" {
		t.Fatalf("got %+v", got)
	}

	for name, content := range map[string]string{"empty.json": "\n", "bad.json": `[{"model":"m"}]`} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := llm.LoadConfigFile(p, nil); !errors.Is(err, llm.ErrConfig) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want ErrConfig naming the file", name, err)
		}
	}
	if _, err := llm.LoadConfigFile(filepath.Join(dir, "missing.json"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want os.ErrNotExist", err)
	}
}

func FuzzParseFallbacks(f *testing.F) {
	for _, seed := range []string{
		``,
		`[]`,
		`null`,
		`[{"name":"ollama","base_url":"http://localhost:11434/v1/","model":"llama3.1","tools":true}]`,
		`[{"base_url":"https://h/v1","model":"m","api_key_env":"K","max_tokens":5}]`,
		`[{"base_url":"http://[::1]:8080/","model":"m"},{"base_url":"ftp://x","model":"m"}]`,
		`[{"base_url":"http://h","model":" "}]`,
		`[{}] x`,
	} {
		f.Add(seed)
	}
	getenv := env(map[string]string{"K": "key"})
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := llm.ParseFallbacks(s, getenv)
		if err != nil {
			if !errors.Is(err, llm.ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		for i, p := range ps {
			u, perr := url.Parse(p.BaseURL)
			if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("entry %d accepted with base_url %q", i, p.BaseURL)
			}
			if strings.TrimSpace(p.Model) == "" || p.Name == "" || p.MaxTokens < 0 {
				t.Fatalf("entry %d accepted invalid: %+v", i, p)
			}
		}
		// Whatever parses must also be accepted by the chain.
		if len(ps) > 0 && !hasDuplicateNames(ps) {
			if _, err := llm.NewChain(llm.Config{Providers: ps}, nil); err != nil {
				t.Fatalf("parsed providers rejected by NewChain: %v", err)
			}
		}
	})
}

func hasDuplicateNames(ps []llm.ProviderConfig) bool {
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.Name] {
			return true
		}
		seen[p.Name] = true
	}
	return false
}
