package broker

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/reqlog"
)

// UnauthenticatedLimits bound what the journal keeps of requests refused before their signature
// verified (before their signer is known). Anyone who can reach the endpoint can send those, and
// the journal is permanent: so such a refusal keeps the body's size, its SHA-256 digest and a
// short prefix, never the body; and only so many are journaled one by one per client and in
// total in each minute. The rest of a minute are counted, and journaled as one summary record
// per client (RefusalSummaryCode) when the minute ends.
//
// A zero field takes its default; a negative one is refused by Validate.
type UnauthenticatedLimits struct {
	// PrefixBytes is how much of the body's start a refusal keeps (cut back to whole UTF-8
	// characters); default DefaultRefusalPrefixBytes, at most MaxRefusalPrefixBytes.
	PrefixBytes int
	// PerClientPerMinute is how many refusals of one client address (an IPv6 client by its /64)
	// are journaled one by one in a minute; default DefaultUnauthenticatedPerClient.
	PerClientPerMinute int
	// TotalPerMinute is how many, of every client, are journaled one by one in a minute; default
	// DefaultUnauthenticatedTotal.
	TotalPerMinute int
}

// The defaults of UnauthenticatedLimits, and the bounds they are held to.
const (
	DefaultRefusalPrefixBytes       = 256
	MaxRefusalPrefixBytes           = 4096
	DefaultUnauthenticatedPerClient = 30
	DefaultUnauthenticatedTotal     = 300
	// MaxSummarisedClients is how many clients get a summary record of their own in a minute;
	// the refusals of any further clients are summarised together under the client "*", so that
	// an attacker with many addresses cannot make one record per address.
	MaxSummarisedClients = 100
	// refusalIDBytes bounds the messageId and senderId a refusal of an unauthenticated request
	// carries: they are the client's unsigned words, and could be as long as the body.
	refusalIDBytes = 128
	// refusalMessageBytes bounds the fault message such a refusal keeps, for the same reason.
	refusalMessageBytes = 1024
)

// RefusalSummaryCode is the Code of a refusal-summary record: the refusals of unauthenticated
// requests of one client in one minute past UnauthenticatedLimits, counted instead of journaled
// one by one. Its Data is a JSON RefusalSummary.
const RefusalSummaryCode = "SIO-REFUSALS-SUMMARISED"

// OtherClients is the client of the summary that holds the refusals of the clients past
// MaxSummarisedClients in a minute.
const OtherClients = "*"

func (l *UnauthenticatedLimits) setDefaults() {
	l.PrefixBytes = cmp.Or(l.PrefixBytes, DefaultRefusalPrefixBytes)
	l.PerClientPerMinute = cmp.Or(l.PerClientPerMinute, DefaultUnauthenticatedPerClient)
	l.TotalPerMinute = cmp.Or(l.TotalPerMinute, DefaultUnauthenticatedTotal)
}

// Validate reports what is wrong with l once its defaults are applied.
func (l UnauthenticatedLimits) Validate() error {
	l.setDefaults()
	switch {
	case l.PrefixBytes < 0 || l.PrefixBytes > MaxRefusalPrefixBytes:
		return fmt.Errorf("broker: UnauthenticatedLimits.PrefixBytes must be within 0..%d, got %d", MaxRefusalPrefixBytes, l.PrefixBytes)
	case l.PerClientPerMinute < 0 || l.TotalPerMinute < 0:
		return fmt.Errorf("broker: UnauthenticatedLimits per minute must not be negative, got %d per client, %d in total",
			l.PerClientPerMinute, l.TotalPerMinute)
	}
	return nil
}

type clientKey struct{}

// WithClient returns ctx carrying the address of the client a request came from (an IP, with or
// without its port), for the bounds of UnauthenticatedLimits. The HTTP layer sets it.
func WithClient(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientKey{}, addr)
}

// ClientOf is the client a request came from (WithClient), as the bounds count it (ClientKey).
func ClientOf(ctx context.Context) string {
	addr, _ := ctx.Value(clientKey{}).(string)
	return ClientKey(addr)
}

// ClientKey is the client of a peer address (an IP, with or without its port) as every
// per-client bound counts it, the journal's and the HTTP limits' alike: its IP without the port,
// an IPv6 address by its /64 (one subscriber's usual allocation, so that an attacker does not get
// a fresh count per address of it), "unknown" when empty.
func ClientKey(addr string) string {
	if addr == "" {
		return "unknown"
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		ap, perr := netip.ParseAddrPort(addr)
		if perr != nil {
			return truncateUTF8(addr, 64)
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// BodyDigest is what a refusal of an unauthenticated request keeps of its body: of the bytes
// read of it, all of them but for one refused as too large, which is read only past the limit.
type BodyDigest struct {
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"` // hex
	Prefix string `json:"prefix"` // the first bytes, cut back to whole UTF-8 characters
}

// bodyTap passes a request's body through, counting, digesting and keeping the first bytes of
// what is read: so that the refusal of a request that could not even be read (not XML, a
// DOCTYPE, too large) has them, without the broker keeping the body. It is read by one goroutine.
type bodyTap struct {
	r      io.Reader
	sha    hash.Hash
	n      int
	prefix []byte
	keep   int
}

func newBodyTap(r io.Reader, keep int) *bodyTap {
	return &bodyTap{r: r, sha: sha256.New(), keep: keep}
}

func (t *bodyTap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.sha.Write(p[:n])
	t.n += n
	if room := t.keep - len(t.prefix); room > 0 {
		t.prefix = append(t.prefix, p[:min(n, room)]...)
	}
	return n, err
}

// digest is what was read so far.
func (t *bodyTap) digest() BodyDigest {
	return BodyDigest{Size: t.n, SHA256: hex.EncodeToString(t.sha.Sum(nil)), Prefix: truncateUTF8(string(t.prefix), t.keep)}
}

// bodyDigest is what the refusal of seen keeps of its body: what its tap saw, or else (a request
// handed over already read) its raw bytes.
func (b *Broker) bodyDigest(seen *Request) BodyDigest {
	if seen.body != nil {
		return seen.body.digest()
	}
	sum := sha256.Sum256(seen.raw)
	return BodyDigest{Size: len(seen.raw), SHA256: hex.EncodeToString(sum[:]),
		Prefix: truncateUTF8(string(seen.raw), b.cfg.Unauthenticated.PrefixBytes)}
}

// truncateUTF8 returns at most n bytes of s, cut back to a whole UTF-8 character, with any
// invalid sequence in what is kept replaced, so that the journal's JSON keeps it as text.
func truncateUTF8(s string, n int) string {
	if len(s) > n {
		s = s[:n]
		// An incomplete character at the cut is dropped, not replaced: it is at most UTFMax-1 bytes.
		for i := 1; i < utf8.UTFMax && len(s) > 0; i++ {
			if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// RefusalSummary is the Data of a refusal-summary record.
type RefusalSummary struct {
	// Client is the client address of refusals before the signer was known; OtherClients for
	// the clients past MaxSummarisedClients. Empty in a summary of a signer's.
	Client string `json:"client,omitempty"`
	// Signer is the signer (IIN) of refusals by the per-signer limits (Config.PerSigner), counted
	// by signer; OtherClients past MaxSummarisedClients signers.
	Signer string         `json:"signer,omitempty"`
	From   time.Time      `json:"from"` // the minute the refusals were made in: [From, To)
	To     time.Time      `json:"to"`
	Count  int            `json:"count"`
	Codes  map[string]int `json:"codes"` // refusals by fault code
	Bytes  int64          `json:"bytes"` // the bodies' total size
}

// refusalBounds counts the refusals of the current minute that are journaled within
// UnauthenticatedLimits, by key: the client address of requests refused before their signer was
// known, or the signer of requests refused for its rate (bySigner). The per-client figures of
// UnauthenticatedLimits are then per signer.
type refusalBounds struct {
	bySigner  bool
	mu        sync.Mutex
	window    time.Time      // start of the current minute; zero before the first refusal
	total     int            // refusals journaled one by one in the window
	perClient map[string]int // the same by key; at most TotalPerMinute entries
	summaries map[string]*RefusalSummary
	flushing  bool // a background flush of this window is scheduled
}

// admit decides whether a refusal of key at now is journaled one by one (true), or counted into
// its key's summary. It returns the summaries of a window that has ended, to be journaled.
func (u *refusalBounds) admit(lim UnauthenticatedLimits, key string, now time.Time, code string, size int) (individual bool, closed []RefusalSummary, schedule bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	window := now.Truncate(time.Minute)
	if !window.Equal(u.window) {
		closed = u.takeSummaries()
		u.window, u.total, u.perClient = window, 0, map[string]int{}
	}
	if u.total < lim.TotalPerMinute && u.perClient[key] < lim.PerClientPerMinute {
		u.total++
		u.perClient[key]++
		return true, closed, false
	}
	if u.summaries == nil {
		u.summaries = map[string]*RefusalSummary{}
	}
	s := u.summaries[key]
	if s == nil {
		if len(u.summaries) >= MaxSummarisedClients {
			key = OtherClients
			s = u.summaries[key]
		}
		if s == nil {
			s = &RefusalSummary{Client: key, From: window, To: window.Add(time.Minute), Codes: map[string]int{}}
			if u.bySigner {
				s.Client, s.Signer = "", key
			}
			u.summaries[key] = s
		}
	}
	s.Count++
	s.Codes[code]++
	s.Bytes += int64(size)
	schedule = !u.flushing
	u.flushing = true
	return false, closed, schedule
}

// takeSummaries removes and returns the summaries of the window, ordered by key. The caller
// holds u.mu.
func (u *refusalBounds) takeSummaries() []RefusalSummary {
	out := make([]RefusalSummary, 0, len(u.summaries))
	for _, c := range slices.Sorted(maps.Keys(u.summaries)) {
		out = append(out, *u.summaries[c])
	}
	u.summaries, u.flushing = nil, false
	return out
}

// flushSummaries journals the summaries of u of a window that ended by now; with force, those of
// the current window too (at shutdown).
func (b *Broker) flushSummaries(ctx context.Context, u *refusalBounds, now time.Time, force bool) {
	u.mu.Lock()
	var closed []RefusalSummary
	if force || !now.Truncate(time.Minute).Equal(u.window) {
		closed = u.takeSummaries()
	}
	u.mu.Unlock()
	b.journalSummaries(ctx, closed)
}

// FlushRefusalSummaries journals the summaries of refusals (of unauthenticated requests, and by
// the per-signer limits) counted in a minute that has ended on the broker's clock. The broker does
// it itself at the next such refusal, a minute after the first summarised one, and at Shutdown;
// tests with a clock of their own call it.
func (b *Broker) FlushRefusalSummaries(ctx context.Context) {
	now := b.deps.Clock.Now()
	b.flushSummaries(ctx, &b.unauth, now, false)
	b.flushSummaries(ctx, &b.signerRefusals, now, false)
}

// scheduleFlush journals the window's summaries of u once it has ended on the wall clock, so that
// a flood that stops is still summarised within about a minute; at Shutdown, at once.
func (b *Broker) scheduleFlush(u *refusalBounds) {
	b.late.init()
	started := b.late.start(func() {
		// The injected clock decides what a window is; the wait is on the wall clock, and only
		// bounds how late the summary comes.
		t := time.NewTimer(time.Until(time.Now().Truncate(time.Minute).Add(time.Minute + time.Second)))
		defer t.Stop()
		force := false
		select {
		case <-b.late.ctx.Done():
			force = true
		case <-t.C:
		}
		// A clock that has not left the window (a test's) leaves the summaries to the next
		// refusal, to FlushRefusalSummaries or to Shutdown.
		b.flushSummaries(context.Background(), u, b.deps.Clock.Now(), force)
	})
	if !started {
		b.flushSummaries(context.Background(), u, b.deps.Clock.Now(), true)
	}
}

// journalSummaries appends the refusal-summary records of sums.
func (b *Broker) journalSummaries(ctx context.Context, sums []RefusalSummary) {
	for _, s := range sums {
		data, err := json.Marshal(s)
		if err != nil {
			b.deps.Logger.Error("refusal summary not encoded", "client", s.Client, "signer_iin", s.Signer, "error", err)
			continue
		}
		rec := siobroker.JournalRecord{At: b.deps.Clock.Now(), Kind: siobroker.JournalRefusal, RequestID: b.deps.NewID(),
			Code: RefusalSummaryCode, Data: data}
		if _, err := b.deps.Journal.Append(context.WithoutCancel(ctx), rec); err != nil {
			b.deps.Logger.Warn("refusal summary not journaled yet; it is appended in the background", "client", s.Client,
				"signer_iin", s.Signer, "count", s.Count, "error", err)
			b.retryInBackground("journal the refusal summary of "+s.Client+s.Signer, func(ctx context.Context) error {
				_, err := b.deps.Journal.Append(ctx, rec)
				return err
			})
		}
	}
}

// unauthenticatedRefusal is the Data of the refusal of a request whose signer is not known, and
// of one refused by its signer's rate.
type unauthenticatedRefusal struct {
	Message string `json:"message"`
	Client  string `json:"client"`
	// Body is what was read of the body; nil for a request refused before it was read
	// (RefuseUnread), which has the length it declared instead, if it declared one.
	Body          *BodyDigest `json:"body,omitempty"`
	ContentLength int64       `json:"content_length,omitempty"`
}

// RefuseUnread journals the refusal of a request refused before anything of its body was read
// (a client address over its limits, in the HTTP layer), and returns what is known of it, for
// the log. Such a request is anyone's, like one refused before its signature verified, and is
// journaled within the same bounds (UnauthenticatedLimits, by the client of ctx): one by one up
// to the client's and the total budget of the minute, the rest counted into the client's summary.
// So a flood of refusals adds to the journal no more than a flood of unsigned requests does.
// contentLength is the length the request declared, -1 if none.
func (b *Broker) RefuseUnread(ctx context.Context, cause error, contentLength int64) Request {
	seen := Request{RequestID: b.deps.NewID(), unread: true, declared: max(contentLength, 0)}
	b.journalRefusal(reqlog.With(ctx, "", seen.RequestID), seen, cause)
	return seen
}

// refuseUnauthenticated journals the refusal of a request refused before its signature verified:
// its body by size, digest and prefix, within the bounds of UnauthenticatedLimits. It reports
// whether the caller is to append rec (false: counted into a summary).
func (b *Broker) refuseUnauthenticated(ctx context.Context, seen *Request, cause error) ([]byte, bool) {
	client := ClientOf(ctx)
	code := string(siobroker.ErrorCode(cause))
	var body *BodyDigest
	size := 0
	if !seen.unread {
		d := b.bodyDigest(seen)
		body, size = &d, d.Size
	}
	individual, closed, schedule := b.unauth.admit(b.cfg.Unauthenticated, client, b.deps.Clock.Now(), code, size)
	b.journalSummaries(ctx, closed)
	if b.deps.ObserveUnauthenticated != nil {
		b.deps.ObserveUnauthenticated(siobroker.ErrorCode(cause), !individual)
	}
	if !individual {
		if schedule {
			b.scheduleFlush(&b.unauth)
		}
		b.deps.Logger.DebugContext(ctx, "refusal of an unauthenticated request counted into its client's summary",
			append(reqlog.Attrs("", seen.RequestID), "client", client, "code", code)...)
		return nil, false
	}
	// The ids are the client's unsigned words: kept, but no longer than an id can usefully be.
	seen.MessageID = truncateUTF8(seen.MessageID, refusalIDBytes)
	seen.SenderID = truncateUTF8(seen.SenderID, refusalIDBytes)
	data, _ := json.Marshal(unauthenticatedRefusal{
		Message:       truncateUTF8(siobroker.ErrorMessage(cause), refusalMessageBytes),
		Client:        client,
		Body:          body,
		ContentLength: seen.declared,
	})
	return data, true
}
