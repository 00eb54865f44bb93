package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strings"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/operator/incidents"
)

//go:embed assets
var assets embed.FS

// assetTypes are the files the page is made of, with their media types. Nothing else is served.
var assetTypes = map[string]string{
	"app.css":      "text/css; charset=utf-8",
	"app.js":       "text/javascript; charset=utf-8",
	"register.css": "text/css; charset=utf-8", // incidents.RegisterCSS: the printed register's, one style for the page and the file
}

// maxActionBody bounds the form of an action.
const maxActionBody = 64 << 10

// static serves the page's script and style sheet. They hold no data, so they need no session.
func (h *handler) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctype, ok := assetTypes[name]
	if !ok {
		h.notFound(w, r)
		return
	}
	b, err := assets.ReadFile(path.Join("assets", name))
	if name == "register.css" {
		b, err = []byte(incidents.RegisterCSS), nil
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	_, _ = w.Write(b)
}

// page serves the dashboard to an operator who holds a session. It changes nothing: a GET of the
// ticket link, or of the page with a client certificate and no session, answers the form that
// opens the session (confirmPage), and only its POST (openPost) spends the ticket, opens the
// session and journals it. A link preview or a prefetch therefore spends nothing.
func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.cfg.Clock.Now()
	if r.Method != http.MethodGet {
		// A HEAD answers what a GET would, but it has no use here and nothing to show.
		w.Header().Set("Allow", http.MethodGet)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Query().Has("ticket") {
		tok := r.URL.Query().Get("ticket")
		if !h.sessions.valid(tok, now) {
			h.log.InfoContext(ctx, "dashboard ticket refused", "remote", r.RemoteAddr)
			h.errorPage(w, ticketRefused())
			return
		}
		h.confirmPage(w, r, tok, "")
		return
	}
	op, iin, err := h.identify(r)
	if err != nil {
		h.log.InfoContext(ctx, "dashboard refused", "signer_iin", iin, "code", string(siobroker.ErrorCode(err)), "reason", siobroker.ErrorMessage(err))
		h.errorPage(w, err)
		return
	}
	if op.session == nil {
		h.confirmPage(w, r, "", op.by())
		return
	}
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		h.errorPage(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

func ticketRefused() error {
	return siobroker.Errorf(siobroker.CodeDashboardTicket,
		"the ticket is unknown, used already or expired; run `siobroker dashboard login` again and open the new link")
}

var confirmTemplate = template.Must(template.New("confirm").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>СИО ПСО operator dashboard: open a session</title>
<link rel="stylesheet" href="/dashboard/static/app.css"></head>
<body><main class="refusal"><h1>СИО ПСО operator dashboard</h1>
<form id="open-session" method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">{{if .Ticket}}
<input type="hidden" name="ticket" value="{{.Ticket}}">
<p>Open a dashboard session with the one-time ticket of your signed login.</p>{{else}}
<p>Open a dashboard session as {{.Who}}, identified by your TLS client certificate.</p>{{end}}
<button type="submit" id="open-session-button">Open the dashboard</button>
</form></main></body></html>
`))

// confirmPage answers the form that opens a session: with the ticket of a signed login, or
// (ticket "") for the operator who presented the client certificate. It carries a new CSRF
// token that openPost checks against the cookie set with it.
func (h *handler) confirmPage(w http.ResponseWriter, r *http.Request, ticket, who string) {
	csrf := h.setPreSession(w, r)
	var b strings.Builder
	if err := confirmTemplate.Execute(&b, struct{ Action, CSRF, Ticket, Who string }{SessionPath, csrf, ticket, who}); err != nil {
		h.errorPage(w, fmt.Errorf("dashboard: the session form: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Under no-referrer a browser sends the form's POST with "Origin: null", which checkOrigin
	// refuses; same-origin gives the broker its own origin and still sends no Referer, so no
	// ticket, to any other site.
	w.Header().Set("Referrer-Policy", "same-origin")
	_, _ = w.Write([]byte(b.String()))
}

// openPost opens a session from the form of confirmPage: it checks the form's CSRF token and the
// origin, then spends the ticket, or identifies the operator by the client certificate, and
// opens, journals and hands over the session (openSession). A refused CSRF check spends nothing.
func (h *handler) openPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.cfg.Clock.Now()
	r.Body = http.MaxBytesReader(w, r.Body, maxActionBody)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, siobroker.FieldError("form", "cannot be read: %v", err))
		return
	}
	if err := checkPreSession(r); err != nil {
		h.log.InfoContext(ctx, "dashboard session refused", "remote", r.RemoteAddr, "code", string(siobroker.ErrorCode(err)), "reason", siobroker.ErrorMessage(err))
		h.errorPage(w, err)
		return
	}
	if r.PostForm.Has("ticket") {
		iin, ok := h.sessions.redeem(r.PostForm.Get("ticket"), now)
		if !ok {
			h.log.InfoContext(ctx, "dashboard ticket refused", "remote", r.RemoteAddr)
			h.errorPage(w, ticketRefused())
			return
		}
		h.openSession(w, r, iin, channelTicket)
		return
	}
	iin, err := h.certIIN(r, now)
	if err != nil {
		h.log.InfoContext(ctx, "dashboard session refused", "remote", r.RemoteAddr, "code", string(siobroker.ErrorCode(err)))
		h.errorPage(w, err)
		return
	}
	h.openSession(w, r, iin, channelTLS)
}

// openSession authorises iin, journals the new session and redirects to the page with its cookie.
func (h *handler) openSession(w http.ResponseWriter, r *http.Request, iin, channel string) {
	ctx := r.Context()
	now := h.cfg.Clock.Now()
	d := journal.OperatorAction{Action: "session", Channel: channel}
	u, err := h.authorize(ctx, iin)
	rec := journal.Operator{IIN: iin, Organisation: u.Organisation}
	if err != nil {
		h.errorPage(w, h.refused(ctx, rec, d, err))
		return
	}
	d.By = operator{user: u}.by()
	s := h.sessions.open(iin, channel, now, h.cfg.SessionTTL)
	if err := h.journal(ctx, rec, d); err != nil {
		h.sessions.drop(s.id)
		h.errorPage(w, err)
		return
	}
	h.log.InfoContext(ctx, "dashboard session opened", "signer_iin", iin, "channel", channel)
	clearPreSession(w, r)
	h.setCookie(w, r, s)
	http.Redirect(w, r, Path, http.StatusSeeOther)
}

// readFunc answers a GET of the API for an operator.
type readFunc func(ctx context.Context, op operator) (any, error)

// read serves a JSON endpoint to an identified operator. Reads are not journaled: the page polls.
func (h *handler) read(fn readFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op, iin, err := h.identify(r)
		if err != nil {
			h.log.InfoContext(r.Context(), "dashboard read refused", "signer_iin", iin, "path", r.URL.Path, "code", string(siobroker.ErrorCode(err)))
			writeError(w, err)
			return
		}
		out, err := fn(r.Context(), op)
		if err != nil {
			h.logFailure(r.Context(), "dashboard read", err)
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// actionFunc carries out an action for an operator; it fills d with what the journal keeps and
// rec.Service with the service it concerns.
type actionFunc func(ctx context.Context, r *http.Request, op operator, rec *journal.Operator, d *journal.OperatorAction) (any, error)

// action serves a POST that changes something: the operator must be identified, hold a session
// and send its CSRF token. The action, allowed or refused, is journaled with who did it.
func (h *handler) action(name string, fn actionFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		r.Body = http.MaxBytesReader(w, r.Body, maxActionBody)
		op, iin, err := h.identify(r)
		rec := journal.Operator{IIN: iin, Organisation: op.user.Organisation}
		d := journal.OperatorAction{Action: name, Channel: op.channel}
		if iin != "" {
			d.By = operator{user: siobroker.User{IIN: iin, FullName: op.user.FullName}}.by()
		}
		if err != nil {
			h.log.InfoContext(ctx, "dashboard "+name+" refused", "signer_iin", iin, "code", string(siobroker.ErrorCode(err)))
			if iin != "" {
				err = h.refused(ctx, rec, d, err)
			}
			writeError(w, err)
			return
		}
		if err := r.ParseForm(); err != nil {
			writeError(w, h.refused(ctx, rec, d, siobroker.FieldError("form", "cannot be read: %v", err)))
			return
		}
		if err := checkCSRF(r, op.session); err != nil {
			h.log.InfoContext(ctx, "dashboard "+name+" refused", "signer_iin", iin, "code", string(siobroker.ErrorCode(err)), "reason", siobroker.ErrorMessage(err))
			writeError(w, h.refused(ctx, rec, d, err))
			return
		}
		out, err := fn(ctx, r, op, &rec, &d)
		if err != nil {
			h.logFailure(ctx, "dashboard "+name, err)
			writeError(w, h.refused(ctx, rec, d, err))
			return
		}
		if err := h.journal(ctx, rec, d); err != nil {
			// The action is done; its record is missing, which the operator must know.
			writeError(w, siobroker.Wrap(siobroker.CodeUnavailable, err,
				"the %s was carried out, but its journal record could not be written; tell the administrator", name))
			return
		}
		h.log.InfoContext(ctx, "dashboard "+name, "signer_iin", iin, "incident", d.Incident, "window", d.WindowID)
		writeJSON(w, http.StatusOK, out)
	}
}

func (h *handler) logFailure(ctx context.Context, what string, err error) {
	code := siobroker.ErrorCode(err)
	if code == siobroker.CodeInternal || code == siobroker.CodeUnavailable {
		h.log.ErrorContext(ctx, what+" failed", "code", string(code), "error", err)
		return
	}
	h.log.InfoContext(ctx, what+" refused", "code", string(code), "reason", siobroker.ErrorMessage(err))
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, siobroker.Errorf(siobroker.CodeDashboardNotFound, "%s %s is not a page or endpoint of the dashboard", r.Method, r.URL.Path))
}

// apiError is the JSON of a refusal.
type apiError struct {
	Code    siobroker.Code `json:"code"`
	Message string         `json:"message"`
	Field   string         `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, err error) {
	code := siobroker.ErrorCode(err)
	e := apiError{Code: code, Message: siobroker.ErrorMessage(err)}
	if se, ok := err.(*siobroker.Error); ok {
		e.Field = se.Field
	}
	w.Header().Set("X-SIO-Error-Code", string(code))
	writeJSON(w, siobroker.HTTPStatus(code), e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"SIO-INTERNAL","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var errorTemplate = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>СИО ПСО operator dashboard: {{.Code}}</title>
<link rel="stylesheet" href="/dashboard/static/app.css"></head>
<body><main class="refusal"><h1>СИО ПСО operator dashboard</h1>
<p class="code" id="error-code">{{.Code}}</p><p id="error-message">{{.Message}}</p>
<p>Log in with <code>siobroker dashboard login --url URL --user IIN</code> (or <code>--cert</code>/<code>--key</code>)
and open the link it prints, or connect with the TLS client certificate of an operator.</p></main></body></html>
`))

// errorPage answers a browser with the refusal as a page, with its code.
func (h *handler) errorPage(w http.ResponseWriter, err error) {
	code := siobroker.ErrorCode(err)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-SIO-Error-Code", string(code))
	w.WriteHeader(siobroker.HTTPStatus(code))
	var b strings.Builder
	if terr := errorTemplate.Execute(&b, apiError{Code: code, Message: siobroker.ErrorMessage(err)}); terr != nil {
		h.log.Error("dashboard error page", "error", terr)
	}
	_, _ = w.Write([]byte(b.String()))
}
