package reports

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/pace"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// The request index (siobroker.RequestIndex) is what reports read: one entry per request with its
// basis, case, subject, services, outcome, signer and department. The Indexer derives it from the
// journal, and from nothing else, by folding the journal's records into it in Seq order:
//
//   - It is written by nobody on a request's path. The broker journals as it always did; the index
//     follows the journal, here and in every process sharing the journal, within seconds (the
//     broker's background catch-up), and a report first brings it up to the journal's end. A store
//     that cannot take the index's writes therefore never delays, refuses or loses a request: the
//     index only falls behind, a report says so and is refused rather than delivered incomplete,
//     and the next catch-up resumes from the index's mark.
//   - It is rebuilt from the journal alone (Rebuild, `siobroker journal reindex`), so a journal
//     older than the index gets reports too, and an index in doubt is simply rebuilt.
//   - The query is read from the journaled request (soap.JournaledQuery), and the signer's name,
//     organisation, ЕРДР code and department from the user registry's history of applications as
//     it stood at the request's time, so a rebuild gives the same entries as the live index did.

// UserHistory is what the indexer reads of the user registry: the applications of a user, whose
// register and move applications carry the user's fields as they became (sqlite.DB implements
// it), and the user as registered now, for a user whose history does not go back far enough.
type UserHistory interface {
	Applications(ctx context.Context, iin string) ([]siobroker.Application, error)
	User(ctx context.Context, iin string) (siobroker.User, bool, error)
}

// dataKinds are the journal records whose Data the index reads: a request's query, a refusal's
// request. Of an exchange it reads the code and the service, of a reply the time, and the other
// kinds it passes over (fold), so their bodies are not read at all.
//
// The batch is read without a filter of kinds: those the index folds are nearly every record of
// the journal, and SQLite, asked for four kinds in Seq order, read every record of them after the
// mark (through its index of kinds) to sort them, not just the batch.
var dataKinds = []siobroker.JournalKind{siobroker.JournalRequest, siobroker.JournalRefusal}

// journaledQuery reads the query of a journaled request. The tests compare it with the reading of
// the whole tree on every request they journal.
var journaledQuery = soap.JournaledQuery

// hintedQuery takes the hint of a journaled request's query. The tests compare every hint taken
// with the reading of the journaled envelope.
var hintedQuery = func(h *QueryHints, r siobroker.JournalRecord) (siobroker.Query, bool) {
	return h.take(r.RequestID, len(r.Data))
}

// DefaultIndexBatch is how many journal records the indexer folds in one transaction of the index.
const DefaultIndexBatch = 500

// DefaultPacedBatch is IndexerConfig.PacedBatch when it is zero. The index's write of a batch
// holds the store's turn to write, and the requests' writes queued meanwhile wait for it: a
// hundred records (about 35 requests' entries) keep that wait to a few milliseconds, where 500
// made the commits of the requests in flight wait tens of them every catch-up (issue 20).
const DefaultPacedBatch = 100

// IndexerConfig holds the settings of an Indexer.
type IndexerConfig struct {
	// Limits bound the reading of a journaled request (soap.JournaledQuery raises the size to the
	// request's own).
	Limits soap.Limits
	// Batch is how many journal records are folded per write of the index; 0 is
	// DefaultIndexBatch.
	Batch int
	// PacedBatch is Batch for CatchUpPaced, the background catch-up beside the requests; 0 is
	// DefaultPacedBatch.
	PacedBatch int
	// PacedShare is the share of the wall time CatchUpPaced spends working: it rests after each
	// batch (see internal/pace). Zero: it never rests.
	PacedShare float64
	// Hints are the queries of the requests this process journals, which the index folds without
	// reading the journaled envelopes again (QueryHints); nil: it reads every one.
	Hints *QueryHints
}

// Indexer folds the journal into the request index. It is safe for concurrent use: one batch
// runs at a time in a process (catch-ups take turns batch by batch, each from the mark the one
// before left), and indexers of several processes sharing one index take turns through its mark
// (siobroker.ErrIndexMoved).
type Indexer struct {
	cfg     IndexerConfig
	journal siobroker.JournalReader
	index   siobroker.RequestIndex
	users   UserHistory
	logger  *slog.Logger
	mu      sync.Mutex
}

// NewIndexer returns an Indexer; journal, index and users are required, a nil logger discards.
func NewIndexer(cfg IndexerConfig, journal siobroker.JournalReader, index siobroker.RequestIndex, users UserHistory, logger *slog.Logger) (*Indexer, error) {
	var errs []error
	if journal == nil {
		errs = append(errs, errors.New("reports: NewIndexer: journal is required"))
	}
	if index == nil {
		errs = append(errs, errors.New("reports: NewIndexer: index is required"))
	}
	if users == nil {
		errs = append(errs, errors.New("reports: NewIndexer: users is required"))
	}
	if cfg.Batch < 0 {
		errs = append(errs, fmt.Errorf("reports: IndexerConfig.Batch must not be negative, got %d", cfg.Batch))
	}
	if cfg.PacedBatch < 0 {
		errs = append(errs, fmt.Errorf("reports: IndexerConfig.PacedBatch must not be negative, got %d", cfg.PacedBatch))
	}
	if err := pace.Check(cfg.PacedShare); err != nil {
		errs = append(errs, fmt.Errorf("reports: IndexerConfig.PacedShare: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultIndexBatch
	}
	if cfg.PacedBatch == 0 {
		cfg.PacedBatch = DefaultPacedBatch
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Indexer{cfg: cfg, journal: journal, index: index, users: users, logger: logger}, nil
}

// CatchUp folds the journal's records after the index's mark into the index, a batch at a time,
// until it reaches the journal's end or has folded max records (max 0: no bound). It returns the
// mark reached and whether the index is caught up with the journal as it was read last.
func (x *Indexer) CatchUp(ctx context.Context, max int) (through int64, done bool, err error) {
	return x.catchUp(ctx, max, x.cfg.Batch, nil)
}

// CatchUpPaced is CatchUp for the broker's background catch-up: in batches of
// IndexerConfig.PacedBatch records, resting after each to work IndexerConfig.PacedShare of the
// time. A report waiting for the index catches up at once (CatchUp).
func (x *Indexer) CatchUpPaced(ctx context.Context, max int) (through int64, done bool, err error) {
	var pacer *pace.Pacer
	if x.cfg.PacedShare > 0 {
		if pacer, err = pace.New(x.cfg.PacedShare); err != nil {
			return 0, false, fmt.Errorf("reports: %w", err)
		}
	}
	return x.catchUp(ctx, max, x.cfg.PacedBatch, pacer)
}

// catchUp is CatchUp in batches of size records, resting with pacer (nil: never) after each.
func (x *Indexer) catchUp(ctx context.Context, max, size int, pacer *pace.Pacer) (through int64, done bool, err error) {
	users := newUserCache(x.users)
	folded := 0
	for {
		if err := ctx.Err(); err != nil {
			return through, false, err
		}
		if max > 0 && folded >= max {
			return through, false, nil
		}
		// A batch at a time, not the whole catch-up, so that a report's catch-up goes in between
		// the background's batches instead of waiting out its rests.
		x.mu.Lock()
		pacer.Begin() // the wait for a report's catch-up is not this job's work
		var n int
		through, n, err = x.batch(ctx, users, size)
		x.mu.Unlock()
		switch {
		case errors.Is(err, siobroker.ErrIndexMoved):
			// Another process's indexer folded this batch first: go on from its mark.
			continue
		case err != nil:
			return through, false, err
		case n < size:
			return through, true, nil
		}
		folded += n
		if err := pacer.Rest(ctx); err != nil {
			return through, false, err
		}
	}
}

// Rebuild empties the index and folds the whole journal into it again. progress, when not nil,
// is told the mark after every batch.
func (x *Indexer) Rebuild(ctx context.Context, progress func(through int64)) (int64, error) {
	x.mu.Lock()
	err := x.index.ResetRequestIndex(ctx)
	x.mu.Unlock()
	if err != nil {
		return 0, err
	}
	for {
		through, done, err := x.CatchUp(ctx, 50*x.cfg.Batch)
		if err != nil {
			return through, err
		}
		if progress != nil {
			progress(through)
		}
		if done {
			return through, nil
		}
	}
}

// batch folds the next batch of journal records into the index. It returns the mark after it and
// the number of journal records read (fewer than size: the journal's end was reached).
func (x *Indexer) batch(ctx context.Context, users *userCache, size int) (int64, int, error) {
	from, err := x.index.IndexedThrough(ctx)
	if err != nil {
		return 0, 0, err
	}
	recs, err := x.journal.Query(ctx, siobroker.JournalFilter{AfterSeq: from, Limit: size, DataOf: dataKinds})
	if err != nil {
		return from, 0, fmt.Errorf("read the journal after record %d: %w", from, err)
	}
	if len(recs) == 0 {
		return from, 0, nil
	}
	var ids []string
	for _, r := range recs {
		if r.RequestID != "" && !slices.Contains(ids, r.RequestID) {
			ids = append(ids, r.RequestID)
		}
	}
	held, err := x.index.RequestEntries(ctx, ids)
	if err != nil {
		return from, 0, err
	}
	f := folder{x: x, users: users, entries: map[string]*siobroker.RequestEntry{}}
	for i := range held {
		f.entries[held[i].RequestID] = &held[i]
	}
	for _, r := range recs {
		if err := f.fold(ctx, r); err != nil {
			return from, 0, fmt.Errorf("fold journal record %d: %w", r.Seq, err)
		}
	}
	through := recs[len(recs)-1].Seq
	if err := x.index.PutRequestEntries(ctx, from, through, f.changed()); err != nil {
		return from, 0, err
	}
	return through, len(recs), nil
}

// folder folds one batch's records into the entries they concern.
type folder struct {
	x       *Indexer
	users   *userCache
	entries map[string]*siobroker.RequestEntry // held and new, by request id
	touched []string
}

func (f *folder) touch(e *siobroker.RequestEntry, r siobroker.JournalRecord) {
	e.LastSeq = max(e.LastSeq, r.Seq)
	e.Settle()
	if !slices.Contains(f.touched, e.RequestID) {
		f.touched = append(f.touched, e.RequestID)
	}
}

func (f *folder) changed() []siobroker.RequestEntry {
	out := make([]siobroker.RequestEntry, 0, len(f.touched))
	for _, id := range f.touched {
		out = append(out, *f.entries[id])
	}
	return out
}

// refusalData is the Data of a refusal record (broker.journalRefusal): its message, and the raw
// request when no request record holds it.
type refusalData struct {
	Message string `json:"message"`
	Request []byte `json:"request"`
}

func (f *folder) fold(ctx context.Context, r siobroker.JournalRecord) error {
	e := f.entries[r.RequestID]
	switch r.Kind {
	case siobroker.JournalRequest:
		if e == nil {
			var err error
			if e, err = f.open(ctx, r); err != nil {
				return err
			}
		}
		if e.Basis == 0 {
			if q, ok := hintedQuery(f.x.cfg.Hints, r); ok {
				f.setQuery(e, q, nil)
			} else {
				f.readQuery(e, r.Data)
			}
		}
	case siobroker.JournalRefusal:
		// A refusal before the signature verified has no signer: it is anyone's, not a user's
		// request. One without a request record is a user's request only when it carries a query.
		if e == nil {
			var d refusalData
			if r.SignerIIN == "" || json.Unmarshal(r.Data, &d) != nil || len(d.Request) == 0 {
				return nil
			}
			q, err := journaledQuery(d.Request, f.x.cfg.Limits)
			if errors.Is(err, soap.ErrNoQuery) {
				return nil // a status or fetch query of the asynchronous channel, a report request
			}
			if e, err = f.open(ctx, r); err != nil {
				return err
			}
			f.setQuery(e, q, err)
		}
		e.Code = r.Code
	case siobroker.JournalExchange:
		if e == nil {
			return nil
		}
		status, reason, _ := strings.Cut(r.Code, "/")
		if !slices.ContainsFunc(e.ServiceOutcomes, func(o siobroker.ServiceOutcome) bool { return o.Service == r.Service }) {
			e.ServiceOutcomes = append(e.ServiceOutcomes, siobroker.ServiceOutcome{Service: r.Service, Status: siobroker.ResultStatus(status), Reason: reason})
		}
	case siobroker.JournalReply:
		if e == nil {
			return nil
		}
		if e.RepliedAt.IsZero() {
			e.RepliedAt = r.At
		}
	default:
		return nil
	}
	f.touch(e, r)
	return nil
}

// open starts the entry of the request whose first record is r, with its signer as the user
// registry knew the signer at the time.
func (f *folder) open(ctx context.Context, r siobroker.JournalRecord) (*siobroker.RequestEntry, error) {
	e := &siobroker.RequestEntry{RequestID: r.RequestID, Seq: r.Seq, At: r.At, MessageID: r.MessageID,
		SignerIIN: r.SignerIIN, Organisation: r.Organisation}
	if r.SignerIIN != "" {
		u, ok, err := f.users.at(ctx, r.SignerIIN, r.At)
		if err != nil {
			return nil, err
		}
		if ok {
			e.SignerName, e.ERDRCode, e.Department = u.FullName, u.ERDRCode, u.Department
			e.Organisation = cmp.Or(u.Organisation, r.Organisation)
		}
	}
	f.entries[r.RequestID] = e
	return e, nil
}

func (f *folder) readQuery(e *siobroker.RequestEntry, raw []byte) {
	q, err := journaledQuery(raw, f.x.cfg.Limits)
	f.setQuery(e, q, err)
}

func (f *folder) setQuery(e *siobroker.RequestEntry, q siobroker.Query, err error) {
	if err != nil {
		e.Note = "the query could not be read from the journaled request: " + err.Error()
		f.x.logger.Warn("request index: a journaled request's query could not be read", "request_id", e.RequestID, "seq", e.Seq, "error", err)
		return
	}
	e.Basis, e.Case, e.Article, e.Subject, e.Services, e.Purpose = q.Basis, siobroker.CaseText(q.Case), q.Article, q.Subject, q.Services, q.Purpose
	e.Note = ""
}

// userCache holds the register and move applications of the users one catch-up met, so that a
// user's history is read once per catch-up.
type userCache struct {
	users UserHistory
	by    map[string][]siobroker.Application
}

func newUserCache(u UserHistory) *userCache {
	return &userCache{users: u, by: map[string][]siobroker.Application{}}
}

// at returns user iin as the registry had the user at t: the fields of the last register or move
// application applied by then; else, for a user registered before the registry kept its history
// or after the request (whose records came from elsewhere), the user as registered now.
func (c *userCache) at(ctx context.Context, iin string, t time.Time) (siobroker.User, bool, error) {
	apps, ok := c.by[iin]
	if !ok {
		all, err := c.users.Applications(ctx, iin)
		if err != nil {
			return siobroker.User{}, false, fmt.Errorf("the registry's history of user %s: %w", iin, err)
		}
		for _, a := range all {
			if a.Kind == siobroker.ApplyRegister || a.Kind == siobroker.ApplyMove {
				apps = append(apps, a)
			}
		}
		c.by[iin] = apps
	}
	for i := len(apps) - 1; i >= 0; i-- {
		if !apps[i].At.After(t) {
			return apps[i].User, true, nil
		}
	}
	u, ok, err := c.users.User(ctx, iin)
	if err != nil {
		return siobroker.User{}, false, fmt.Errorf("the registry's user %s: %w", iin, err)
	}
	return u, ok, nil
}
