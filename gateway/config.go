package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ErrInvalidConfig wraps every configuration problem New reports.
var ErrInvalidConfig = errors.New("gateway: invalid config")

// Defaults applied by Config.EnsureDefaults.
const (
	DefaultRateLimitIP   = 1200    // requests per minute per client IP, all routes
	DefaultRateLimitUser = 600     // requests per minute per user, authenticated routes
	DefaultRateLimitAuth = 30      // login/register/refresh per minute per client IP
	DefaultMaxBodyBytes  = 1 << 20 // JSON request bodies

	DefaultTurnSyncWait      = 25 * time.Second // REST turns answer 202 after this long
	DefaultWSMaxConnsPerUser = 20               // WebSocket connections per user
	DefaultMaxUploadBytes    = 10 << 20         // multipart turn bodies
)

// Config configures the HTTP layer. Zero fields take the defaults above.
type Config struct {
	// CORSOrigins lists the browser origins allowed to call the API with
	// credentials: exact origins ("https://fm.example.com") or patterns with
	// one "*" in the host part ("chrome-extension://*",
	// "https://*.example.com"). "*" alone is refused: the extension sends
	// credentials, and a wildcard would let any web page use a logged-in
	// browser. Empty means no cross-origin access (an extension granted host
	// permissions does not need CORS).
	CORSOrigins []string
	// RateLimitIP, RateLimitUser and RateLimitAuth are requests per minute:
	// all routes per client IP, authenticated routes per user, and
	// login/register/refresh per client IP.
	RateLimitIP, RateLimitUser, RateLimitAuth int
	// MaxBodyBytes caps JSON request bodies (413 beyond it). Multipart
	// upload routes are exempt from the router-wide cap and set their own.
	MaxBodyBytes int64
	// TrustedProxies is how many reverse proxies sit in front of the
	// server. 0: the client IP is the connection's address. n > 0: the
	// client IP is read from X-Forwarded-For, skipping the n entries those
	// proxies appended (only safe if the proxies overwrite the header).
	TrustedProxies int
	// Version is reported by /health; DashboardURL by the capabilities.
	Version      string
	DashboardURL string
	// TurnSyncWait is how long POST /cases/{id}/turns waits for the agent
	// before answering 202 with a job to poll.
	TurnSyncWait time.Duration
	// WSOrigins are the browser origins allowed to open the WebSocket, in
	// the CORSOrigins syntax; empty takes CORSOrigins. A page served from
	// the API's own host is always allowed, and so are clients that send
	// no Origin (they are not browsers, so no page can abuse their
	// credentials).
	WSOrigins []string
	// WSMaxConnsPerUser caps a user's open WebSocket connections; the next
	// one is refused with 429.
	WSMaxConnsPerUser int
	// MaxUploadBytes caps a turn's multipart body (413 beyond it).
	MaxUploadBytes int64
	// PublicURL is the absolute base URL clients reach the API at
	// ("https://fm.example.com/prefix"), used for Location headers. Empty:
	// the scheme and Host of each request.
	PublicURL string
}

// EnsureDefaults fills in zero fields and normalises the origin list.
func (c *Config) EnsureDefaults() {
	if c.RateLimitIP == 0 {
		c.RateLimitIP = DefaultRateLimitIP
	}
	if c.RateLimitUser == 0 {
		c.RateLimitUser = DefaultRateLimitUser
	}
	if c.RateLimitAuth == 0 {
		c.RateLimitAuth = DefaultRateLimitAuth
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.TurnSyncWait == 0 {
		c.TurnSyncWait = DefaultTurnSyncWait
	}
	if c.WSMaxConnsPerUser == 0 {
		c.WSMaxConnsPerUser = DefaultWSMaxConnsPerUser
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = DefaultMaxUploadBytes
	}
	c.CORSOrigins = normaliseOrigins(c.CORSOrigins)
	c.WSOrigins = normaliseOrigins(c.WSOrigins)
	if len(c.WSOrigins) == 0 {
		c.WSOrigins = c.CORSOrigins
	}
	c.PublicURL = strings.TrimSuffix(strings.TrimSpace(c.PublicURL), "/")
}

func normaliseOrigins(in []string) []string {
	origins := make([]string, 0, len(in))
	for _, o := range in {
		o = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
		if o != "" {
			origins = append(origins, o)
		}
	}
	return origins
}

// Validate reports the first bad setting, naming it and the fix.
func (c Config) Validate() error {
	for _, lim := range []struct {
		name string
		v    int
	}{{"RateLimitIP", c.RateLimitIP}, {"RateLimitUser", c.RateLimitUser}, {"RateLimitAuth", c.RateLimitAuth}} {
		if lim.v < 0 {
			return fmt.Errorf("%w: %s is %d requests per minute; use a positive number (0 takes the default)", ErrInvalidConfig, lim.name, lim.v)
		}
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("%w: MaxBodyBytes is %d; use a positive byte count (0 takes the default of %d)", ErrInvalidConfig, c.MaxBodyBytes, DefaultMaxBodyBytes)
	}
	if c.TrustedProxies < 0 {
		return fmt.Errorf("%w: TrustedProxies is %d; use 0 (no proxy) or the number of proxies in front of the server", ErrInvalidConfig, c.TrustedProxies)
	}
	for _, o := range c.CORSOrigins {
		if _, err := parseOrigin(o); err != nil {
			return fmt.Errorf("%w: CORSOrigins entry %q: %v", ErrInvalidConfig, o, err)
		}
	}
	for _, o := range c.WSOrigins {
		if _, err := parseOrigin(o); err != nil {
			return fmt.Errorf("%w: WSOrigins entry %q: %v", ErrInvalidConfig, o, err)
		}
	}
	if c.TurnSyncWait < 0 {
		return fmt.Errorf("%w: TurnSyncWait is %s; use a positive duration (0 takes the default of %s)", ErrInvalidConfig, c.TurnSyncWait, DefaultTurnSyncWait)
	}
	if c.WSMaxConnsPerUser < 0 {
		return fmt.Errorf("%w: WSMaxConnsPerUser is %d; use a positive number (0 takes the default of %d)", ErrInvalidConfig, c.WSMaxConnsPerUser, DefaultWSMaxConnsPerUser)
	}
	if c.MaxUploadBytes < 0 {
		return fmt.Errorf("%w: MaxUploadBytes is %d; use a positive byte count (0 takes the default of %d)", ErrInvalidConfig, c.MaxUploadBytes, DefaultMaxUploadBytes)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("%w: PublicURL %q must be an absolute http(s) URL without query, fragment or user info, e.g. https://fm.example.com", ErrInvalidConfig, c.PublicURL)
		}
	}
	return nil
}

// originPattern matches an Origin header: exactly, or with one wildcard
// standing for a non-empty run of host characters.
type originPattern struct {
	exact          string
	prefix, suffix string
	wildcard       bool
}

func parseOrigin(o string) (originPattern, error) {
	if o == "*" {
		return originPattern{}, errors.New(`"*" is not allowed because requests carry credentials; list the origins, e.g. chrome-extension://<extension id>`)
	}
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || scheme == "" || rest == "" {
		return originPattern{}, errors.New("an origin is scheme://host[:port], e.g. https://fm.example.com")
	}
	for i := 0; i < len(scheme); i++ {
		if !isSchemeChar(scheme[i]) {
			return originPattern{}, errors.New("the scheme may not contain wildcards or other punctuation")
		}
	}
	if strings.ContainsAny(rest, "/?#@ ") {
		return originPattern{}, errors.New("an origin has no path, query, user info or spaces")
	}
	switch strings.Count(rest, "*") {
	case 0:
		return originPattern{exact: o}, nil
	case 1:
		i := strings.IndexByte(o, '*')
		return originPattern{prefix: o[:i], suffix: o[i+1:], wildcard: true}, nil
	default:
		return originPattern{}, errors.New("use at most one * per origin")
	}
}

func isSchemeChar(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

// isHostChar limits what a wildcard may stand for, so that
// "https://*.example.com" cannot match "https://evil.com:1.example.com".
func isHostChar(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.'
}

func (p originPattern) match(origin string) bool {
	if !p.wildcard {
		return origin == p.exact
	}
	if len(origin) <= len(p.prefix)+len(p.suffix) ||
		!strings.HasPrefix(origin, p.prefix) || !strings.HasSuffix(origin, p.suffix) {
		return false
	}
	mid := origin[len(p.prefix) : len(origin)-len(p.suffix)]
	for i := 0; i < len(mid); i++ {
		if !isHostChar(mid[i]) {
			return false
		}
	}
	return true
}

// originMatcher reports whether a request's Origin is on the allow-list.
type originMatcher []originPattern

func newOriginMatcher(origins []string) originMatcher {
	m := make(originMatcher, 0, len(origins))
	for _, o := range origins {
		if p, err := parseOrigin(o); err == nil { // Validate has refused the others
			m = append(m, p)
		}
	}
	return m
}

func (m originMatcher) allowed(origin string) bool {
	origin = strings.ToLower(origin)
	for _, p := range m {
		if p.match(origin) {
			return true
		}
	}
	return false
}
