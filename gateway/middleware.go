package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"mime"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/cors"
	"go.uber.org/zap"
)

// Headers the extension sends and may read (contract §0).
var (
	corsAllowedHeaders = []string{"Authorization", "Content-Type", "X-Session-Id", "Idempotency-Key", "X-Request-Id"}
	corsExposedHeaders = []string{"Location", "Retry-After", "X-Error-Code", "X-Title-Source", "X-Request-Id"}
	corsMethods        = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
)

const headerRequestID = "X-Request-Id"

// maxRequestIDLen bounds an incoming X-Request-Id we are willing to echo and log.
const maxRequestIDLen = 64

// requestID adopts a sane incoming X-Request-Id (so a proxy's id threads
// through our logs) or makes one, echoes it, and starts the request's
// requestInfo.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(headerRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(headerRequestID, id)
		info := &requestInfo{id: id, log: s.log}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyInfo, info)))
	})
}

// validRequestID accepts 1..64 characters of [A-Za-z0-9_-]: enough for
// UUIDs, ULIDs and the usual proxy ids, nothing that could forge a log line.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// clientIP resolves the caller's address the way Config.TrustedProxies says;
// read it back with middleware.GetClientIP.
func (s *Server) clientIP() func(http.Handler) http.Handler {
	if s.cfg.TrustedProxies > 0 {
		return middleware.ClientIPFromXFFTrustedProxies(s.cfg.TrustedProxies)
	}
	return middleware.ClientIPFromRemoteAddr
}

// quietRoutes are scraped by machines every few seconds; their access log
// lines go to debug.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// observe writes the access log line and the latency histogram once the
// response is done. It logs the route pattern, never the path, query,
// headers or body: those can carry tokens and case content.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			d := time.Since(start)
			info := infoFrom(r.Context())
			status := ww.Status()
			switch {
			case status == 0 && info.upgraded:
				status = http.StatusSwitchingProtocols // written on the hijacked connection
			case status == 0:
				status = http.StatusOK // nothing written: net/http sends 200
			}
			route := routePattern(r)
			s.metrics.observe(r.Method, route, status, d)
			fields := []zap.Field{
				zap.String("method", r.Method),
				zap.String("route", route),
				zap.Int("status", status),
				zap.Int("bytes", ww.BytesWritten()),
				zap.Duration("duration", d),
				zap.String("request_id", info.id),
				zap.String("user_id", info.userID),
				zap.String("client_ip", middleware.GetClientIP(r.Context())),
			}
			if info.caseID != "" {
				fields = append(fields, zap.String("case_id", info.caseID))
			}
			if quietRoutes[route] {
				s.log.Debug("http request", fields...)
			} else {
				s.log.Info("http request", fields...)
			}
		}()
		next.ServeHTTP(ww, r)
	})
}

// statusWriter is the part of chi's WrapResponseWriter recover needs to
// know whether the response has started.
type statusWriter interface{ Status() int }

// recoverer turns a handler panic into a logged 500 envelope; the server
// keeps serving. http.ErrAbortHandler is re-raised: it is net/http's own
// signal to drop the connection quietly.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if rec == http.ErrAbortHandler {
				panic(rec)
			}
			s.metrics.panics.Inc()
			s.log.Error("panic serving request",
				zap.String("request_id", RequestIDFrom(r.Context())),
				zap.String("method", r.Method),
				zap.String("route", routePattern(r)),
				zap.Any("panic", rec),
				zap.Stack("stack"))
			if sw, ok := w.(statusWriter); ok && sw.Status() != 0 {
				return // the response has started; nothing sane can follow it
			}
			writeEnvelope(w, *errInternal)
		}()
		next.ServeHTTP(w, r)
	})
}

// cors answers preflights and labels responses for allow-listed origins
// only. It sits outside the rate limiter so a 429 is still readable (and
// its Retry-After visible) to the extension.
func (s *Server) cors() func(http.Handler) http.Handler {
	return cors.New(cors.Options{
		AllowOriginFunc:  func(_ *http.Request, origin string) bool { return s.origins.allowed(origin) },
		AllowedMethods:   corsMethods,
		AllowedHeaders:   corsAllowedHeaders,
		ExposedHeaders:   corsExposedHeaders,
		AllowCredentials: true,
		MaxAge:           600,
	}).Handler
}

// limitBody caps request bodies at MaxBodyBytes: a declared length beyond
// it is refused at once, an undeclared one fails with 413 when reading
// crosses it. Multipart bodies are left to the upload routes, which know
// their own (larger) limits; the JSON decoder caps its input again, so a
// multipart Content-Type does not open a way around the cap.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isMultipart(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			WriteError(w, r, errTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

func isMultipart(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}
