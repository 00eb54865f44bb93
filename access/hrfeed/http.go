package hrfeed

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// The headers of a feed sent over HTTP.
const (
	HeaderSystem    = "X-HR-System"
	HeaderSignature = "X-HR-Signature"
)

// Handler receives feeds by POST: the body is the feed, HeaderSystem names the HR system and
// HeaderSignature carries "sha256=HEX", the HMAC of the body under its key. It answers 200 with
// the outcomes as JSON, 401 for a feed that is not authentic, 400 for one that is refused, 413
// for one too large. An HMAC rather than a TLS client certificate: HR systems are not users with
// НУЦ certificates registered here, the broker's listener decides client certificates for every
// channel at once (http.tls.client_auth), and the same key and check serve the folder too.
func (p *Processor) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST a feed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFeedBytes))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "the feed is too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err != nil {
			http.Error(w, "cannot read the feed", http.StatusBadRequest)
			return
		}
		system := r.Header.Get(HeaderSystem)
		if err := p.systems.Verify(system, body, r.Header.Get(HeaderSignature)); err != nil {
			// Journaled as refused, with nothing of the body trusted.
			p.record(r.Context(), system, "http", body, nil, err)
			http.Error(w, "the feed is not authentic", http.StatusUnauthorized)
			return
		}
		out, err := p.Process(r.Context(), system, body, r.Header.Get(HeaderSignature), "http")
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string][]Outcome{"outcomes": out})
	})
}
