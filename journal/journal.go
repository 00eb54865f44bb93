// Package journal is the broker's permanent journal (§37, 38 and 50 of the Rules): every request,
// refusal, exchange, reply, incident and use of reports, kept for good.
//
// The journal is append-only and hash-chained. A store assigns each record its Seq (1, 2, ...),
// the previous record's Hash as PrevHash and its own Hash (siobroker.JournalRecord.ComputeHash),
// and the database refuses UPDATE and DELETE. Whoever controls the database can still bypass its
// triggers; Verify then finds the first record that was changed, removed or moved.
//
// Two implementations satisfy siobroker.Journal: the embedded SQLite store (sqlite.DB.Journal)
// and PostgreSQL (postgres.Journal). journal/journaltest holds the suite both pass. This package
// imports nothing of either, so that the broker chooses one by configuration. It also holds the
// shape of the operators' action records (operator.go), which the dashboard and the commands
// both append.
package journal

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
)

// ChainError is a break in the chain: Seq names the first record that is wrong or missing.
type ChainError struct {
	Seq     int64
	Problem string
}

func (e *ChainError) Error() string { return fmt.Sprintf("journal record %d: %s", e.Seq, e.Problem) }

// BrokenSeq returns the Seq of the first record that is wrong or missing.
func (e *ChainError) BrokenSeq() int64 { return e.Seq }

// Link prepares recs to follow the record (headSeq, headHash): it checks that each has an At and
// a Kind, truncates At to the millisecond in Astana time and assigns Seq, PrevHash and Hash. It
// returns new records and leaves recs as they are; the new records share recs' Data.
func Link(headSeq int64, headHash string, recs []siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	out := make([]siobroker.JournalRecord, len(recs))
	for i, r := range recs {
		r, err := Normalise(r)
		if err != nil {
			return nil, fmt.Errorf("journal record %d of %d: %w", i+1, len(recs), err)
		}
		r.Seq = headSeq + 1
		r.PrevHash = headHash
		r.Hash = r.ComputeHash()
		headSeq, headHash = r.Seq, r.Hash
		out[i] = r
	}
	return out, nil
}

// Normalise checks that r can be journaled and puts At in the form it is kept in: truncated to
// the millisecond, in Astana time. Data is not copied (see siobroker.JournalWriter): a journal
// writes it out before its Append returns, and copying each record's data cost 19 KB of the ~240 KB
// a one-service request allocated, twice over where a journal checked its records first.
func Normalise(r siobroker.JournalRecord) (siobroker.JournalRecord, error) {
	if r.At.IsZero() {
		return r, fmt.Errorf("%s record of request %q has no time", r.Kind, r.RequestID)
	}
	if r.Kind == "" {
		return r, fmt.Errorf("record of request %q has no kind", r.RequestID)
	}
	r.At = r.At.Truncate(time.Millisecond).In(siobroker.Astana)
	return r, nil
}

// Verifier checks a chain one record at a time, in Seq order from the first record.
type Verifier struct {
	seq  int64
	hash string
}

// Check checks that r follows the records checked before it. The first error is the break.
func (v *Verifier) Check(r siobroker.JournalRecord) error {
	switch {
	case r.Seq <= v.seq:
		return &ChainError{Seq: r.Seq, Problem: fmt.Sprintf("out of order after record %d", v.seq)}
	case r.Seq != v.seq+1:
		return &ChainError{Seq: v.seq + 1, Problem: fmt.Sprintf("missing: record %d follows record %d", r.Seq, v.seq)}
	case r.PrevHash != v.hash:
		return &ChainError{Seq: r.Seq, Problem: "link broken: its previous hash is not the hash of the record before it"}
	case r.Hash != r.ComputeHash():
		return &ChainError{Seq: r.Seq, Problem: "hash does not match its contents"}
	}
	v.seq, v.hash = r.Seq, r.Hash
	return nil
}

// Head returns the Seq and Hash of the last record checked.
func (v *Verifier) Head() (int64, string) { return v.seq, v.hash }

// CeilMilli returns the first whole millisecond at or after t. Records are kept to the
// millisecond, so At >= t exactly when At >= CeilMilli(t): filters compare with it.
func CeilMilli(t time.Time) time.Time {
	c := t.Truncate(time.Millisecond)
	if c.Before(t) {
		c = c.Add(time.Millisecond)
	}
	return c
}

// SelectSQL is the query for the records f selects, ordered by Seq, from table with columns, in
// the placeholder style mark gives (mark(1) is the first argument: "?" for SQLite, "$1" for
// PostgreSQL), and its arguments. Both stores filter alike from this one translation. With
// f.DataOf, the column named data in columns is read only for those kinds.
func SelectSQL(columns, table string, f siobroker.JournalFilter, mark func(n int) string) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return mark(len(args))
	}
	if len(f.DataOf) > 0 {
		// The data of other kinds is not read at all: SQLite leaves its overflow pages alone and
		// PostgreSQL its TOAST. NULL scans as a nil []byte in both stores.
		cols := strings.Split(columns, ",")
		for i, c := range cols {
			if strings.TrimSpace(c) == "data" {
				cols[i] = " CASE WHEN kind IN (" + kindMarks(f.DataOf, arg) + ") THEN data END AS data"
			}
		}
		columns = strings.Join(cols, ",")
	}
	if len(f.Kinds) > 0 {
		where = append(where, "kind IN ("+kindMarks(f.Kinds, arg)+")")
	}
	if f.RequestID != "" {
		where = append(where, "request_id = "+arg(f.RequestID))
	}
	if f.Organisation != "" {
		where = append(where, "organisation = "+arg(f.Organisation))
	}
	if f.SignerIIN != "" {
		where = append(where, "signer_iin = "+arg(f.SignerIIN))
	}
	if f.Service != 0 {
		where = append(where, "service = "+arg(f.Service))
	}
	// Records are kept to the millisecond: At >= t exactly when at_unix_ms >= ceil(t in ms).
	if !f.From.IsZero() {
		where = append(where, "at_unix_ms >= "+arg(CeilMilli(f.From).UnixMilli()))
	}
	if !f.To.IsZero() {
		where = append(where, "at_unix_ms < "+arg(CeilMilli(f.To).UnixMilli()))
	}
	if f.AfterSeq > 0 {
		where = append(where, "seq > "+arg(f.AfterSeq))
	}
	q := `SELECT ` + columns + ` FROM ` + table
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq`
	if f.Limit > 0 {
		q += ` LIMIT ` + arg(f.Limit)
	}
	return q, args
}

// kindMarks returns the placeholders of kinds, each added with arg, joined with commas.
func kindMarks(kinds []siobroker.JournalKind, arg func(any) string) string {
	marks := make([]string, len(kinds))
	for i, k := range kinds {
		marks[i] = arg(string(k))
	}
	return strings.Join(marks, ", ")
}

// FirstOutcomes returns recs without the records that AppendOnce skips: a record of a kind kept
// once (siobroker.IsOnceKind) that repeats one the journal holds (held returns those of its
// kind, request and service, inside the store's transaction) or an earlier record of recs. A
// repeat is SameOutcome.
func FirstOutcomes(recs []siobroker.JournalRecord, held func(siobroker.JournalRecord) ([]siobroker.JournalRecord, error)) ([]siobroker.JournalRecord, error) {
	out := make([]siobroker.JournalRecord, 0, len(recs))
	for _, r := range recs {
		if !siobroker.IsOnceKind(r.Kind) {
			out = append(out, r)
			continue
		}
		if slices.ContainsFunc(out, func(o siobroker.JournalRecord) bool { return SameOutcome(o, r) }) {
			continue
		}
		prior, err := held(r)
		if err != nil {
			return nil, fmt.Errorf("look up %s records of %s service %d: %w", r.Kind, r.RequestID, r.Service, err)
		}
		if !slices.ContainsFunc(prior, func(p siobroker.JournalRecord) bool { return SameOutcome(p, r) }) {
			out = append(out, r)
		}
	}
	return out, nil
}

// SameOutcome reports whether b repeats a: the same kind, request and service, and, for late
// records, the same answer (the answerDigest of their data). A service has one exchange record;
// it may have several late ones, one per distinct answer that came after it (two adapter
// processes that answered one request differently, without a shared ledger).
func SameOutcome(a, b siobroker.JournalRecord) bool {
	if a.Kind != b.Kind || a.RequestID != b.RequestID || a.Service != b.Service {
		return false
	}
	if a.Kind != siobroker.JournalLate {
		return true
	}
	return answerDigestOf(a.Data) == answerDigestOf(b.Data)
}

// answerDigestOf is the answerDigest of a late record's data; "" when it has none.
func answerDigestOf(data []byte) string {
	var d struct {
		AnswerDigest string `json:"answerDigest"`
	}
	_ = json.Unmarshal(data, &d)
	return d.AnswerDigest
}
