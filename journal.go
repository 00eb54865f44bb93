package siobroker

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"
)

// ErrWriteTimeout is wrapped by the error of a write that a store or a journal did not take
// within its write timeout (store.write_timeout): another connection or process held the lock
// it needed, or the database did not answer. The write was not made, and may succeed later, so
// the broker answers SIO-UNAVAILABLE, and does not wait on that store again for the same request.
var ErrWriteTimeout = errors.New("the store did not take the write within its write timeout")

// JournalKind is what a journal record records (§37, 38, 50 of the Rules).
type JournalKind string

// The kinds of journal records.
const (
	JournalRequest  JournalKind = "request"  // a request as received: the raw signed bytes
	JournalRefusal  JournalKind = "refusal"  // a request refused with a fault: Code, and the fault in Data
	JournalExchange JournalKind = "exchange" // one service of a request: its four times and outcome, JSON in Data
	JournalReply    JournalKind = "reply"    // the signed reply as sent: the raw bytes
	JournalLate     JournalKind = "late"     // an answer that came after its wait ended: Code and JSON Data as an exchange's, with the answer
	JournalIncident JournalKind = "incident" // an incident opened, annotated or closed (§39)
	JournalReport   JournalKind = "report"   // a use of reports or of the prosecutor's export (§10, 51-53)
	JournalOperator JournalKind = "operator" // an operator's login to the dashboard or action there, allowed or refused
	JournalDelivery JournalKind = "delivery" // asynchronous replies handed to their client (getMessages), or the client's receipt of one (sendDeliveryNotification): ids and codes, JSON in Data
)

// JournalRecord is one record of the permanent journal. Records are only ever appended: the
// journal assigns Seq, PrevHash and Hash, and Hash covers every other field, so a record changed,
// removed or reordered breaks the chain from that point on.
type JournalRecord struct {
	Seq          int64
	At           time.Time // Astana time
	Kind         JournalKind
	RequestID    string // the broker's id of the request (the reply's messageId)
	MessageID    string // the client's messageId
	SignerIIN    string
	Organisation string // the signer's organisation from the user registry, where known
	Service      int    // for exchange records
	Code         string // the fault code of a refusal, or the outcome of an exchange
	Data         []byte // raw XML, or JSON details
	PrevHash     string // hex SHA-256 of the previous record; "" for the first
	Hash         string
}

// ExchangeTimes are the four times of one per-service exchange (issue: journal every dispatch and
// answer). Zero means the step did not happen.
type ExchangeTimes struct {
	Received   time.Time `json:"received"`
	Dispatched time.Time `json:"dispatched"`
	Answered   time.Time `json:"answered"`
	ReplySent  time.Time `json:"replySent"`
}

// ComputeHash returns the hash of r chained to r.PrevHash. The encoding is length-prefixed, so
// no two different records encode alike; it is fixed forever, since archives are verified with it.
func (r JournalRecord) ComputeHash() string {
	h := sha256.New()
	var n [8]byte
	writeInt := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	writeBytes := func(b []byte) {
		writeInt(int64(len(b)))
		h.Write(b)
	}
	h.Write([]byte("sio-journal-v1"))
	writeBytes([]byte(r.PrevHash))
	writeInt(r.Seq)
	writeBytes([]byte(FormatTime(r.At)))
	writeBytes([]byte(r.Kind))
	writeBytes([]byte(r.RequestID))
	writeBytes([]byte(r.MessageID))
	writeBytes([]byte(r.SignerIIN))
	writeBytes([]byte(r.Organisation))
	writeInt(int64(r.Service))
	writeBytes([]byte(r.Code))
	writeBytes(r.Data)
	return hex.EncodeToString(h.Sum(nil))
}

// JournalFilter selects records for reports and exports. Zero fields do not filter.
type JournalFilter struct {
	RequestID    string // one request's records
	Organisation string
	SignerIIN    string
	From, To     time.Time // At in [From, To)
	Service      int
	Kinds        []JournalKind
	AfterSeq     int64
	Limit        int
	// DataOf, when not empty, names the kinds whose Data the reader needs: the records of other
	// kinds come back with Data nil, so that a reader of the records' other fields (the request
	// index) does not read every reply's and exchange's body. Their Hash then no longer
	// recomputes. It selects no records.
	DataOf []JournalKind
}

// JournalWriter is the permanent journal as most services see it: records are only ever appended
// (§37, 50).
type JournalWriter interface {
	// Append assigns Seq (1, 2, ...), PrevHash (the previous record's Hash, "" for the first) and
	// Hash (rec.ComputeHash()) to each record in order, atomically and serialised against every
	// other writer — also across processes sharing one database — and returns them. At is
	// truncated to the millisecond (ComputeHash formats it with ms) and converted to Astana. A
	// record without At or Kind is refused, and then nothing is appended. Data is written as it
	// is when Append is called, and not copied: the records returned share it with recs, and a
	// caller that changes its buffer afterwards changes them (never what was journaled).
	Append(ctx context.Context, recs ...JournalRecord) ([]JournalRecord, error)
}

// OutcomeWriter appends the outcome records of requests: an exchange record per requested
// service, and a late record for an answer that came after it. Each is kept once, whatever
// crashes, retries and redeliveries repeat, so that the journal holds exactly one outcome of
// every service a request asked, and every answer once.
type OutcomeWriter interface {
	// AppendOnce is Append, except that a record of a kind IsOnceKind names is skipped when it
	// repeats one the journal holds, or an earlier record of recs (journal.SameOutcome: an
	// exchange record of the same request and service; a late record of the same answer); the
	// check and the appends are one transaction. It returns the records appended.
	AppendOnce(ctx context.Context, recs ...JournalRecord) ([]JournalRecord, error)
}

// IsOnceKind reports whether a journal keeps records of kind k once (OutcomeWriter.AppendOnce):
// exchange records once per request and service, late records once per answer.
func IsOnceKind(k JournalKind) bool { return k == JournalExchange || k == JournalLate }

// JournalReader reads the permanent journal: reports, the prosecutor's export and the archives.
type JournalReader interface {
	// Query returns the records f selects, ordered by Seq: Kinds, Organisation, SignerIIN,
	// Service, At in [From, To), Seq after AfterSeq, at most Limit. Zero fields do not filter.
	Query(ctx context.Context, f JournalFilter) ([]JournalRecord, error)
}

// Journal is a permanent journal store: the embedded SQLite one (sqlite.DB.Journal) or
// PostgreSQL (postgres.Journal). journal/journaltest holds the suite both pass.
type Journal interface {
	JournalWriter
	OutcomeWriter
	JournalReader

	// Head returns the Seq and Hash of the last record; 0 and "" when the journal is empty.
	Head(ctx context.Context) (seq int64, hash string, err error)

	// Verify recomputes the chain from the first record and returns an error naming the first
	// record (by Seq) whose hash or link is wrong, or a gap in Seq. The error wraps a
	// *journal.ChainError or an equivalent error with a BrokenSeq method. Records removed from
	// the end leave no trace in the chain itself: compare Head with a head kept elsewhere to
	// catch that.
	Verify(ctx context.Context) error
}
