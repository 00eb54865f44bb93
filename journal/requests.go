package journal

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
)

// The request index's table, shared by the SQLite and PostgreSQL stores: its columns, how an
// entry's lists are kept in them, and the queries of a report and of the monthly summary. Both
// stores keep the same columns under the same names, so that one query serves both.

// RequestColumns are the request index's columns, in the order RequestArgs gives their values
// and a store scans them (RequestScan).
const RequestColumns = `request_id, seq, last_seq, at_unix_ms, month, message_id, signer_iin, signer_name,
	organisation, erdr_code, department, basis, case_ref, article, subject_iin, subject_bin, services,
	service_outcomes, purpose, replied_unix_ms, code, outcome, note`

// RequestColumnCount is the number of RequestColumns.
const RequestColumnCount = 23

// RequestArgs returns the column values of e, in the order of RequestColumns.
func RequestArgs(e siobroker.RequestEntry) []any {
	var replied int64
	if !e.RepliedAt.IsZero() {
		replied = e.RepliedAt.UnixMilli()
	}
	return []any{e.RequestID, e.Seq, e.LastSeq, e.At.UnixMilli(), siobroker.MonthOf(e.At), e.MessageID, e.SignerIIN,
		e.SignerName, e.Organisation, e.ERDRCode, e.Department, int(e.Basis), e.Case, e.Article, e.Subject.IIN, e.Subject.BIN,
		EncodeServices(e.Services), EncodeServiceOutcomes(e.ServiceOutcomes), e.Purpose, replied, e.Code, string(e.Outcome), e.Note}
}

// RequestRow holds the scanned columns of one entry; Targets are the destinations to scan into,
// in the order of RequestColumns, and Entry the entry they make.
type RequestRow struct {
	e                                  siobroker.RequestEntry
	at, replied                        int64
	month, services, outcomes, outcome string
	basis                              int
	subjectIIN, subjectBIN             string
}

// Targets returns the scan destinations of RequestColumns.
func (r *RequestRow) Targets() []any {
	e := &r.e
	return []any{&e.RequestID, &e.Seq, &e.LastSeq, &r.at, &r.month, &e.MessageID, &e.SignerIIN, &e.SignerName,
		&e.Organisation, &e.ERDRCode, &e.Department, &r.basis, &e.Case, &e.Article, &r.subjectIIN, &r.subjectBIN,
		&r.services, &r.outcomes, &e.Purpose, &r.replied, &e.Code, &r.outcome, &e.Note}
}

// Entry returns the entry of the columns last scanned.
func (r *RequestRow) Entry() (siobroker.RequestEntry, error) {
	e := r.e
	e.At = time.UnixMilli(r.at).In(siobroker.Astana)
	if r.replied != 0 {
		e.RepliedAt = time.UnixMilli(r.replied).In(siobroker.Astana)
	} else {
		e.RepliedAt = time.Time{}
	}
	e.Basis = siobroker.Basis(r.basis)
	e.Subject = siobroker.Subject{IIN: r.subjectIIN, BIN: r.subjectBIN}
	e.Outcome = siobroker.RequestOutcome(r.outcome)
	var err error
	if e.Services, err = DecodeServices(r.services); err != nil {
		return e, fmt.Errorf("request %s: %w", e.RequestID, err)
	}
	if e.ServiceOutcomes, err = DecodeServiceOutcomes(r.outcomes); err != nil {
		return e, fmt.Errorf("request %s: %w", e.RequestID, err)
	}
	return e, nil
}

// EncodeServices keeps a list of services as ",1,5,93,": a filter by service is then a LIKE of
// ",5,", which both databases run alike. An empty list is "".
func EncodeServices(s []int) string {
	if len(s) == 0 {
		return ""
	}
	var b strings.Builder
	for _, n := range s {
		b.WriteByte(',')
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteByte(',')
	return b.String()
}

// DecodeServices reads what EncodeServices wrote.
func DecodeServices(s string) ([]int, error) {
	s = strings.Trim(s, ",")
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("services %q: %w", s, err)
		}
		out[i] = n
	}
	return out, nil
}

// EncodeServiceOutcomes keeps outcomes as "1:ok/OK;5:denied/DENIED_BASIS", the exchange records'
// codes after their service.
func EncodeServiceOutcomes(os []siobroker.ServiceOutcome) string {
	var b strings.Builder
	for i, o := range os {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(strconv.Itoa(o.Service))
		b.WriteByte(':')
		b.WriteString(string(o.Status))
		b.WriteByte('/')
		b.WriteString(o.Reason)
	}
	return b.String()
}

// DecodeServiceOutcomes reads what EncodeServiceOutcomes wrote.
func DecodeServiceOutcomes(s string) ([]siobroker.ServiceOutcome, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ";")
	out := make([]siobroker.ServiceOutcome, len(parts))
	for i, p := range parts {
		no, code, ok := strings.Cut(p, ":")
		n, err := strconv.Atoi(no)
		if !ok || err != nil {
			return nil, fmt.Errorf("service outcomes %q: bad item %q", s, p)
		}
		status, reason, _ := strings.Cut(code, "/")
		out[i] = siobroker.ServiceOutcome{Service: n, Status: siobroker.ResultStatus(status), Reason: reason}
	}
	return out, nil
}

// requestWhere is the WHERE clause (with " WHERE ", or "") of the entries f selects, its
// arguments appended to args in the placeholder style of mark.
func requestWhere(f siobroker.RequestFilter, args *[]any, mark func(n int) string) string {
	var where []string
	arg := func(v any) string {
		*args = append(*args, v)
		return mark(len(*args))
	}
	// Entries are kept to the millisecond, as the journal's records.
	if !f.From.IsZero() {
		where = append(where, "at_unix_ms >= "+arg(CeilMilli(f.From).UnixMilli()))
	}
	if !f.To.IsZero() {
		where = append(where, "at_unix_ms < "+arg(CeilMilli(f.To).UnixMilli()))
	}
	switch {
	case f.ERDRCode != "":
		where = append(where, "erdr_code = "+arg(f.ERDRCode))
	case f.Organisation != "":
		where = append(where, "erdr_code = '' AND organisation = "+arg(f.Organisation))
	}
	if f.Department != "" {
		where = append(where, "department = "+arg(f.Department))
	}
	if f.SignerIIN != "" {
		where = append(where, "signer_iin = "+arg(f.SignerIIN))
	}
	if f.Basis != 0 {
		where = append(where, "basis = "+arg(int(f.Basis)))
	}
	if f.Service != 0 {
		where = append(where, "services LIKE "+arg("%,"+strconv.Itoa(f.Service)+",%"))
	}
	if f.Outcome != "" {
		where = append(where, "outcome = "+arg(string(f.Outcome)))
	}
	if f.ThroughSeq > 0 {
		where = append(where, "seq <= "+arg(f.ThroughSeq))
	}
	if len(where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(where, " AND ")
}

// RequestCountSQL counts the entries f selects in table.
func RequestCountSQL(table string, f siobroker.RequestFilter, mark func(n int) string) (string, []any) {
	var args []any
	return `SELECT count(*) FROM ` + table + requestWhere(f, &args, mark), args
}

// RequestSelectSQL selects the entries f selects in table, ordered by time, then Seq.
func RequestSelectSQL(table string, f siobroker.RequestFilter, mark func(n int) string) (string, []any) {
	var args []any
	return `SELECT ` + RequestColumns + ` FROM ` + table + requestWhere(f, &args, mark) + ` ORDER BY at_unix_ms, seq`, args
}

// RequestSummarySQL is the monthly summary of the entries f selects in table: per month, ЕРДР
// code and department, the organisation's name (the greatest, where it changed within the
// month) and the count of requests and of each outcome, in the order of RequestSummaryScan.
func RequestSummarySQL(table string, f siobroker.RequestFilter, mark func(n int) string) (string, []any) {
	var args []any
	count := func(o siobroker.RequestOutcome) string {
		return `, SUM(CASE WHEN outcome = '` + string(o) + `' THEN 1 ELSE 0 END)`
	}
	q := `SELECT month, erdr_code, MAX(organisation), department, count(*)` +
		count(siobroker.RequestAnswered) + count(siobroker.RequestPartial) + count(siobroker.RequestDenied) +
		count(siobroker.RequestFailed) + count(siobroker.RequestRefused) + count(siobroker.RequestPending) +
		` FROM ` + table + requestWhere(f, &args, mark) + ` GROUP BY month, erdr_code, department ORDER BY month, erdr_code, department`
	return q, args
}

// RequestSummaryScan returns the scan destinations of one row of RequestSummarySQL into s.
func RequestSummaryScan(s *siobroker.RequestSummary) []any {
	return []any{&s.Month, &s.ERDRCode, &s.Organisation, &s.Department, &s.Requests, &s.Answered, &s.Partial, &s.Denied,
		&s.Failed, &s.Refused, &s.Pending}
}

// RequestInsertSQL inserts or replaces one entry in table, in the placeholder style of mark.
// SQLite and PostgreSQL both take INSERT ... ON CONFLICT DO UPDATE.
func RequestInsertSQL(table string, mark func(n int) string) string {
	cols := strings.Split(RequestColumns, ",")
	marks := make([]string, len(cols))
	var set []string
	for i, c := range cols {
		c = strings.TrimSpace(c)
		marks[i] = mark(i + 1)
		if c != "request_id" {
			set = append(set, c+" = excluded."+c)
		}
	}
	return `INSERT INTO ` + table + ` (` + RequestColumns + `) VALUES (` + strings.Join(marks, ", ") + `)
		ON CONFLICT (request_id) DO UPDATE SET ` + strings.Join(set, ", ")
}

// Rows is what a store's result set is to EachRequest and EachRequestSummary: database/sql's
// and pgx's alike. The caller closes it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// EachRequest gives each row of RequestColumns in rows to each, and stops at its first error.
func EachRequest(rows Rows, each func(siobroker.RequestEntry) error) error {
	var r RequestRow
	targets := r.Targets()
	for rows.Next() {
		if err := rows.Scan(targets...); err != nil {
			return fmt.Errorf("read request index: %w", err)
		}
		e, err := r.Entry()
		if err != nil {
			return fmt.Errorf("read request index: %w", err)
		}
		if err := each(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read request index: %w", err)
	}
	return nil
}

// EachRequestSummary gives each row of RequestSummarySQL in rows to each, and stops at its first
// error.
func EachRequestSummary(rows Rows, each func(siobroker.RequestSummary) error) error {
	for rows.Next() {
		var r siobroker.RequestSummary
		if err := rows.Scan(RequestSummaryScan(&r)...); err != nil {
			return fmt.Errorf("summarise request index: %w", err)
		}
		if err := each(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("summarise request index: %w", err)
	}
	return nil
}
