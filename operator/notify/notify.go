// Package notify writes the broker's notices to the store's outbox and delivers them, by e-mail
// (SMTP with STARTTLS) and by webhook (an HTTPS POST of JSON), retrying each until it is
// delivered.
//
// §45 of the Rules requires that the prosecutor and the user's management are told when a user is
// blocked for a violation; the deadlines of applications (§12–15) need notices too. A notice is
// written to the outbox (siobroker.Notification, one row per recipient) and journaled in the same
// step as what it is about, by whichever process acts (the broker, or an operator's command); the
// broker's notifier delivers what is due, so that a notice outlives a crash of either, an SMTP
// server that is down, or a webhook that fails: it is tried again, with a back-off that doubles
// from Config.RetryMin to Config.RetryMax, until it is delivered. Each delivery is journaled.
package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sio-pso/siobroker"
)

// Store is the outbox (sqlite.DB).
type Store interface {
	EnqueueNotifications(ctx context.Context, notes []siobroker.Notification) ([]siobroker.Notification, error)
	DueNotifications(ctx context.Context, now time.Time, limit int) ([]siobroker.Notification, error)
	NotificationDelivered(ctx context.Context, id int64, attempts int, at time.Time) (bool, error)
	NotificationFailed(ctx context.Context, id int64, attempts int, next time.Time, lastError string) error
}

// Contacts are where one party's notices go.
type Contacts struct {
	Emails   []string `yaml:"emails"`
	Webhooks []string `yaml:"webhooks"` // https:// URLs (http:// only to a loopback address)
}

// Recipients is the recipients file (notify.recipients_file): the supervising prosecutor's
// office, the operator's staff who decide applications, and each organisation's management, by
// the organisation's name as the user registry holds it.
type Recipients struct {
	Prosecutor    Contacts            `yaml:"prosecutor"`
	Operator      Contacts            `yaml:"operator"`
	Organisations map[string]Contacts `yaml:"organisations"`
}

// LoadRecipients reads and checks the recipients file at path.
func LoadRecipients(path string) (Recipients, error) {
	var r Recipients
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("notify: recipients: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("notify: recipients %s: %w (keys: prosecutor, operator, organisations; each: emails, webhooks)", path, err)
	}
	return r, r.Validate()
}

// Validate checks every address and URL.
func (r Recipients) Validate() error {
	var errs []error
	check := func(who string, c Contacts) {
		for _, e := range c.Emails {
			if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
				errs = append(errs, fmt.Errorf("notify: %s: %q is not a plain e-mail address", who, e))
			}
		}
		for _, w := range c.Webhooks {
			if err := checkWebhook(w); err != nil {
				errs = append(errs, fmt.Errorf("notify: %s: %w", who, err))
			}
		}
	}
	check("prosecutor", r.Prosecutor)
	check("operator", r.Operator)
	for _, org := range slices.Sorted(maps.Keys(r.Organisations)) {
		check("organisation "+org, r.Organisations[org])
	}
	return errors.Join(errs...)
}

// checkWebhook wants an https URL, or http to a loopback host (a receiver beside the broker).
func checkWebhook(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("webhook %q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
		return fmt.Errorf("webhook %q: plain http only to a loopback address; use https", raw)
	}
	return fmt.Errorf("webhook %q: scheme %q, want https", raw, u.Scheme)
}

// SMTP is the mail server notices are sent through.
type SMTP struct {
	Addr     string // host:port; "" disables e-mail (e-mail notices then wait in the outbox)
	From     string
	Username string // with Password: AUTH PLAIN, only over TLS
	Password string
	// TLS is the client's TLS configuration for STARTTLS; nil means the system roots and the
	// host of Addr. STARTTLS is required: a server that does not offer it gets nothing.
	TLS *tls.Config
}

// Config is what a Notifier is built from.
type Config struct {
	SMTP       SMTP
	Recipients Recipients
	// RetryMin and RetryMax bound the back-off between attempts of one notice; defaults 30s and
	// 1h.
	RetryMin, RetryMax time.Duration
	// HTTPClient posts webhooks; nil means one with a 30 s timeout.
	HTTPClient *http.Client
	// Applications are the submitted applications (§12–15) whose submission, missed deadline and
	// decision Run tells (NotifyApplications); nil: none.
	Applications ApplicationStore
}

// ApplicationStore is what the notices of applications need of the store (sqlite.DB): the events
// not told yet, and a way to write an event's notices and its mark at once.
type ApplicationStore interface {
	ApplicationNoticesDue(ctx context.Context, now time.Time, limit int) ([]siobroker.ApplicationNoticeDue, error)
	EnqueueApplicationNotices(ctx context.Context, id int64, event string, at time.Time, notes []siobroker.Notification) ([]siobroker.Notification, bool, error)
}

// Notifier writes notices to the outbox and delivers them.
type Notifier struct {
	cfg     Config
	store   Store
	journal siobroker.JournalWriter
	clock   siobroker.Clock
	logger  *slog.Logger
}

// New returns a Notifier over store, journaling into journal.
func New(cfg Config, store Store, journal siobroker.JournalWriter, clock siobroker.Clock, logger *slog.Logger) (*Notifier, error) {
	if store == nil || journal == nil || clock == nil {
		return nil, errors.New("notify: New needs a store, a journal and a clock")
	}
	if err := cfg.Recipients.Validate(); err != nil {
		return nil, err
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 30 * time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(time.Hour, cfg.RetryMin)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Notifier{cfg: cfg, store: store, journal: journal, clock: clock, logger: logger}, nil
}

// journalDetails is the JSON of a notification's journal record: never the body, which may
// name people; the subject says what it is about.
type journalDetails struct {
	Event     string `json:"event"` // "queued" or "delivered"
	ID        int64  `json:"id"`
	Channel   string `json:"channel"`
	Recipient string `json:"recipient"`
	Subject   string `json:"subject"`
	Attempts  int    `json:"attempts,omitempty"`
}

// Notify writes a notice of kind about organisation to every contact of to, and journals each.
// It returns the notices written; none when to holds no contact.
func (n *Notifier) Notify(ctx context.Context, kind, organisation, subject, body string, to ...Contacts) ([]siobroker.Notification, error) {
	notes := n.notices(kind, organisation, subject, body, to...)
	if len(notes) == 0 {
		return nil, nil
	}
	notes, err := n.store.EnqueueNotifications(ctx, notes)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return notes, n.journalQueued(ctx, notes)
}

// notices are the notices of kind about organisation to every contact of to, dated now.
func (n *Notifier) notices(kind, organisation, subject, body string, to ...Contacts) []siobroker.Notification {
	now := n.clock.Now()
	var notes []siobroker.Notification
	for _, c := range to {
		for _, e := range c.Emails {
			notes = append(notes, siobroker.Notification{CreatedAt: now, Kind: kind, Organisation: organisation, Channel: siobroker.NoticeEmail,
				Recipient: e, Subject: subject, Body: body})
		}
		for _, w := range c.Webhooks {
			notes = append(notes, siobroker.Notification{CreatedAt: now, Kind: kind, Organisation: organisation, Channel: siobroker.NoticeWebhook,
				Recipient: w, Subject: subject, Body: body})
		}
	}
	return notes
}

// journalQueued journals notes as written to the outbox.
func (n *Notifier) journalQueued(ctx context.Context, notes []siobroker.Notification) error {
	if len(notes) == 0 {
		return nil
	}
	recs := make([]siobroker.JournalRecord, 0, len(notes))
	for _, note := range notes {
		recs = append(recs, n.record(note, "queued"))
	}
	if _, err := n.journal.Append(ctx, recs...); err != nil {
		return fmt.Errorf("notify: journal the notices queued: %w", err)
	}
	return nil
}

// UserBlocked writes the notices of §45 for u, blocked for a violation: to the prosecutor and to
// the management of u's organisation.
func (n *Notifier) UserBlocked(ctx context.Context, u siobroker.User, reason, by string) ([]siobroker.Notification, error) {
	subject := fmt.Sprintf("СИО ПСО: доступ пользователя %s заблокирован за нарушение (п. 45 Правил)", u.IIN)
	body := fmt.Sprintf("Пользователь: %s, ИИН %s\nОрганизация: %s\nПодразделение: %s\nДолжность: %s\nПричина блокировки: %s\n"+
		"Заблокировал: %s\nВремя: %s\n\nУведомление направлено согласно пункту 45 Правил прокурору и руководству пользователя.\n",
		u.FullName, u.IIN, u.Organisation, u.Department, u.Position, reason, by, siobroker.FormatTime(n.clock.Now()))
	return n.Notify(ctx, siobroker.NoticeUserBlocked, u.Organisation, subject, body, n.cfg.Recipients.Prosecutor, n.cfg.Recipients.Organisations[u.Organisation])
}

func (n *Notifier) record(note siobroker.Notification, event string) siobroker.JournalRecord {
	d, _ := json.Marshal(journalDetails{Event: event, ID: note.ID, Channel: note.Channel, Recipient: note.Recipient,
		Subject: note.Subject, Attempts: note.Attempts})
	return siobroker.JournalRecord{At: n.clock.Now().In(siobroker.Astana), Kind: siobroker.JournalNotification,
		Organisation: note.Organisation, Code: note.Kind, Data: d}
}

// DeliverDue delivers the notices due now, one after another, and returns how many were
// delivered and how many failed (to be tried again later).
func (n *Notifier) DeliverDue(ctx context.Context) (delivered, failed int, err error) {
	due, err := n.store.DueNotifications(ctx, n.clock.Now(), 100)
	if err != nil {
		return 0, 0, fmt.Errorf("notify: %w", err)
	}
	for _, note := range due {
		if ctx.Err() != nil {
			break
		}
		note.Attempts++
		if derr := n.deliver(ctx, note); derr != nil {
			failed++
			wait := n.backoff(note.Attempts)
			n.logger.Warn("notice not delivered; it is tried again", "id", note.ID, "channel", note.Channel, "recipient", note.Recipient,
				"attempts", note.Attempts, "retry_in", wait, "error", derr)
			if err := n.store.NotificationFailed(ctx, note.ID, note.Attempts, n.clock.Now().Add(wait), truncate(derr.Error(), 512)); err != nil {
				return delivered, failed, fmt.Errorf("notify: %w", err)
			}
			continue
		}
		first, err := n.store.NotificationDelivered(ctx, note.ID, note.Attempts, n.clock.Now())
		if err != nil {
			return delivered, failed, fmt.Errorf("notify: %w", err)
		}
		if !first {
			continue // another notifier delivered it meanwhile
		}
		delivered++
		if _, err := n.journal.Append(ctx, n.record(note, "delivered")); err != nil {
			n.logger.Error("a notice was delivered but its journal record could not be written", "id", note.ID, "error", err)
		}
	}
	return delivered, failed, nil
}

// Run delivers the due notices every interval until ctx ends.
func (n *Notifier) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := n.NotifyApplications(ctx); err != nil && ctx.Err() == nil {
			n.logger.Error("the notices of applications could not be written", "error", err)
		}
		if _, _, err := n.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			n.logger.Error("notices could not be delivered", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// backoff is the wait after the attempts-th failed attempt: RetryMin doubled each time, up to
// RetryMax.
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.cfg.RetryMin
	for i := 1; i < attempts && d < n.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, n.cfg.RetryMax)
}

func (n *Notifier) deliver(ctx context.Context, note siobroker.Notification) error {
	switch note.Channel {
	case siobroker.NoticeEmail:
		return n.mail(ctx, note)
	case siobroker.NoticeWebhook:
		return n.post(ctx, note)
	}
	return fmt.Errorf("unknown channel %q", note.Channel)
}

// webhookBody is what a webhook receives.
type webhookBody struct {
	ID           int64  `json:"id"`
	Kind         string `json:"kind"`
	Organisation string `json:"organisation"`
	Subject      string `json:"subject"`
	Body         string `json:"body"`
	CreatedAt    string `json:"createdAt"`
}

func (n *Notifier) post(ctx context.Context, note siobroker.Notification) error {
	if err := checkWebhook(note.Recipient); err != nil {
		return err
	}
	b, err := json.Marshal(webhookBody{ID: note.ID, Kind: note.Kind, Organisation: note.Organisation, Subject: note.Subject,
		Body: note.Body, CreatedAt: siobroker.FormatTime(note.CreatedAt)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, note.Recipient, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	// The id lets a receiver drop a copy: a notice whose delivery was not recorded is sent again.
	req.Header.Set("Idempotency-Key", fmt.Sprintf("sio-notice-%d", note.ID))
	resp, err := n.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", note.Recipient, err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post to %s: HTTP %d", note.Recipient, resp.StatusCode)
	}
	return nil
}

// mail sends note over SMTP, after STARTTLS, which it requires.
func (n *Notifier) mail(ctx context.Context, note siobroker.Notification) error {
	s := n.cfg.SMTP
	if s.Addr == "" {
		return errors.New("no SMTP server configured (notify.smtp.addr)")
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("notify.smtp.addr %q: %w", s.Addr, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return fmt.Errorf("smtp %s offers no STARTTLS; a notice names people and is not sent in clear", s.Addr)
	}
	tlsCfg := s.TLS
	if tlsCfg == nil {
		tlsCfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	if err := c.StartTLS(tlsCfg); err != nil {
		return fmt.Errorf("smtp %s: STARTTLS: %w", s.Addr, err)
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return fmt.Errorf("smtp %s: auth: %w", s.Addr, err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM: %w", s.Addr, err)
	}
	if err := c.Rcpt(note.Recipient); err != nil {
		return fmt.Errorf("smtp %s: RCPT TO %s: %w", s.Addr, note.Recipient, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", s.Addr, err)
	}
	if _, err := w.Write(message(s.From, note)); err != nil {
		return fmt.Errorf("smtp %s: write: %w", s.Addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: end of data: %w", s.Addr, err)
	}
	return c.Quit()
}

// message is the RFC 5322 message of note: UTF-8 text, the subject encoded as RFC 2047 words.
func message(from string, note siobroker.Notification) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <sio-notice-%d@siobroker>\r\n",
		from, note.Recipient, encodeSubject(note.Subject), note.CreatedAt.Format(time.RFC1123Z), note.ID)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(note.Body, "\r\n", "\n"), "\n", "\r\n"))
	return b.Bytes()
}

func encodeSubject(s string) string { return mime.BEncoding.Encode("utf-8", s) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
