package gateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxFileBytes is the upload cap the capabilities advertise (the extension
// enforces the same 10 MB at build time, contract §1.1).
const maxFileBytes = 10 << 20

// capabilities is contract §1.1 / §9 item 1, with its camelCase names.
type capabilitiesResponse struct {
	DeploymentMode string      `json:"deploymentMode"`
	KBManagement   string      `json:"kbManagement"`
	DashboardURL   string      `json:"dashboardUrl"`
	Features       capFeatures `json:"features"`
	Limits         capLimits   `json:"limits"`
}

type capFeatures struct {
	ExtensionKB bool `json:"extensionKB"`
	AdminKB     bool `json:"adminKB"`
	TeamSharing bool `json:"teamSharing"`
	CaseHistory bool `json:"caseHistory"`
	SSO         bool `json:"sso"`
}

type capLimits struct {
	MaxFileBytes      int64    `json:"maxFileBytes"`
	AllowedExtensions []string `json:"allowedExtensions"`
}

func (s *Server) capabilities(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, capabilitiesResponse{
		DeploymentMode: "self-hosted",
		KBManagement:   "dashboard",
		DashboardURL:   s.cfg.DashboardURL,
		Features:       capFeatures{CaseHistory: true},
		Limits: capLimits{
			MaxFileBytes:      maxFileBytes,
			AllowedExtensions: []string{".md", ".txt", ".log", ".json", ".csv"},
		},
	})
}

type statusResponse struct {
	Status     string         `json:"status"`
	Version    string         `json:"version,omitempty"`
	Components map[string]any `json:"components,omitempty"`
}

// health is the extension's fallback probe (contract §1.1): any 2xx.
func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, statusResponse{Status: "ok", Version: s.cfg.Version})
}

// healthz is liveness: the process answers HTTP. It never consults a
// dependency, so a slow store cannot get the process killed.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, statusResponse{Status: "ok"})
}

// readyz is readiness: 503 with the reason while Deps.Ready fails.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.ready(); err != nil {
		// Not logged: a probe polls this every few seconds while starting.
		writeEnvelope(w, Error{CodeNotReady, "not ready: " + err.Error()})
		return
	}
	resp := statusResponse{Status: "ready"}
	if s.components != nil {
		resp.Components = s.components()
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{
		ErrorLog:      zapErrorLog{s},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// zapErrorLog routes promhttp's gathering errors to zap.
type zapErrorLog struct{ s *Server }

func (l zapErrorLog) Println(v ...any) {
	l.s.log.Sugar().Warnln(append([]any{"metrics:"}, v...)...)
}
