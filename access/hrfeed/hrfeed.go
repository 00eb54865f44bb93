// Package hrfeed is the automatic notice of §15 of the Rules (as amended on 04.07.2024) from the
// HR systems of the bodies: "уведомление об увольнении, переводе на другую должность, отстранении
// от должности пользователя направляется автоматически". An HR system sends a feed of move,
// dismissal and suspension records, as a file dropped in a configured folder (Watcher) or by an
// HTTPS POST (Handler); both are authenticated by an HMAC-SHA256 of the feed's exact bytes under
// the key the operator shares with that HR system.
//
// A dismissal or suspension blocks the user at once (§13, §15): a block application submitted by
// "hr:SYSTEM" and applied as it is submitted. A move submits a move application with the fields
// the record changes, for the operator's decision within 24 hours (§14). A user absent from a
// feed is never touched: only an explicit dismissal blocks anyone, so a partial or truncated
// export of the HR system cannot block people by leaving them out.
package hrfeed

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/users"
)

// The record types of a feed.
const (
	Dismissal  = "dismissal"  // увольнение: blocked at once (§15)
	Suspension = "suspension" // отстранение от должности: blocked at once (§15)
	Move       = "move"       // перевод на другую должность или подразделение: a move application (§14)
)

// MoveDeadline is the time §14 gives for a move ("в течение двадцати четырех часов"): the move
// application's deadline.
const MoveDeadline = 24 * time.Hour

// MaxFeedBytes bounds a feed: read no more of a file or a request body.
const MaxFeedBytes = 1 << 20

// MaxAge is how old a feed's sent_at may be, and MaxSkew how far in the future: with the store's
// record of the feeds taken (Store.TakeHRFeed), a feed captured and sent again (its MAC still
// good) is refused, so that it cannot block again a user unblocked since.
const (
	MaxAge  = 24 * time.Hour
	MaxSkew = 5 * time.Minute
)

// Feed is the document an HR system sends (README: "The HR feed").
type Feed struct {
	System  string    `json:"system"`
	SentAt  time.Time `json:"sent_at"`
	Records []Record  `json:"records"`
}

// Record is one order of the HR system about one user.
type Record struct {
	ID        string `json:"id"`         // the HR system's id of the record, kept in the reason
	Type      string `json:"type"`       // Dismissal, Suspension or Move
	IIN       string `json:"iin"`        // the user
	Order     string `json:"order"`      // the order's number
	OrderDate string `json:"order_date"` // YYYY-MM-DD
	// For a move, the fields that change; those left empty stay as registered.
	Organisation string `json:"organisation,omitempty"`
	ERDRCode     string `json:"erdr_code,omitempty"`
	Department   string `json:"department,omitempty"`
	Position     string `json:"position,omitempty"`
	Role         int    `json:"role,omitempty"`
}

// Outcome is what became of one record.
type Outcome struct {
	RecordID    string `json:"id"`
	Type        string `json:"type"`
	IIN         string `json:"iin"`
	Application int64  `json:"application,omitempty"` // the submitted application, if one was made
	Status      string `json:"status"`                // "blocked", "submitted", "unchanged" or "failed"
	Error       string `json:"error,omitempty"`
}

// Systems are the HR systems the operator admits: name → the HMAC key shared with it.
type Systems map[string][]byte

// Verify checks mac, "sha256=HEX" (or HEX), against the HMAC-SHA256 of body under the key of
// system, in constant time.
func (s Systems) Verify(system string, body []byte, mac string) error {
	key, ok := s[system]
	if !ok || len(key) == 0 {
		return fmt.Errorf("hrfeed: %q is not a configured HR system", system)
	}
	got, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(mac), "sha256="))
	if err != nil {
		return errors.New("hrfeed: the MAC is not hex")
	}
	h := hmac.New(sha256.New, key)
	h.Write(body)
	if !hmac.Equal(got, h.Sum(nil)) {
		return fmt.Errorf("hrfeed: the MAC does not match the key of %s", system)
	}
	return nil
}

// MAC is the MAC an HR system sends with body: "sha256=" and the hex HMAC-SHA256 under key.
func MAC(key, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write(body)
	return "sha256=" + hex.EncodeToString(h.Sum(nil))
}

// Store is what the feed needs of the store (sqlite.DB): the registry's and the desk's, and the
// record of the feeds taken.
type Store interface {
	users.Store
	users.SubmittedStore
	// TakeHRFeed records a feed by its SHA-256 and reports whether it is new.
	TakeHRFeed(ctx context.Context, system, sha256 string, at time.Time) (bool, error)
}

// Processor applies authenticated feeds to the user registry.
type Processor struct {
	systems Systems
	desk    *users.Desk // MoveDeadline
	store   Store
	journal siobroker.JournalWriter
	clock   siobroker.Clock
	logger  *slog.Logger
}

// NewProcessor returns a processor for systems over the registry reg and its store, submitting
// to a desk of its own whose deadline is MoveDeadline, journaling every feed into journal.
func NewProcessor(systems Systems, store Store, reg *users.Registry, journal siobroker.JournalWriter, clock siobroker.Clock, logger *slog.Logger) (*Processor, error) {
	if len(systems) == 0 {
		return nil, errors.New("hrfeed: no HR system is configured")
	}
	if journal == nil {
		return nil, errors.New("hrfeed: a journal is required: every feed is journaled")
	}
	d, err := users.NewDesk(store, reg, MoveDeadline)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Processor{systems: systems, desk: d, store: store, journal: journal, clock: clock, logger: logger}, nil
}

// Process authenticates body as a feed of system with mac, applies its records and journals
// the feed with their outcomes, from channel ("folder:NAME" or "http"). An error is a feed
// refused as a whole (not authentic, not a feed, too old); a record that fails is in its Outcome.
func (p *Processor) Process(ctx context.Context, system string, body []byte, mac, channel string) ([]Outcome, error) {
	out, err := p.process(ctx, system, body, mac)
	p.record(ctx, system, channel, body, out, err)
	return out, err
}

func (p *Processor) process(ctx context.Context, system string, body []byte, mac string) ([]Outcome, error) {
	if len(body) > MaxFeedBytes {
		return nil, fmt.Errorf("hrfeed: a feed of %d bytes, over %d", len(body), MaxFeedBytes)
	}
	if err := p.systems.Verify(system, body, mac); err != nil {
		return nil, err
	}
	var f Feed
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("hrfeed: not a feed: %w", err)
	}
	if f.System != system {
		return nil, fmt.Errorf("hrfeed: the feed says it is of %q, authenticated as %q", f.System, system)
	}
	now := p.clock.Now()
	if f.SentAt.IsZero() || now.Sub(f.SentAt) > MaxAge || f.SentAt.Sub(now) > MaxSkew {
		return nil, fmt.Errorf("hrfeed: sent_at %s is not within %s before now: a feed is sent once, at once", siobroker.FormatTime(f.SentAt), MaxAge)
	}
	// Within that day, the store remembers every feed taken: the same bytes are taken once.
	sum := sha256.Sum256(body)
	fresh, err := p.store.TakeHRFeed(ctx, system, hex.EncodeToString(sum[:]), now)
	if err != nil {
		return nil, fmt.Errorf("hrfeed: %w", err)
	}
	if !fresh {
		return nil, errors.New("hrfeed: this feed was taken before: a feed is taken once")
	}
	out := make([]Outcome, 0, len(f.Records))
	for _, r := range f.Records {
		o := p.apply(ctx, system, r)
		if o.Error != "" {
			p.logger.WarnContext(ctx, "HR feed record failed", "system", system, "id", r.ID, "iin", r.IIN, "err", o.Error)
		}
		out = append(out, o)
	}
	return out, nil
}

// apply applies one record.
func (p *Processor) apply(ctx context.Context, system string, r Record) Outcome {
	o := Outcome{RecordID: r.ID, Type: r.Type, IIN: r.IIN, Status: "failed"}
	fail := func(format string, args ...any) Outcome {
		o.Error = fmt.Sprintf(format, args...)
		return o
	}
	if r.ID == "" || r.Order == "" || r.OrderDate == "" {
		return fail("id, order and order_date are required")
	}
	if _, err := time.Parse("2006-01-02", r.OrderDate); err != nil {
		return fail("order_date %q: want YYYY-MM-DD", r.OrderDate)
	}
	if err := siobroker.ValidateIIN(r.IIN); err != nil {
		return fail("iin %q: %v", r.IIN, err)
	}
	cur, exists, err := p.store.User(ctx, r.IIN)
	switch {
	case err != nil:
		return fail("%v", err)
	case !exists:
		return fail("user %s is not registered", r.IIN)
	}
	by := "hr:" + system
	var a siobroker.Application
	switch r.Type {
	case Dismissal, Suspension:
		if cur.Status != siobroker.UserActive {
			o.Status = "unchanged" // blocked or deleted already: nothing to do, nothing lost
			return o
		}
		what := map[string]string{Dismissal: "увольнение", Suspension: "отстранение от должности"}[r.Type]
		a = siobroker.Application{Kind: siobroker.ApplyBlock, IIN: r.IIN, By: by,
			Reason: fmt.Sprintf("§15: %s, приказ %s от %s (%s, запись %s)", what, r.Order, r.OrderDate, system, r.ID)}
	case Move:
		if cur.Status == siobroker.UserDeleted {
			return fail("user %s is deleted", r.IIN)
		}
		u := cur
		for _, f := range []struct {
			dst *string
			v   string
		}{{&u.Organisation, r.Organisation}, {&u.ERDRCode, r.ERDRCode}, {&u.Department, r.Department}, {&u.Position, r.Position}} {
			if f.v != "" {
				*f.dst = f.v
			}
		}
		if r.Role != 0 {
			u.Role = r.Role
		}
		u.ConsentAt = time.Time{} // zero keeps the recorded consent
		a = siobroker.Application{Kind: siobroker.ApplyMove, IIN: r.IIN, By: by, User: u,
			Reason: fmt.Sprintf("§14: перевод, приказ %s от %s (%s, запись %s)", r.Order, r.OrderDate, system, r.ID)}
	default:
		return fail("type %q: want %s, %s or %s", r.Type, Dismissal, Suspension, Move)
	}
	sa, err := p.desk.Submit(ctx, a)
	o.Application = sa.ID
	if err != nil {
		return fail("%v", err)
	}
	o.Status = "submitted"
	if sa.Status == siobroker.SubmittedApproved {
		o.Status = "blocked"
	}
	p.logger.InfoContext(ctx, "HR feed record applied", "system", system, "id", r.ID, "iin", r.IIN, "type", r.Type, "application", sa.ID, "status", o.Status)
	return o
}

// journalDetails are the JSON data of a feed's journal record: what came, from where, and what
// became of each record; not the feed itself, whose bytes the folder keeps.
type journalDetails struct {
	Event    string    `json:"event"`
	System   string    `json:"system"`
	Channel  string    `json:"channel"`
	SHA256   string    `json:"sha256"`
	Error    string    `json:"error,omitempty"`
	Outcomes []Outcome `json:"outcomes,omitempty"`
}

// record journals one feed. A journal that cannot be written is logged: the registry's own
// history holds the applications the feed made.
func (p *Processor) record(ctx context.Context, system, channel string, body []byte, out []Outcome, err error) {
	sum := sha256.Sum256(body)
	d := journalDetails{Event: "hr-feed", System: system, Channel: channel, SHA256: hex.EncodeToString(sum[:]), Outcomes: out}
	code := "hr-feed"
	if err != nil {
		d.Error, code = err.Error(), "hr-feed-refused"
	}
	data, _ := json.Marshal(d)
	if _, jerr := p.journal.Append(ctx, siobroker.JournalRecord{At: p.clock.Now().In(siobroker.Astana), Kind: siobroker.JournalOperator,
		Code: code, Data: data}); jerr != nil {
		p.logger.ErrorContext(ctx, "cannot journal an HR feed", "system", system, "err", jerr)
	}
}
