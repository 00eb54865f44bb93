package siobroker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// The request index: one entry per request a user made, with what the departmental control of
// §9–10 of the Rules checks (basis, case, subject, services, outcome, who and when), derived from
// the permanent journal. The journal stays the one record (§37, 50): the index holds nothing the
// journal does not, is written by nobody on a request's path, and can be dropped and rebuilt from
// the journal at any time (operator/reports.Indexer, `siobroker journal reindex`). It lives in the
// store the journal uses, so that a report reads one database.

// RequestOutcome is what became of a request, as a report shows it.
type RequestOutcome string

// The outcomes of a request. A request's services each end ok, denied, error or timeout
// (ResultStatus); the outcome sums them up.
const (
	// RequestPending: neither refused nor answered yet, or answered without some services that
	// the broker is still waiting for (their outcome is journaled when their wait ends).
	RequestPending RequestOutcome = "pending"
	// RequestAnswered: every service answered ok, with data or without (NO_DATA).
	RequestAnswered RequestOutcome = "answered"
	// RequestPartial: some services answered ok, the others were denied, failed or timed out.
	RequestPartial RequestOutcome = "partial"
	// RequestDenied: no service answered; every one was denied (Appendix 2).
	RequestDenied RequestOutcome = "denied"
	// RequestFailed: no service answered, and at least one failed or timed out.
	RequestFailed RequestOutcome = "failed"
	// RequestRefused: the request was refused with a fault (RequestEntry.Code), and not answered.
	RequestRefused RequestOutcome = "refused"
)

// RequestOutcomes lists every outcome, in the order reports show them.
var RequestOutcomes = []RequestOutcome{RequestAnswered, RequestPartial, RequestDenied, RequestFailed, RequestRefused, RequestPending}

// Valid reports whether o is one of RequestOutcomes.
func (o RequestOutcome) Valid() bool { return slices.Contains(RequestOutcomes, o) }

// ServiceOutcome is how one requested service ended: its exchange record's status and reason.
type ServiceOutcome struct {
	Service int
	Status  ResultStatus
	Reason  string
}

// RequestEntry is one request in the request index.
type RequestEntry struct {
	RequestID string
	// Seq is the journal record the entry was opened by: the request record, or the refusal
	// of a request refused before it was journaled. LastSeq is the last record folded into it.
	Seq, LastSeq int64
	At           time.Time // when the request was received (its first record)
	MessageID    string
	SignerIIN    string
	// SignerName, Organisation, ERDRCode and Department are the signer's in the user registry
	// at the time of the request (its applications' history), not as the user is now.
	SignerName   string
	Organisation string
	ERDRCode     string
	Department   string
	// Basis, Case, Article, Subject, Services and Purpose are the request's query as signed;
	// Basis is 0 when the journaled request holds no query that could be read (Note says why).
	Basis    Basis
	Case     string // the case reference as one text (CaseText)
	Article  string
	Subject  Subject
	Services []int
	Purpose  string
	// ServiceOutcomes are the outcomes journaled so far, in the order they were journaled.
	ServiceOutcomes []ServiceOutcome
	RepliedAt       time.Time // when the reply was journaled; zero: not yet
	Code            string    // the code of the fault the request was refused with, if any
	Outcome         RequestOutcome
	Note            string
}

// Settle sets e.Outcome from what the entry holds. A reply, or an outcome for every service,
// decides it from the services, even after a refusal: a synchronous request refused
// SIO-UNAVAILABLE because its reply could not be journaled is completed by the broker, and its
// client fetches the answer. Otherwise a refusal makes it refused, and else it is pending.
func (e *RequestEntry) Settle() {
	complete := len(e.Services) > 0
	for _, s := range e.Services {
		if _, ok := e.serviceOutcome(s); !ok {
			complete = false
		}
	}
	switch {
	case complete || (!e.RepliedAt.IsZero() && len(e.Services) > 0):
		e.Outcome = servicesOutcome(e)
	case !e.RepliedAt.IsZero():
		e.Outcome = RequestAnswered
	case e.Code != "":
		e.Outcome = RequestRefused
	default:
		e.Outcome = RequestPending
	}
}

func servicesOutcome(e *RequestEntry) RequestOutcome {
	ok, denied, failed := 0, 0, 0
	for _, s := range e.Services {
		o, found := e.serviceOutcome(s)
		switch {
		case !found:
			return RequestPending
		case o.Status == StatusOK:
			ok++
		case o.Status == StatusDenied:
			denied++
		default:
			failed++
		}
	}
	switch {
	case ok == len(e.Services):
		return RequestAnswered
	case ok > 0:
		return RequestPartial
	case failed == 0:
		return RequestDenied
	}
	return RequestFailed
}

// serviceOutcome returns the outcome journaled for service s: the first, as the journal keeps one
// (OutcomeWriter).
func (e *RequestEntry) serviceOutcome(s int) (ServiceOutcome, bool) {
	for _, o := range e.ServiceOutcomes {
		if o.Service == s {
			return o, true
		}
	}
	return ServiceOutcome{}, false
}

// CaseText writes a case reference as one text: the number, then the §22 and §25 fields the
// sender gave, each named.
func CaseText(c CaseRef) string {
	parts := []string{c.Number}
	for _, f := range []struct{ name, v string }{
		{"instruction", c.InstructionNo}, {"requesting body", c.RequestingBody}, {"covering letter", c.CoveringLetterNo},
		{"year", c.Year}, {"court", c.Court},
	} {
		if f.v != "" {
			parts = append(parts, f.name+" "+f.v)
		}
	}
	return strings.Join(parts, "; ")
}

// RequestFilter selects entries of the request index. Zero fields do not filter.
type RequestFilter struct {
	From, To time.Time // At in [From, To)
	// ERDRCode selects one organisation by its ЕРДР code. With ERDRCode "", Organisation
	// selects the entries of users who had no ЕРДР code, by the organisation's name: the scope
	// of a caller who has none.
	ERDRCode     string
	Organisation string
	Department   string
	SignerIIN    string
	Basis        Basis
	Service      int // entries that asked for this service
	Outcome      RequestOutcome
	// ThroughSeq, when positive, selects entries opened at or before that journal record: the
	// index as it stood when a report began.
	ThroughSeq int64
}

// Match reports whether e is selected by f: the rule the stores' queries implement, and what a
// report checks every entry it is given against.
func (f RequestFilter) Match(e RequestEntry) bool {
	switch {
	case !f.From.IsZero() && e.At.Before(f.From),
		!f.To.IsZero() && !e.At.Before(f.To),
		f.ERDRCode != "" && e.ERDRCode != f.ERDRCode,
		f.ERDRCode == "" && f.Organisation != "" && (e.ERDRCode != "" || e.Organisation != f.Organisation),
		f.Department != "" && e.Department != f.Department,
		f.SignerIIN != "" && e.SignerIIN != f.SignerIIN,
		f.Basis != 0 && e.Basis != f.Basis,
		f.Service != 0 && !slices.Contains(e.Services, f.Service),
		f.Outcome != "" && e.Outcome != f.Outcome,
		f.ThroughSeq > 0 && e.Seq > f.ThroughSeq:
		return false
	}
	return true
}

// RequestSummary is one row of the monthly summary (§10: control at least once a month): the
// requests of one department of one organisation in one month, by outcome.
type RequestSummary struct {
	Month        string // YYYY-MM, Astana time
	ERDRCode     string
	Organisation string // the name the organisation's entries of the month carry (the greatest, if several)
	Department   string
	Requests     int
	Answered     int
	Partial      int
	Denied       int
	Failed       int
	Refused      int
	Pending      int
}

// Count adds one request of outcome o to s.
func (s *RequestSummary) Count(o RequestOutcome) {
	s.Requests++
	switch o {
	case RequestAnswered:
		s.Answered++
	case RequestPartial:
		s.Partial++
	case RequestDenied:
		s.Denied++
	case RequestFailed:
		s.Failed++
	case RequestRefused:
		s.Refused++
	default:
		s.Pending++
	}
}

// MonthOf is the month of t in Astana time, as RequestSummary.Month writes it.
func MonthOf(t time.Time) string { return t.In(Astana).Format("2006-01") }

// ErrIndexMoved is returned by PutRequestEntries when the index was moved on by another indexer
// since it was read: the batch is not written, and the indexer starts again from the new mark.
var ErrIndexMoved = errors.New("the request index was moved on by another indexer")

// RequestIndexReader reads the request index: reports.
type RequestIndexReader interface {
	// ScanRequests calls total once with the number of entries f selects, then row with each of
	// them, ordered by At then Seq, all read from one snapshot of the index. An error of total
	// or row ends the scan and is returned. Entries are streamed: a store holds only a few at a
	// time, whatever the count.
	ScanRequests(ctx context.Context, f RequestFilter, total func(n int) error, row func(RequestEntry) error) error
	// SummariseRequests calls row with the RequestSummary of each month, ЕРДР code and
	// department among the entries f selects, ordered by month, code, then department.
	SummariseRequests(ctx context.Context, f RequestFilter, row func(RequestSummary) error) error
}

// RequestIndexWriter keeps the request index: the indexer, which alone writes it.
type RequestIndexWriter interface {
	// IndexedThrough returns the journal record up to which every record has been folded into
	// the index (its mark); 0 for an empty index.
	IndexedThrough(ctx context.Context) (int64, error)
	// RequestEntries returns the entries of the request ids given that the index holds.
	RequestEntries(ctx context.Context, requestIDs []string) ([]RequestEntry, error)
	// PutRequestEntries writes entries (each replacing the one of its RequestID) and moves the
	// mark from from to through, in one transaction, if the mark is still from; otherwise it
	// writes nothing and returns an error wrapping ErrIndexMoved.
	PutRequestEntries(ctx context.Context, from, through int64, entries []RequestEntry) error
	// ResetRequestIndex empties the index and sets its mark to 0, for a rebuild.
	ResetRequestIndex(ctx context.Context) error
}

// RequestIndex is a request index store: the embedded store's (sqlite.DB) beside its journal, or
// PostgreSQL's (postgres.Journal) beside that journal. journal/journaltest holds the suite both
// pass.
type RequestIndex interface {
	RequestIndexReader
	RequestIndexWriter
}
