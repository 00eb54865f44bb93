package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/intake"
)

// CookieName is the name of the session cookie.
const CookieName = "sio_dashboard"

// StatusTicket is the responseInfo/status/code of a login reply.
const StatusTicket = "SCSS001"

// Channels by which an operator came in, as journaled.
const (
	channelSigned = "signed" // a signed login (POST /dashboard/login)
	channelTicket = "ticket" // a session opened with the ticket of a signed login
	channelTLS    = "tls"    // a session opened with a verified TLS client certificate
)

// session is one browser session. Its id is the cookie; csrf is the token every action carries.
type session struct {
	id, csrf string
	iin      string
	channel  string
	expires  time.Time
}

type ticket struct {
	iin     string
	expires time.Time
}

// sessions holds the sessions and the unused tickets, in memory.
type sessions struct {
	mu      sync.Mutex
	byID    map[string]session
	tickets map[string]ticket
}

func newSessions() *sessions {
	return &sessions{byID: make(map[string]session), tickets: make(map[string]ticket)}
}

// prune drops what has expired; the caller holds mu.
func (s *sessions) prune(now time.Time) {
	for k, t := range s.tickets {
		if !now.Before(t.expires) {
			delete(s.tickets, k)
		}
	}
	for k, v := range s.byID {
		if !now.Before(v.expires) {
			delete(s.byID, k)
		}
	}
}

// issueTicket returns a new one-time ticket for iin, valid until the time returned.
func (s *sessions) issueTicket(iin string, now time.Time, ttl time.Duration) (string, time.Time) {
	tok, exp := rand.Text(), now.Add(ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	s.tickets[tok] = ticket{iin: iin, expires: exp}
	return tok, exp
}

// redeem uses up a ticket: whatever the outcome, it cannot be used again.
func (s *sessions) redeem(tok string, now time.Time) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tickets[tok]
	delete(s.tickets, tok)
	if !ok || !now.Before(t.expires) {
		return "", false
	}
	return t.iin, true
}

// valid reports whether tok is a ticket that redeem would take now, without using it up: a GET
// of the link only asks whether to open the session.
func (s *sessions) valid(tok string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tickets[tok]
	return ok && now.Before(t.expires)
}

func (s *sessions) open(iin, channel string, now time.Time, ttl time.Duration) session {
	sess := session{id: rand.Text(), csrf: rand.Text(), iin: iin, channel: channel, expires: now.Add(ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	s.byID[sess.id] = sess
	return sess
}

func (s *sessions) get(id string, now time.Time) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	if !ok || !now.Before(sess.expires) {
		delete(s.byID, id)
		return session{}, false
	}
	return sess, true
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// operator is the user behind a request, authorised as an operator.
type operator struct {
	user    siobroker.User
	session *session // nil when identified by a client certificate alone
	channel string
}

// by is how the operator is named in the histories: the name and the IIN.
func (o operator) by() string { return fmt.Sprintf("%s (%s)", o.user.FullName, o.user.IIN) }

// denied is the refusal of a request with neither a session nor a client certificate.
func denied() error {
	return siobroker.Errorf(siobroker.CodeDashboardDenied,
		"no dashboard session: log in with `siobroker dashboard login` and open the link it prints, or present a TLS client certificate of an operator")
}

// identify finds the operator of r: by the session cookie, else by a verified TLS client
// certificate. iin is the identified user's IIN even when the registry then refuses the user.
func (h *handler) identify(r *http.Request) (op operator, iin string, err error) {
	now := h.cfg.Clock.Now()
	if c, cerr := r.Cookie(CookieName); cerr == nil {
		if s, ok := h.sessions.get(c.Value, now); ok {
			op.session, op.channel, iin = &s, s.channel, s.iin
		}
	}
	if op.session == nil {
		if iin, err = h.certIIN(r, now); err != nil {
			return op, "", err
		}
		op.channel = channelTLS
	}
	if op.user, err = h.authorize(r.Context(), iin); err != nil {
		if op.session != nil {
			h.sessions.drop(op.session.id)
		}
		return op, iin, err
	}
	return op, iin, nil
}

// authorize returns the user if the registry lets the user act now and the user holds the
// operator right.
func (h *handler) authorize(ctx context.Context, iin string) (siobroker.User, error) {
	u, err := h.cfg.Users.Authorize(ctx, iin)
	if err != nil {
		return u, err
	}
	if !u.OperatorRight {
		return u, siobroker.Errorf(siobroker.CodeDashboardDenied,
			"user %s has no operator right; it is granted in the user registry (siobroker users move --operator)", iin)
	}
	return u, nil
}

// certIIN returns the IIN of the TLS client certificate the connection was verified with.
func (h *handler) certIIN(r *http.Request, now time.Time) (string, error) {
	iin, err := signing.ClientCertificateIIN(r.TLS, h.cfg.VerifyClientCert, now)
	if errors.Is(err, signing.ErrNoClientCertificate) {
		return "", denied()
	}
	return iin, err
}

// setCookie hands the browser the session's cookie.
func (h *handler) setCookie(w http.ResponseWriter, r *http.Request, s session) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: s.id, Path: "/dashboard", MaxAge: int(h.cfg.SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// checkOrigin refuses a request that a browser says came from another origin.
func checkOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return siobroker.Errorf(siobroker.CodeDashboardCSRF, "an action must come from the dashboard's own page, not from %s", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return siobroker.Errorf(siobroker.CodeDashboardCSRF, "an action must come from the dashboard's own origin, not %q", origin)
		}
	}
	return nil
}

// checkCSRF refuses an action that does not carry the session's token, or that a browser says
// came from another origin.
func checkCSRF(r *http.Request, s *session) error {
	if err := checkOrigin(r); err != nil {
		return err
	}
	if s == nil {
		return siobroker.Errorf(siobroker.CodeDashboardCSRF, "an action needs a dashboard session and its CSRF token: open the dashboard page first")
	}
	token := r.PostFormValue("csrf")
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) != 1 {
		return siobroker.Errorf(siobroker.CodeDashboardCSRF, "the CSRF token is missing or not this session's; reload the dashboard")
	}
	return nil
}

// PreSessionCookie holds the CSRF token of the form that opens a session, before there is one: the
// form carries the token and the cookie must match it (a double submit), so that another site
// cannot open a session in an operator's browser, with its own ticket or the operator's client
// certificate.
const PreSessionCookie = "sio_dashboard_open"

// setPreSession hands the browser a new token for the form that opens a session and returns it.
// The broker keeps nothing: GET still changes nothing on the broker.
func (h *handler) setPreSession(w http.ResponseWriter, r *http.Request) string {
	tok := rand.Text()
	http.SetCookie(w, &http.Cookie{
		Name: PreSessionCookie, Value: tok, Path: "/dashboard", MaxAge: int(h.cfg.TicketTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	return tok
}

// clearPreSession drops the form's cookie once the session is open.
func clearPreSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: PreSessionCookie, Value: "", Path: "/dashboard", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// checkPreSession refuses a POST that opens a session without the token of the form the dashboard
// gave this browser, or that a browser says came from another origin.
func checkPreSession(r *http.Request) error {
	if err := checkOrigin(r); err != nil {
		return err
	}
	c, err := r.Cookie(PreSessionCookie)
	token := r.PostFormValue("csrf")
	if err != nil || c.Value == "" || token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(c.Value)) != 1 {
		return siobroker.Errorf(siobroker.CodeDashboardCSRF,
			"opening a session needs the CSRF token of the dashboard's own form: open the link again and press the button")
	}
	return nil
}

// login takes a signed q:dashboardLogin and answers a signed q:dashboardTicket.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	out, err := h.serveLogin(ctx, r)
	if err != nil {
		code := siobroker.ErrorCode(err)
		if code == siobroker.CodeInternal || code == siobroker.CodeUnavailable {
			h.log.ErrorContext(ctx, "dashboard login failed", "code", string(code), "error", err)
		} else {
			h.log.InfoContext(ctx, "dashboard login refused", "code", string(code), "reason", siobroker.ErrorMessage(err))
		}
		soap.WriteFault(w, err, h.cfg.Clock.Now())
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(out); err != nil {
		h.log.WarnContext(ctx, "dashboard ticket not delivered", "error", err)
	}
}

func (h *handler) serveLogin(ctx context.Context, r *http.Request) ([]byte, error) {
	if r.ContentLength > h.cfg.Limits.MaxBytes {
		return nil, siobroker.Errorf(siobroker.CodeOversize, "request of %d bytes exceeds the limit of %d bytes", r.ContentLength, h.cfg.Limits.MaxBytes)
	}
	if err := soap.CheckMediaType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	sr, err := intake.ReadSigned(ctx, r.Body, r.Header.Get("Content-Type"), h.cfg.Limits, h.cfg.MessageDateWindow, h.cfg.Clock, h.cfg.Verify)
	if err != nil {
		return nil, err
	}
	v, now := sr.Verified, sr.Now
	// Replays are refused after verification and are not journaled: a captured login must not
	// be able to fill the permanent journal.
	if err := h.replay.Mark(ctx, v.SignerIIN, sr.Info.MessageID, v.Signed, now); err != nil {
		return nil, err
	}
	d := journal.OperatorAction{Action: "login", Channel: channelSigned}
	rec := journal.Operator{IIN: v.SignerIIN, MessageID: sr.Info.MessageID}
	refuse := func(err error) ([]byte, error) { return nil, h.refused(ctx, rec, d, err) }

	if sr.Data == nil || sr.Data.Tag != "dashboardLogin" || sr.Data.NamespaceURI() != schemas.NSQuery {
		return refuse(siobroker.FieldError("requestData/data", "must hold q:dashboardLogin of namespace %s", schemas.NSQuery))
	}
	l, err := soap.ParseDashboardLogin(sr.Data)
	if err != nil {
		return refuse(err)
	}
	if skew := now.Sub(l.IssuedAt); skew > h.cfg.MessageDateWindow || skew < -h.cfg.MessageDateWindow {
		return refuse(siobroker.Errorf(siobroker.CodeReplayDate, "dashboardLogin/issuedAt %s is outside ±%s of the broker's time %s",
			siobroker.FormatTime(l.IssuedAt), h.cfg.MessageDateWindow, siobroker.FormatTime(now)))
	}
	u, err := h.authorize(ctx, v.SignerIIN)
	rec.Organisation = u.Organisation
	if err != nil {
		return refuse(err)
	}
	tok, expires := h.sessions.issueTicket(u.IIN, now, h.cfg.TicketTTL)
	if err := h.journal(ctx, rec, d); err != nil {
		h.sessions.redeem(tok, now) // no ticket without its record
		return nil, err
	}
	h.log.InfoContext(ctx, "dashboard ticket issued", "signer_iin", u.IIN, "expires", siobroker.FormatTime(expires))
	replyID := uuid.NewString()
	reply := soap.NewDashboardTicketResponse(soap.ResponseInfo{
		MessageID: replyID, CorrelationID: sr.Info.MessageID, ResponseDate: now, SessionID: sr.Info.SessionID,
		StatusCode: StatusTicket, StatusMessage: "a one-time dashboard ticket, valid until " + siobroker.FormatTime(expires),
	}, soap.DashboardTicket{RequestMessageID: sr.Info.MessageID, Link: Path + "?ticket=" + url.QueryEscape(tok), Expires: expires})
	if err := h.cfg.Sign(reply, v.Placement); err != nil {
		return nil, fmt.Errorf("dashboard: sign the ticket reply %s: %w", replyID, err)
	}
	return soap.Serialize(reply)
}
