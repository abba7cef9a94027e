package gateway

import (
	"encoding/json"
	"net/http"
)

// writeJSON sends v as the whole response. API answers carry tokens and
// case content, so no cache may keep them.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a programming error (a channel or func in v) gets here;
		// nothing has been written yet, so the client still gets an answer.
		status = http.StatusInternalServerError
		w.Header().Set("X-Error-Code", CodeInternal)
		body = []byte(`{"detail":"internal error","code":"` + CodeInternal + `"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
