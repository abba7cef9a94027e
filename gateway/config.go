package gateway

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidConfig wraps every configuration problem New reports.
var ErrInvalidConfig = errors.New("gateway: invalid config")

// Defaults applied by Config.EnsureDefaults.
const (
	DefaultRateLimitIP   = 1200    // requests per minute per client IP, all routes
	DefaultRateLimitUser = 600     // requests per minute per user, authenticated routes
	DefaultRateLimitAuth = 30      // login/register/refresh per minute per client IP
	DefaultMaxBodyBytes  = 1 << 20 // JSON request bodies
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
	origins := make([]string, 0, len(c.CORSOrigins))
	for _, o := range c.CORSOrigins {
		o = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
		if o != "" {
			origins = append(origins, o)
		}
	}
	c.CORSOrigins = origins
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
