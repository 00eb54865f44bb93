package faults

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/routing/amqp"
	"github.com/sio-pso/siobroker/sqlite"
)

// The accounting, once the load has stopped and every request has had its time:
//
//   - lost: an answer an adapter produced (a row of the ledger) that is in no exchange record
//     with an answer and no late record; or an accepted request, finished, without an outcome
//     (exchange record) for one of its services.
//   - duplicated: a second exchange record of one request and service; a late record beside an
//     exchange record that holds an answer (the answer journaled twice: an exchange record
//     keeps no digest of its answer, so a late record there is a second outcome whatever its
//     answer); a late record with the answer digest of another late record of the service. An
//     exchange record of a timeout and a late record of the answer are the designed outcome of
//     a late answer, not a duplicate.
//   - stuck: an accepted request without a reply record, or still on delivery in the store.
//   - unjournaled refusal: a SOAP fault the client got with no refusal record of its messageId.
//   - the dead-letter queue must hold the poison and nothing else.
//
// A request is accepted when the client got its reply or acknowledgement, or the journal holds
// its request record and no refusal, or an outcome or reply record, or the store still holds it.

// jrec is one journal record, as much as the accounting reads.
type jrec struct {
	seq                        int64
	kind                       siobroker.JournalKind
	requestID, messageID, code string
	service                    int
	adapter, answerDigest      string
	summarised                 map[string]int // of a refusal summary: the refusals it counts, by fault code
}

// jreq is what the journal holds of one request (by the client's messageId).
type jreq struct {
	requestIDs []string
	requests   int
	refusals   []jrec
	exchanges  map[int][]jrec
	lates      map[int][]jrec
	replies    int
}

type ledgerRow struct {
	key, owner string
	at         time.Time
}

// counts are one phase's numbers.
type counts struct {
	sent, async, accepted, refused, noAnswer, unreadable int
	produced, journaled, late, unledgered                int
	lost, duplicated, stuck, unjournaledRefusals         int
	summarisedRefusals                                   int // refusals counted in a refusal summary, not one by one
	faultCodes                                           map[string]int
	outcomes                                             map[string]int      // exchange and late records by kind, service and code
	problems                                             map[string][]string // by kind: examples, for the diagnosis
}

func (c *counts) problem(kind, format string, args ...any) {
	if c.problems == nil {
		c.problems = map[string][]string{}
	}
	c.problems[kind] = append(c.problems[kind], fmt.Sprintf(format, args...))
}

type accounting struct {
	phases      []*counts // by phase; the last is "not sent by the load" (records of unknown requests)
	dlqExpected []string
	dlqActual   []amqp.DeadLetter
	dlqMissing  []string
	dlqExtra    []amqp.DeadLetter
	dlqFate     map[string]string // what the journal holds of a dead letter that is not poison
	journalOK   bool
	journalOut  string
	logLines    map[string]int
	procLogs    map[string]string // every process's output, by name
}

// account stops the broker and reads its journal and store, the ledger and the dead-letter
// queue, and counts.
func account(t *testing.T, top *topology, l *loader) *accounting {
	t.Helper()
	acc := &accounting{}
	for range len(phases) + 1 {
		acc.phases = append(acc.phases, &counts{faultCodes: map[string]int{}, outcomes: map[string]int{}})
	}
	unknown := acc.phases[len(phases)]

	// The dead-letter queue, before anything is stopped.
	letters, err := amqp.ListDeadLetters(context.Background(), amqp.Config{URL: top.node.URL(), Prefix: amqpPrefix}, 10000)
	must(t, err, "list the dead-letter queue")
	acc.dlqActual = letters
	for _, p := range poison {
		acc.dlqExpected = append(acc.dlqExpected, p.id)
		if !slices.ContainsFunc(letters, func(d amqp.DeadLetter) bool { return d.MessageID == p.id }) {
			acc.dlqMissing = append(acc.dlqMissing, p.id+" (from "+p.queue+")")
		}
	}
	for _, d := range letters {
		if !slices.ContainsFunc(poison[:], func(p struct{ id, queue, body string }) bool { return p.id == d.MessageID }) {
			acc.dlqExtra = append(acc.dlqExtra, d)
		}
	}
	ledger := readLedger(t, top)

	top.broker.stop(t)
	acc.journalOK, acc.journalOut = top.journalCheck(t)
	journal, onDelivery := readStore(t, top)
	acc.logLines = top.logLines()
	acc.procLogs = map[string]string{}
	for _, p := range top.all {
		acc.procLogs[p.name] = p.output()
	}

	byMsg := map[string]*jreq{}
	reqToMsg := map[string]string{}
	// A signer's refusals past the journal's per-minute bound (journal.unauthenticated_refusals)
	// are journaled as a count in a refusal summary, by design: a fault with no refusal record of
	// its own is journaled when a summary counts a refusal of its code that no other fault took.
	summarised := map[string]int{}
	for _, r := range journal {
		for code, n := range r.summarised {
			summarised[code] += n
		}
	}
	for _, r := range journal {
		if r.messageID == "" {
			continue
		}
		j := byMsg[r.messageID]
		if j == nil {
			j = &jreq{exchanges: map[int][]jrec{}, lates: map[int][]jrec{}}
			byMsg[r.messageID] = j
		}
		if r.requestID != "" && !slices.Contains(j.requestIDs, r.requestID) {
			j.requestIDs = append(j.requestIDs, r.requestID)
			reqToMsg[r.requestID] = r.messageID
		}
		switch r.kind {
		case siobroker.JournalRequest:
			j.requests++
		case siobroker.JournalRefusal:
			j.refusals = append(j.refusals, r)
		case siobroker.JournalExchange:
			j.exchanges[r.service] = append(j.exchanges[r.service], r)
		case siobroker.JournalLate:
			j.lates[r.service] = append(j.lates[r.service], r)
		case siobroker.JournalReply:
			j.replies++
		}
	}

	log := l.sentLog()
	phaseOf := map[string]int{}
	for _, s := range log {
		phaseOf[s.messageID] = s.phase
	}
	for _, s := range log {
		c := acc.phases[s.phase]
		c.sent++
		if s.async {
			c.async++
		}
		j := byMsg[s.messageID]
		switch s.got {
		case gotFault:
			c.refused++
			c.faultCodes[s.code]++
			if (j == nil || len(j.refusals) == 0) && summarised[s.code] > 0 {
				summarised[s.code]--
				c.summarisedRefusals++
			} else if j == nil || len(j.refusals) == 0 {
				c.unjournaledRefusals++
				c.problem("unjournaled refusal", "%s %s: %s %s", channel(s), s.messageID, s.code, s.detail)
			}
		case gotNoAnswer:
			c.noAnswer++
			c.problem("no answer (not a failure by itself)", "%s %s sent %s: %s", channel(s), s.messageID, s.at.Format("15:04:05.000"), s.detail)
		case gotUnreadable:
			c.unreadable++
			c.problem("unreadable answer", "%s %s: %s", channel(s), s.messageID, s.detail)
		}
		if j == nil {
			if s.got == gotReply || s.got == gotAck {
				c.accepted++
				c.stuck++
				c.problem("stuck", "%s %s: the client got %s, the journal has nothing of it", channel(s), s.messageID, s.got)
			}
			continue
		}
		inStore := slices.ContainsFunc(j.requestIDs, func(id string) bool { _, ok := onDelivery[id]; return ok })
		accepted := s.got == gotReply || s.got == gotAck || (j.requests > 0 && len(j.refusals) == 0) ||
			j.replies > 0 || len(j.exchanges) > 0 || inStore
		if accepted {
			c.accepted++
			switch {
			case j.replies == 0 || inStore:
				c.stuck++
				c.problem("stuck", "%s %s (%s, client %s %s): %d request, %d refusal, %d reply records, on delivery in the store %v, exchanges %s",
					channel(s), s.messageID, strings.Join(j.requestIDs, ","), s.got, s.code, j.requests, len(j.refusals), j.replies, inStore, codes(j.exchanges))
			default:
				for _, svc := range services {
					if len(j.exchanges[svc]) == 0 {
						c.lost++
						c.problem("lost", "%s %s (%s): replied, but service %d has no outcome record", channel(s), s.messageID, strings.Join(j.requestIDs, ","), svc)
					}
				}
			}
		}
		countJournaled(c, s, j)
	}

	// Records of requests the load did not send (none are expected).
	for msg, j := range byMsg {
		if _, ok := phaseOf[msg]; ok {
			continue
		}
		countJournaled(unknown, &sent{messageID: msg}, j)
	}
	for id := range onDelivery {
		if _, ok := phaseOf[reqToMsg[id]]; !ok {
			unknown.stuck++
			unknown.problem("stuck", "request %s (messageId %q) on delivery in the store, not sent by the load", id, reqToMsg[id])
		}
	}

	// Every answer an adapter produced, by the ledger.
	for _, row := range ledger {
		requestID, svcText, ok := cutLast(row.key, "/")
		svc, err := strconv.Atoi(svcText)
		if !ok || err != nil || strings.HasPrefix(requestID, "faults-poison") {
			continue
		}
		msg := reqToMsg[requestID]
		c := unknown
		if ph, ok := phaseOf[msg]; ok && msg != "" {
			c = acc.phases[ph]
		}
		c.produced++
		j := byMsg[msg]
		if j == nil {
			c.lost++
			c.problem("lost", "answer to %s service %d (by %s at %s): the journal has nothing of the request", requestID, svc, row.owner, row.at.Format(time.TimeOnly))
			continue
		}
		answered := slices.ContainsFunc(j.exchanges[svc], hasAnswer) || len(j.lates[svc]) > 0
		if !answered {
			c.lost++
			c.problem("lost", "answer to %s service %d (by %s at %s) in no journal record: exchanges %s, %d late",
				requestID, svc, row.owner, row.at.Format(time.TimeOnly), codes(map[int][]jrec{svc: j.exchanges[svc]}), len(j.lates[svc]))
		}
	}
	// A dead letter that is not poison: is its request's service answered all the same (a false
	// dead letter), or did the request lose it?
	acc.dlqFate = map[string]string{}
	for _, d := range acc.dlqExtra {
		requestID, svcText, _ := cutLast(d.MessageID, "/")
		svc, _ := strconv.Atoi(svcText)
		j := byMsg[reqToMsg[requestID]]
		switch {
		case j == nil:
			acc.dlqFate[d.MessageID] = "the journal has nothing of its request"
		case slices.ContainsFunc(j.exchanges[svc], hasAnswer) || len(j.lates[svc]) > 0:
			acc.dlqFate[d.MessageID] = "its service was answered and journaled all the same (" + codes(map[int][]jrec{svc: append(j.exchanges[svc], j.lates[svc]...)}) + ")"
		default:
			acc.dlqFate[d.MessageID] = "its service has no answer in the journal " + codes(map[int][]jrec{svc: j.exchanges[svc]})
		}
	}

	// Answers in the journal that no ledger row accounts for (not a failure: an answer whose
	// publication was confirmed to nobody, so the adapter never wrote its row; a copy of it would
	// be asked of the source again).
	ledgered := map[string]bool{}
	for _, row := range ledger {
		ledgered[row.key] = true
	}
	for _, s := range log {
		j := byMsg[s.messageID]
		if j == nil {
			continue
		}
		for _, svc := range services {
			if !slices.ContainsFunc(j.exchanges[svc], hasAnswer) && len(j.lates[svc]) == 0 {
				continue
			}
			if !slices.ContainsFunc(j.requestIDs, func(id string) bool { return ledgered[id+"/"+strconv.Itoa(svc)] }) {
				c := acc.phases[s.phase]
				c.unledgered++
				c.problem("answer journaled without a ledger row (not a failure by itself)", "%s %s (%s) service %d: %s, %d late",
					channel(s), s.messageID, strings.Join(j.requestIDs, ","), svc, codes(map[int][]jrec{svc: j.exchanges[svc]}), len(j.lates[svc]))
			}
		}
	}
	return acc
}

// countJournaled counts the answers journaled for one request, and its duplicates.
func countJournaled(c *counts, s *sent, j *jreq) {
	for _, svc := range services {
		ex, lates := j.exchanges[svc], j.lates[svc]
		for _, e := range ex {
			c.outcomes[fmt.Sprintf("exchange %d %s", svc, e.code)]++
		}
		for _, e := range lates {
			c.outcomes[fmt.Sprintf("late %d %s", svc, e.code)]++
		}
		for _, e := range ex {
			if hasAnswer(e) {
				c.journaled++
			}
		}
		c.journaled += len(lates)
		c.late += len(lates)
		if len(ex) > 1 {
			c.duplicated += len(ex) - 1
			c.problem("duplicated", "%s %s service %d: %d exchange records %s", channel(s), s.messageID, svc, len(ex), codes(map[int][]jrec{svc: ex}))
		}
		if len(ex) > 0 && hasAnswer(ex[0]) && len(lates) > 0 {
			c.duplicated += len(lates)
			c.problem("duplicated", "%s %s (%s) service %d: exchange %s (adapter %s, record %d) and %d late records (first by %s, record %d)",
				channel(s), s.messageID, strings.Join(j.requestIDs, ","), svc, ex[0].code, ex[0].adapter, ex[0].seq, len(lates), lates[0].adapter, lates[0].seq)
		}
		seen := map[string]bool{}
		for _, r := range lates {
			if seen[r.answerDigest] {
				c.duplicated++
				c.problem("duplicated", "%s %s service %d: two late records of answer %s", channel(s), s.messageID, svc, r.answerDigest[:min(12, len(r.answerDigest))])
			}
			seen[r.answerDigest] = true
		}
	}
}

// hasAnswer: an exchange record of an answer that came, not of a timeout.
func hasAnswer(e jrec) bool { return !strings.HasPrefix(e.code, string(siobroker.StatusTimeout)+"/") }

func channel(s *sent) string {
	if s.async {
		return "async"
	}
	return "sync"
}

func codes(m map[int][]jrec) string {
	var out []string
	for svc, recs := range m {
		for _, r := range recs {
			out = append(out, fmt.Sprintf("%d:%s", svc, r.code))
		}
	}
	sort.Strings(out)
	return "[" + strings.Join(out, " ") + "]"
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// readStore reads the stopped broker's journal and the requests still on delivery.
func readStore(t *testing.T, top *topology) ([]jrec, map[string]bool) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(top.dataDir, sqlite.FileName)+"?_pragma=busy_timeout(10000)")
	must(t, err, "open the broker's database")
	defer db.Close()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT seq, kind, request_id, message_id, service, code, data FROM journal ORDER BY seq`)
	must(t, err, "read the journal")
	var out []jrec
	for rows.Next() {
		var r jrec
		var data []byte
		must(t, rows.Scan(&r.seq, &r.kind, &r.requestID, &r.messageID, &r.service, &r.code, &data), "read a journal record")
		if r.kind == siobroker.JournalExchange || r.kind == siobroker.JournalLate {
			var d struct {
				Adapter      string `json:"adapter"`
				AnswerDigest string `json:"answerDigest"`
			}
			_ = json.Unmarshal(data, &d)
			r.adapter, r.answerDigest = d.Adapter, d.AnswerDigest
		}
		if r.kind == siobroker.JournalRefusal && r.code == broker.RefusalSummaryCode {
			var sum broker.RefusalSummary
			must(t, json.Unmarshal(data, &sum), "read a refusal summary")
			r.summarised = sum.Codes
		}
		out = append(out, r)
	}
	must(t, rows.Err(), "read the journal")
	rows.Close()
	onDelivery := map[string]bool{}
	rows, err = db.QueryContext(ctx, sqlite.OnDeliverySQL)
	must(t, err, "read the stored requests")
	for rows.Next() {
		var id string
		must(t, rows.Scan(&id), "read a stored request")
		onDelivery[id] = true
	}
	must(t, rows.Err(), "read the stored requests")
	rows.Close()
	return out, onDelivery
}

// readLedger reads the adapters' ledger: every request's service an adapter process answered.
func readLedger(t *testing.T, top *topology) []ledgerRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, top.ledgerDSN)
	must(t, err, "connect to the ledger")
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT key, owner, answered_at FROM sio_adapter_ledger ORDER BY answered_at`)
	must(t, err, "read the ledger")
	defer rows.Close()
	var out []ledgerRow
	for rows.Next() {
		var r ledgerRow
		must(t, rows.Scan(&r.key, &r.owner, &r.at), "read a ledger row")
		out = append(out, r)
	}
	must(t, rows.Err(), "read the ledger")
	return out
}

// logLines counts lines of the processes' logs that tell what happened to answers and copies.
func (top *topology) logLines() map[string]int {
	out := map[string]int{}
	for _, p := range top.all {
		for _, s := range []string{"copy is dropped", "NOT journaled", "not journaled yet", "dead-letter", "redelivered", "unfinished", "resum"} {
			if n := p.countLines(s); n > 0 {
				out[p.name+": "+s] += n
			}
		}
	}
	return out
}

// print writes the table of counts.
func (acc *accounting) print(t *testing.T, f form) {
	var b strings.Builder
	fmt.Fprintf(&b, "fault test, %s form: counts by the phase in which requests were sent\n", f.name)
	fmt.Fprintf(&b, "%-18s %5s %5s %8s %7s %9s %8s %9s %5s %9s %5s %5s %5s %11s\n", "fault", "sent", "async", "accepted", "refused", "no-answer",
		"answers", "journaled", "late", "no-ledger", "lost", "dup", "stuck", "unjournaled")
	var total counts
	row := func(name string, c *counts) {
		fmt.Fprintf(&b, "%-18s %5d %5d %8d %7d %9d %8d %9d %5d %9d %5d %5d %5d %11d\n", name, c.sent, c.async, c.accepted, c.refused, c.noAnswer,
			c.produced, c.journaled, c.late, c.unledgered, c.lost, c.duplicated, c.stuck, c.unjournaledRefusals)
	}
	for i, c := range acc.phases {
		name := "(not the load's)"
		if i < len(phases) {
			name = phases[i].name
		}
		row(name, c)
		total.sent += c.sent
		total.async += c.async
		total.late += c.late
		total.unledgered += c.unledgered
		total.accepted += c.accepted
		total.refused += c.refused
		total.noAnswer += c.noAnswer
		total.produced += c.produced
		total.journaled += c.journaled
		total.lost += c.lost
		total.duplicated += c.duplicated
		total.stuck += c.stuck
		total.unjournaledRefusals += c.unjournaledRefusals
		total.summarisedRefusals += c.summarisedRefusals
	}
	row("total", &total)
	b.WriteString("(answers: rows of the adapters' ledger; journaled: exchange records with an answer and late records;\n" +
		" no-ledger: answers journaled that no ledger row accounts for, not a failure by itself; lost, dup, stuck and\n" +
		" unjournaled refusals must be 0)\n")
	fmt.Fprintf(&b, "refusals journaled as counts in refusal summaries (a signer's refusals past the per-minute bound): %d\n",
		total.summarisedRefusals)
	fmt.Fprintf(&b, "dead-letter queue: expected %d (the poison), actual %d", len(acc.dlqExpected), len(acc.dlqActual))
	if len(acc.dlqMissing) > 0 {
		fmt.Fprintf(&b, "; poison missing: %s", strings.Join(acc.dlqMissing, ", "))
	}
	for _, d := range acc.dlqExtra {
		fmt.Fprintf(&b, "\n  not poison: %s from %s, reason %q, died %s: %s", d.MessageID, d.Queue, d.Reason, d.DiedAt.Format(time.TimeOnly), acc.dlqFate[d.MessageID])
	}
	fmt.Fprintf(&b, "\njournal check: %v: %s", map[bool]string{true: "passed", false: "FAILED"}[acc.journalOK], strings.TrimSpace(acc.journalOut))
	for i, c := range acc.phases {
		if len(c.faultCodes) > 0 {
			fmt.Fprintf(&b, "\nfaults (%s): %v", phaseName(i), c.faultCodes)
		}
		fmt.Fprintf(&b, "\noutcome records (%s): %v", phaseName(i), c.outcomes)
	}
	t.Log(b.String())

	var lines []string
	for k, n := range acc.logLines {
		lines = append(lines, fmt.Sprintf("  %s: %d", k, n))
	}
	sort.Strings(lines)
	if len(lines) > 0 {
		t.Logf("process log lines:\n%s", strings.Join(lines, "\n"))
	}
	for i, c := range acc.phases {
		kinds := make([]string, 0, len(c.problems))
		for k := range c.problems {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			ex := c.problems[k]
			t.Logf("%s, %s: %d, for example:\n  %s", phaseName(i), k, len(ex), strings.Join(ex[:min(8, len(ex))], "\n  "))
			if k == "duplicated" || k == "lost" || k == "stuck" {
				for _, e := range ex[:min(3, len(ex))] {
					t.Logf("what the processes logged of %s:\n%s", e, acc.linesAbout(e))
				}
			}
		}
	}
}

var uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// linesAbout returns the processes' log lines that name an id the problem's description names.
func (acc *accounting) linesAbout(problem string) string {
	ids := uuidPattern.FindAllString(problem, -1)
	var out []string
	names := make([]string, 0, len(acc.procLogs))
	for name := range acc.procLogs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, line := range strings.Split(acc.procLogs[name], "\n") {
			if slices.ContainsFunc(ids, func(id string) bool { return strings.Contains(line, id) }) {
				out = append(out, "  "+name+": "+line)
			}
		}
	}
	if len(out) > 30 {
		out = append(out[:30], fmt.Sprintf("  ... %d more", len(out)-30))
	}
	return strings.Join(out, "\n")
}

func phaseName(i int) string {
	if i < len(phases) {
		return phases[i].name
	}
	return "(not the load's)"
}

// check fails the test on every count that must be 0 and is not.
func (acc *accounting) check(t *testing.T) {
	for i, c := range acc.phases {
		if c.lost+c.duplicated+c.stuck+c.unjournaledRefusals+c.unreadable > 0 {
			t.Errorf("%s: %d lost, %d duplicated, %d stuck, %d refusals not journaled, %d unreadable answers; want 0",
				phaseName(i), c.lost, c.duplicated, c.stuck, c.unjournaledRefusals, c.unreadable)
		}
	}
	if len(acc.dlqMissing) > 0 || len(acc.dlqExtra) > 0 {
		t.Errorf("dead-letter queue: %d letters, want exactly the %d poison messages (%d missing, %d others)",
			len(acc.dlqActual), len(acc.dlqExpected), len(acc.dlqMissing), len(acc.dlqExtra))
	}
	if !acc.journalOK {
		t.Errorf("journal check failed:\n%s", acc.journalOut)
	}
	if acc.phases[0].accepted == 0 {
		t.Error("no request was accepted without a fault: the load did not run")
	}
}
