package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults applied by Config.EnsureDefaults.
const (
	DefaultAttemptTimeout = 60 * time.Second
	DefaultTurnTimeout    = 180 * time.Second
	DefaultMaxRetries     = 2
)

// maxConfigFile bounds LoadConfigFile: a provider list is a few hundred bytes.
const maxConfigFile = 1 << 20

// ErrConfig marks every configuration error of this package; the wrapped
// message names the entry and the field to fix.
var ErrConfig = errors.New("llm: invalid config")

// ProviderConfig is one OpenAI-compatible endpoint.
type ProviderConfig struct {
	// Name identifies the provider in logs and errors. Default: host/model.
	Name string
	// BaseURL is the API root, e.g. "http://localhost:11434/v1/".
	BaseURL string
	// APIKey is sent as a bearer token; empty for servers that need none.
	APIKey string
	// Model is the model name sent with every request.
	Model string
	// Tools says whether the model supports tool calls; nil assumes it does.
	Tools *bool
	// MaxTokens caps a completion when the request sets no cap; 0 sends none.
	MaxTokens int
}

// SupportsTools reports the Tools setting (nil counts as supported).
func (p ProviderConfig) SupportsTools() bool { return p.Tools == nil || *p.Tools }

// Config configures a Chain (and the providers made by NewOpenAI).
type Config struct {
	// Providers are tried in order: the first is the primary, the rest are
	// fallbacks.
	Providers []ProviderConfig
	// AttemptTimeout bounds how long one HTTP attempt may make no progress:
	// the wait for response headers, and then every gap between two streamed
	// chunks. A stream that keeps producing is bounded by TurnTimeout only.
	// Default 60s.
	AttemptTimeout time.Duration
	// TurnTimeout bounds one whole Stream call, fallbacks included.
	// Default 180s.
	TurnTimeout time.Duration
	// MaxRetries is how often one provider is retried on 408/409/429/5xx and
	// connection errors before falling back, honouring Retry-After. 0 means
	// the default (2); a negative value disables retries.
	MaxRetries int
	// HTTPClient carries every request; nil uses a client with a connection
	// pool sized for many concurrent streams.
	HTTPClient *http.Client
}

// EnsureDefaults fills unset fields with their defaults and returns c.
func (c *Config) EnsureDefaults() *Config {
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.TurnTimeout <= 0 {
		c.TurnTimeout = DefaultTurnTimeout
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = -1
	}
	for i := range c.Providers {
		c.Providers[i].ensureDefaults()
	}
	return c
}

// retries is the retry count to hand to openai-go.
func (c *Config) retries() int { return max(c.MaxRetries, 0) }

// Validate reports the first invalid setting. It expects EnsureDefaults to
// have run.
func (c *Config) Validate() error {
	if len(c.Providers) == 0 {
		return ErrNoProvider
	}
	seen := make(map[string]int, len(c.Providers))
	for i, p := range c.Providers {
		if err := p.validate(); err != nil {
			return fmt.Errorf("%w: provider %d (%s): %w", ErrConfig, i, p.Name, err)
		}
		if j, dup := seen[p.Name]; dup {
			return fmt.Errorf("%w: provider %d: name %q is already used by provider %d: names must be unique",
				ErrConfig, i, p.Name, j)
		}
		seen[p.Name] = i
	}
	return nil
}

func (p *ProviderConfig) ensureDefaults() {
	p.Name = strings.TrimSpace(p.Name)
	p.BaseURL = strings.TrimSpace(p.BaseURL)
	p.Model = strings.TrimSpace(p.Model)
	if p.Name != "" {
		return
	}
	host := p.BaseURL
	if u, err := url.Parse(p.BaseURL); err == nil && u.Host != "" {
		host = u.Host
	}
	p.Name = host + "/" + p.Model
}

// validate checks one provider; its errors name the field, never the key.
func (p ProviderConfig) validate() error {
	if err := checkBaseURL(p.BaseURL); err != nil {
		return err
	}
	if p.Model == "" {
		return errors.New("model: required")
	}
	if p.MaxTokens < 0 {
		return fmt.Errorf("max_tokens: %d is negative", p.MaxTokens)
	}
	return nil
}

func checkBaseURL(s string) error {
	if s == "" {
		return errors.New("base_url: required (e.g. http://localhost:11434/v1/)")
	}
	u, err := url.Parse(s)
	if err != nil {
		// The raw text is not echoed: it might hold credentials.
		return errors.New("base_url: not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("base_url: %q must be an absolute http(s) URL", u.Redacted())
	}
	return nil
}

// fallbackEntry is the JSON shape of one provider in FM_LLM_FALLBACKS and in
// config files.
type fallbackEntry struct {
	Name      string `json:"name"`
	BaseURL   string `json:"base_url"`
	Model     string `json:"model"`
	APIKey    string `json:"api_key"`
	APIKeyEnv string `json:"api_key_env"`
	Tools     *bool  `json:"tools"`
	MaxTokens int    `json:"max_tokens"`
}

// ParseFallbacks parses the FM_LLM_FALLBACKS value: a JSON array of
// providers such as
//
//	[{"name":"ollama","base_url":"http://localhost:11434/v1/","model":"llama3.1","tools":true}]
//
// An entry gives its key either inline ("api_key") or as the name of an
// environment variable ("api_key_env") read through getenv (nil means
// os.Getenv). Unknown fields are rejected so that typos fail at start. An
// empty or blank s means no fallbacks. Errors wrap ErrConfig and name the
// entry index and field.
func ParseFallbacks(s string, getenv func(string) string) ([]ProviderConfig, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var entries []fallbackEntry
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("%w: want a JSON array of {\"name\",\"base_url\",\"model\",...}: %s",
			ErrConfig, jsonErrorText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: unexpected text after the JSON array", ErrConfig)
	}
	out := make([]ProviderConfig, 0, len(entries))
	for i, e := range entries {
		p, err := e.provider(getenv)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrConfig, i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (e fallbackEntry) provider(getenv func(string) string) (ProviderConfig, error) {
	p := ProviderConfig{
		Name:      e.Name,
		BaseURL:   e.BaseURL,
		APIKey:    e.APIKey,
		Model:     e.Model,
		Tools:     e.Tools,
		MaxTokens: e.MaxTokens,
	}
	if e.APIKeyEnv != "" {
		if e.APIKey != "" {
			return ProviderConfig{}, errors.New("api_key_env: set either api_key or api_key_env, not both")
		}
		p.APIKey = getenv(e.APIKeyEnv)
		if p.APIKey == "" {
			return ProviderConfig{}, fmt.Errorf("api_key_env: environment variable %q is unset or empty", e.APIKeyEnv)
		}
	}
	p.ensureDefaults()
	if err := p.validate(); err != nil {
		return ProviderConfig{}, err
	}
	return p, nil
}

// jsonErrorText keeps decoder errors short and free of the input text.
func jsonErrorText(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %s: want %s", typ.Field, typ.Type)
		}
		return fmt.Sprintf("want %s, got %s", typ.Type, typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of JSON"
	default:
		// Unknown-field errors name the field ("json: unknown field \"x\"").
		return err.Error()
	}
}

// LoadConfigFile reads a provider list from a JSON file with the same shape
// as ParseFallbacks. Errors name the file.
func LoadConfigFile(path string, getenv func(string) string) ([]ProviderConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrConfig, path, err)
	}
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrConfig, path, maxConfigFile)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: %s: empty file, want a JSON array of providers", ErrConfig, path)
	}
	ps, err := ParseFallbacks(string(data), getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ps, nil
}
