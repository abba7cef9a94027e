package gateway

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/httprate"
)

// rateWindow is the window every limit is counted over; limits are per
// minute.
const rateWindow = time.Minute

// limiters are built once per Server: a limiter's counters live inside it,
// so the routes that share a budget must share the instance.
type limiters struct {
	ip   func(http.Handler) http.Handler // all routes, per client IP
	user func(http.Handler) http.Handler // authenticated routes, per user
	auth func(http.Handler) http.Handler // login/register/refresh, per client IP
}

func (s *Server) newLimiters() limiters {
	opts := []httprate.Option{
		httprate.WithLimitHandler(rateLimited),
		httprate.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) { WriteError(w, r, err) }),
	}
	return limiters{
		ip:   httprate.LimitBy(s.cfg.RateLimitIP, rateWindow, clientIPKey, opts...),
		user: httprate.LimitBy(s.cfg.RateLimitUser, rateWindow, userKey, opts...),
		auth: httprate.LimitBy(s.cfg.RateLimitAuth, rateWindow, authKey, opts...),
	}
}

// clientIPKey buckets by the resolved client IP (IPv6 by /64). An
// unresolvable address shares one bucket: stricter, never looser.
func clientIPKey(r *http.Request) (string, error) {
	ip := httprate.CanonicalizeIP(middleware.GetClientIP(r.Context()))
	if ip == "" {
		ip = "unknown"
	}
	return "ip:" + ip, nil
}

func authKey(r *http.Request) (string, error) {
	k, err := clientIPKey(r)
	return "auth:" + k, err
}

// userKey runs after authentication; without a principal it falls back to
// the IP so a mis-ordered chain still limits something.
func userKey(r *http.Request) (string, error) {
	if p, ok := PrincipalFrom(r.Context()); ok {
		return "user:" + p.UserID, nil
	}
	return clientIPKey(r)
}

// rateLimited answers a request over its budget. httprate has already set
// Retry-After to the window length in whole seconds, which the extension
// reads as an integer (contract §7.2); WriteError keeps it.
func rateLimited(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, errRateLimited)
}
