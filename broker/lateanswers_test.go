package broker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/pgtest"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/sqlite"
)

// lateJournal is a journal that keeps what is appended, failing the first fails appends.
type lateJournal struct {
	mu    sync.Mutex
	fails int
	recs  []siobroker.JournalRecord
	added chan struct{}
}

func newLateJournal(fails int) *lateJournal {
	return &lateJournal{fails: fails, added: make(chan struct{}, 64)}
}

func (j *lateJournal) Append(_ context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fails > 0 {
		j.fails--
		return nil, errors.New("database is locked")
	}
	j.recs = append(j.recs, recs...)
	j.added <- struct{}{}
	return recs, nil
}

// AppendOnce keeps one late or exchange record per request and service, as the stores do.
func (j *lateJournal) AppendOnce(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	first, err := journal.FirstOutcomes(recs, func(siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
		return j.records(), nil
	})
	if err != nil || len(first) == 0 {
		return nil, err
	}
	return j.Append(ctx, first...)
}

func (j *lateJournal) records() []siobroker.JournalRecord {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.recs)
}

// wait waits for the next append.
func (j *lateJournal) wait(t *testing.T) siobroker.JournalRecord {
	t.Helper()
	select {
	case <-j.added:
	case <-time.After(5 * time.Second):
		t.Fatal("nothing was journaled")
	}
	recs := j.records()
	return recs[len(recs)-1]
}

type fakeJobs map[string]siobroker.AsyncJob

func (f fakeJobs) AsyncJob(_ context.Context, id string) (siobroker.AsyncJob, bool, error) {
	j, ok := f[id]
	return j, ok, nil
}

// lineLog keeps the messages logged at Error.
type lineLog struct {
	mu     sync.Mutex
	errors []string
}

func (l *lineLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *lineLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lineLog) WithGroup(string) slog.Handler            { return l }
func (l *lineLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		l.mu.Lock()
		l.errors = append(l.errors, r.Message)
		l.mu.Unlock()
	}
	return nil
}

func (l *lineLog) errorCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.errors)
}

func newLate(t *testing.T, cfg LateConfig, j siobroker.OutcomeWriter, jobs AsyncJobs) (*LateAnswers, *lineLog) {
	t.Helper()
	logs := &lineLog{}
	l, err := NewLateAnswers(cfg, LateDeps{Journal: j, Jobs: jobs, Rights: table,
		Clock: siobroker.SystemClock{}, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	return l, logs
}

// TestNewLateAnswersValidates: a missing collaborator or a negative bound is refused, naming
// the field; zero bounds take the defaults.
func TestNewLateAnswersValidates(t *testing.T) {
	full := LateDeps{Journal: newLateJournal(0), Rights: table, Clock: siobroker.SystemClock{}, Logger: slog.New(slog.DiscardHandler)}
	if _, err := NewLateAnswers(LateConfig{}, full); err != nil {
		t.Fatalf("NewLateAnswers with every dependency: %v", err)
	}
	for _, tt := range []struct {
		want string
		mod  func(*LateConfig, *LateDeps)
	}{
		{"broker: LateDeps.Journal is required", func(_ *LateConfig, d *LateDeps) { d.Journal = nil }},
		{"broker: LateDeps.Rights is required", func(_ *LateConfig, d *LateDeps) { d.Rights = nil }},
		{"broker: LateDeps.Clock is required", func(_ *LateConfig, d *LateDeps) { d.Clock = nil }},
		{"broker: LateDeps.Logger is required", func(_ *LateConfig, d *LateDeps) { d.Logger = nil }},
		{"broker: LateConfig.Attempts must not be negative", func(c *LateConfig, _ *LateDeps) { c.Attempts = -1 }},
		{"broker: LateConfig.Backoff must not be negative", func(c *LateConfig, _ *LateDeps) { c.Backoff = -time.Second }},
		{"broker: LateConfig.AppendLimit must not be negative", func(c *LateConfig, _ *LateDeps) { c.AppendLimit = -time.Second }},
	} {
		t.Run(tt.want, func(t *testing.T) {
			c, d := LateConfig{}, full
			tt.mod(&c, &d)
			_, err := NewLateAnswers(c, d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewLateAnswers: %v, want %q", err, tt.want)
			}
		})
	}
}

// record records a, failing the test if Record fails, and returns whether Record said a is late.
func record(t *testing.T, l *LateAnswers, a routing.LateAnswer) bool {
	t.Helper()
	late, err := l.Record(context.Background(), a)
	if err != nil {
		t.Fatalf("record %s: %v", a.Key, err)
	}
	return late
}

// pensionAnswer is a late answer of service 11, whose amounts bases 2-4 may not see.
func pensionAnswer(t *testing.T, requestID string) routing.LateAnswer {
	t.Helper()
	fields := []siobroker.Field{{Name: "employer", Value: "ТОО Пример"}, {Name: "amount", Value: "125000"}}
	resp := schemas.ServiceResponse{RequestID: requestID, Service: 11, Adapter: "gcvp", AnsweredAt: time.Now().UTC(),
		Result: siobroker.ServiceResult{Service: 11, Status: siobroker.StatusOK, Reason: siobroker.ReasonOK,
			Records: []siobroker.Record{{Type: "row", Fields: fields}}}}
	payload, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	return routing.LateAnswer{Key: routing.CorrelationKey(requestID, 11), RequestID: requestID, Service: 11, MessageID: "m-" + requestID,
		Readable: true, Status: siobroker.StatusOK, Reason: siobroker.ReasonOK, Adapter: "gcvp", AnsweredAt: resp.AnsweredAt,
		Records: 1, ReceivedAt: time.Now(), Payload: payload}
}

// lateData decodes a late record's Data.
func lateData(t *testing.T, rec siobroker.JournalRecord) (lateDetails, schemas.ServiceResponse) {
	t.Helper()
	var d lateDetails
	if err := json.Unmarshal(rec.Data, &d); err != nil {
		t.Fatalf("late record data %s: %v", rec.Data, err)
	}
	var resp schemas.ServiceResponse
	if len(d.Answer) > 0 {
		if err := json.Unmarshal(d.Answer, &resp); err != nil {
			t.Fatalf("late record answer %s: %v", d.Answer, err)
		}
	}
	return d, resp
}

// TestLateAnswerRecord: a late service answer becomes one late record with the answer, its times
// in Astana time, and the signer and organisation of the stored request; its records lose what
// the reply would have lost, by the stored basis, or by any basis when the request is not known.
func TestLateAnswerRecord(t *testing.T) {
	received := time.Date(2026, 11, 23, 10, 0, 0, 0, siobroker.Astana)
	jobs := fakeJobs{
		"full": {RequestID: "full", SignerIIN: "750312300458", Organisation: "ДП г. Астаны", Received: received,
			Info: siobroker.RequestInfo{MessageID: "client-1"}, Query: siobroker.Query{Basis: siobroker.BasisCriminal}},
		"court": {RequestID: "court", SignerIIN: "750312300458", Organisation: "ДП г. Астаны", Received: received,
			Query: siobroker.Query{Basis: siobroker.BasisCourtAdmin}},
	}
	j := newLateJournal(0)
	l, logs := newLate(t, LateConfig{}, j, jobs)
	tests := []struct {
		id         string
		amount     bool
		signer     string
		messageID  string
		wantRecvAt bool
	}{
		{"full", true, "750312300458", "m-full", true}, // basis 1 sees the amounts
		{"court", false, "750312300458", "m-court", true},
		{"unknown", false, "", "m-unknown", false}, // not stored: truncated as under any basis
	}
	for _, tt := range tests {
		a := pensionAnswer(t, tt.id)
		record(t, l, a)
		rec := j.wait(t)
		if rec.Kind != siobroker.JournalLate || rec.RequestID != tt.id || rec.Service != 11 || rec.Code != "ok/OK" ||
			rec.SignerIIN != tt.signer || rec.MessageID != tt.messageID {
			t.Errorf("%s: record %+v", tt.id, rec)
		}
		if tt.signer != "" && rec.Organisation != "ДП г. Астаны" {
			t.Errorf("%s: organisation %q", tt.id, rec.Organisation)
		}
		d, resp := lateData(t, rec)
		if d.Status != siobroker.StatusOK || d.Reason != siobroker.ReasonOK || d.Adapter != "gcvp" || d.Records != 1 {
			t.Errorf("%s: details %+v", tt.id, d)
		}
		if _, off := d.Times.Answered.Zone(); off != 5*3600 || d.Times.Arrived.IsZero() || !d.Times.Answered.Equal(a.AnsweredAt) {
			t.Errorf("%s: times %+v, want Astana time", tt.id, d.Times)
		}
		if got := !d.Times.Received.IsZero(); got != tt.wantRecvAt || (got && !d.Times.Received.Equal(received)) {
			t.Errorf("%s: received %v", tt.id, d.Times.Received)
		}
		names := fieldNames(resp.Result.Records[0])
		if slices.Contains(names, "amount") != tt.amount || !slices.Contains(names, "employer") {
			t.Errorf("%s: journaled fields %v (amount kept: %v)", tt.id, names, tt.amount)
		}
		if tt.amount == (len(d.Truncated) > 0) {
			t.Errorf("%s: truncated %v", tt.id, d.Truncated)
		}
		if strings.Contains(string(rec.Data), "125000") != tt.amount {
			t.Errorf("%s: data %s", tt.id, rec.Data)
		}
	}
	if n := logs.errorCount(); n != 0 {
		t.Errorf("%d errors logged", n)
	}
}

// TestLateCaseCheckAndUnreadable: a case registry's late verdict and an answer that cannot be read
// are journaled too, with their own codes.
func TestLateCaseCheckAndUnreadable(t *testing.T) {
	j := newLateJournal(0)
	l, _ := newLate(t, LateConfig{}, j, nil)
	record(t, l, routing.LateAnswer{Key: "r1/case", RequestID: "r1", CaseCheck: true, Readable: true, Found: true,
		Adapter: "erdr", ReceivedAt: time.Now(), Payload: []byte(`{"requestId":"r1","found":true,"registry":"erdr"}`)})
	rec := j.wait(t)
	d, _ := lateData(t, rec)
	if rec.Service != 0 || rec.Code != LateCodeCaseNotProceedings || d.CaseCheck == nil || !d.CaseCheck.Found ||
		d.Adapter != "erdr" || !strings.Contains(string(d.Answer), `"registry":"erdr"`) {
		t.Errorf("case check record %+v %+v", rec, d)
	}
	record(t, l, routing.LateAnswer{Key: "r2/7", RequestID: "r2", Service: 7, ReceivedAt: time.Now(), Payload: []byte("{garbage")})
	rec = j.wait(t)
	d, _ = lateData(t, rec)
	if rec.Service != 7 || rec.Code != LateCodeUnreadable || string(d.Unreadable) != "{garbage" || d.Answer != nil {
		t.Errorf("unreadable record %+v %+v", rec, d)
	}
}

// TestLateJournalFailures: an append that fails is tried again; when it keeps failing, Record
// returns the error after its back-off, so that the answer is delivered again, and journals it
// when it comes again.
func TestLateJournalFailures(t *testing.T) {
	j := newLateJournal(2)
	l, _ := newLate(t, LateConfig{Attempts: 3, Backoff: time.Millisecond}, j, nil)
	record(t, l, pensionAnswer(t, "retried"))
	if rec := j.wait(t); rec.RequestID != "retried" {
		t.Fatalf("after two failures: %+v", rec)
	}
	j.mu.Lock()
	j.fails = 3
	j.mu.Unlock()
	if _, err := l.Record(context.Background(), pensionAnswer(t, "again")); err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Fatalf("three failed appends: error %v", err)
	}
	if n := len(j.records()); n != 1 {
		t.Fatalf("%d records after the failed one, want 1", n)
	}
	record(t, l, pensionAnswer(t, "again")) // delivered again
	if rec := j.wait(t); rec.RequestID != "again" {
		t.Fatalf("journaled %+v, want the answer delivered again", rec)
	}
}

// TestLateRecordStops: when the delivery's context ends (the broker is stopping), Record stops
// waiting between attempts and fails at once, leaving the answer to the transport.
func TestLateRecordStops(t *testing.T) {
	j := newLateJournal(1000)
	l, _ := newLate(t, LateConfig{Attempts: 5, Backoff: time.Hour}, j, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := l.Record(ctx, pensionAnswer(t, "stopping"))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want the cancellation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Record kept waiting after its context ended")
	}
}

// TestLateRecordUnbuildable: an answer whose record can never be built is logged as lost and not
// handed back to the transport, which would deliver it again for ever.
func TestLateRecordUnbuildable(t *testing.T) {
	j := newLateJournal(0)
	l, logs := newLate(t, LateConfig{}, j, nil)
	a := pensionAnswer(t, "broken")
	a.Payload = []byte("{not json") // said readable, yet it cannot be read to truncate it
	if late, err := l.Record(context.Background(), a); err != nil || !late {
		t.Fatalf("unbuildable record: late %v, handed back %v; want late, not handed back", late, err)
	}
	if logs.errorCount() != 1 || len(j.records()) != 0 {
		t.Fatalf("%d errors logged, %d records", logs.errorCount(), len(j.records()))
	}
}

// waitLateRecord waits for the late record of request id in h's journal.
func waitLateRecord(t *testing.T, h *harness, id string) siobroker.JournalRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range journalOf(t, h, id) {
			if r.Kind == siobroker.JournalLate {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no late record of %s in the journal: %+v", id, journalOf(t, h, id))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLateAnswerJournaledByBroker: a service that misses its timeout is answered "timeout" in the
// reply; its answer, when it comes, is journaled as a late record of the request, with the
// signer and organisation of the request's journal record (a plain synchronous request is not
// stored), so that reports and exports by user and organisation find it.
func TestLateAnswerJournaledByBroker(t *testing.T) {
	h := newHarnessWith(t, harnessOpts{slowAnswers: true, journalLate: true})
	raw, info := h.build(t, reqSpec{services: []int{1, slowService}})
	reply, seen, err := h.handle(raw)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if _, res := h.parseReply(t, reply, signing.PlacementWSSE); res.Services[1].Status != siobroker.StatusTimeout {
		t.Fatalf("slow service: %+v", res.Services[1])
	}
	rec := waitLateRecord(t, h, seen.RequestID)
	d, resp := lateData(t, rec)
	if rec.Service != slowService || rec.Code != "ok/OK" || rec.MessageID != info.MessageID ||
		d.Adapter != "test" || d.Records != 2 || len(resp.Result.Records) != 2 || resp.RequestID != seen.RequestID {
		t.Fatalf("late record %+v\n%+v", rec, d)
	}
	user := h.user(t, userSigner.IIN())
	if rec.SignerIIN != user.IIN || rec.Organisation != user.Organisation || rec.Organisation == "" || d.Times.Received.IsZero() {
		t.Fatalf("late record of a plain synchronous request: signer %q organisation %q received %v, want %s of %q and the request's time",
			rec.SignerIIN, rec.Organisation, d.Times.Received, user.IIN, user.Organisation)
	}
	// Besides the request's own records, and the chain holds.
	recs := journalOf(t, h, seen.RequestID)
	if got := kinds(recs); slices.Index(got, siobroker.JournalReply) < 0 || len(got) != 5 {
		t.Fatalf("journal of the request: %v, want request, 2 exchanges, reply and late", got)
	}
	if err := h.db.Journal().Verify(context.Background()); err != nil {
		t.Fatalf("journal chain: %v", err)
	}
}

// TestLateAnswerOfStoredRequest: when the broker gave up waiting for a late service of a stored
// request (routing.async_timeout), the answer that still comes is journaled with the request's
// signer and organisation, so that reports and exports find it.
func TestLateAnswerOfStoredRequest(t *testing.T) {
	h := newHarnessWith(t, harnessOpts{asyncTimeout: 100 * time.Millisecond, slowAnswers: true, journalLate: true})
	raw, _ := h.build(t, reqSpec{services: []int{1, slowService}})
	reply, _, err := h.handle(raw)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	rec := waitLateRecord(t, h, reply.MessageID)
	user := h.user(t, userSigner.IIN())
	if rec.SignerIIN != user.IIN || rec.Organisation != user.Organisation || rec.Organisation == "" {
		t.Fatalf("late record signer %q organisation %q, want %s of %q", rec.SignerIIN, rec.Organisation, user.IIN, user.Organisation)
	}
	if d, _ := lateData(t, rec); d.Times.Received.IsZero() {
		t.Errorf("late record without the request's time: %+v", d.Times)
	}
}

func kinds(recs []siobroker.JournalRecord) []siobroker.JournalKind {
	out := make([]siobroker.JournalKind, len(recs))
	for i, r := range recs {
		out[i] = r.Kind
	}
	return out
}

// TestLateAnswerCopyJournaledOnce: a copy of a late answer delivered again, to a broker that has
// forgotten it (restarted: a new LateAnswers) or to two reply consumers at once, finds the
// journal's record of it and is not appended again; a different answer to the same request and
// service is.
func TestLateAnswerCopyJournaledOnce(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		lateCopiesJournaledOnce(t, db.Journal())
	})
	t.Run("postgres", func(t *testing.T) {
		j, err := postgres.OpenJournal(context.Background(), pgtest.Schema(t, "sio_late_"))
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		lateCopiesJournaledOnce(t, j)
	})
}

// lateJournalStore is a journal LateAnswers appends to and looks up in.
type lateJournalStore interface {
	siobroker.OutcomeWriter
	RequestRecords
}

func lateCopiesJournaledOnce(t *testing.T, journal lateJournalStore) {
	ctx := context.Background()
	var err error
	newLateOnStore := func() *LateAnswers {
		l, err := NewLateAnswers(LateConfig{}, LateDeps{Journal: journal, Requests: journal, Rights: table,
			Clock: siobroker.SystemClock{}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	lateRecords := func() []siobroker.JournalRecord {
		recs, err := journal.Query(ctx, siobroker.JournalFilter{RequestID: "req-copy", Kinds: []siobroker.JournalKind{siobroker.JournalLate}})
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}

	first := pensionAnswer(t, "req-copy")
	record(t, newLateOnStore(), first)
	record(t, newLateOnStore(), first) // after a restart
	if n := len(lateRecords()); n != 1 {
		t.Fatalf("%d late records after a copy of one answer, want 1", n)
	}

	l := newLateOnStore()
	second := pensionAnswer(t, "req-copy")
	second.AnsweredAt = first.AnsweredAt.Add(time.Second)
	if second.Payload, err = json.Marshal(schemas.ServiceResponse{RequestID: "req-copy", Service: 11, AnsweredAt: second.AnsweredAt}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := l.Record(ctx, second); err != nil {
				t.Errorf("record: %v", err)
			}
		})
	}
	wg.Wait()
	recs := lateRecords()
	if len(recs) != 2 {
		t.Fatalf("%d late records, want 2: the first answer and another answer, each once", len(recs))
	}
	for i, a := range []routing.LateAnswer{first, second} {
		if d, _ := lateData(t, recs[i]); d.AnswerDigest != routing.AnswerDigest(a.Payload) {
			t.Errorf("record %d holds digest %q, want the answer's %q", i, d.AnswerDigest, routing.AnswerDigest(a.Payload))
		}
	}
}

// TestLateCopyOfTheRepliedAnswer: an answer delivered again after its request's reply carried it
// (a broker restarted after keeping the answer and before acknowledging it, whose resumed request
// was completed from the answer kept before the copy came) is not late: the exchange record of
// its service names its digest, and nothing is recorded. Another answer to the same service is
// late, as before. The fault test found the copy journaled as late beside its exchange record.
func TestLateCopyOfTheRepliedAnswer(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j := db.Journal()
	l, err := NewLateAnswers(LateConfig{}, LateDeps{Journal: j, Requests: j, Rights: table,
		Clock: siobroker.SystemClock{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	replied := pensionAnswer(t, "req-replied")
	data, err := json.Marshal(map[string]any{"status": "ok", "reason": "OK", "records": 1, "answerDigest": routing.AnswerDigest(replied.Payload)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(ctx, siobroker.JournalRecord{At: time.Now(), Kind: siobroker.JournalExchange, RequestID: "req-replied",
		MessageID: replied.MessageID, Service: replied.Service, Code: "ok/OK", Data: data}); err != nil {
		t.Fatal(err)
	}
	late := func() int {
		recs, err := j.Query(ctx, siobroker.JournalFilter{RequestID: "req-replied", Kinds: []siobroker.JournalKind{siobroker.JournalLate}})
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	if record(t, l, replied) {
		t.Error("Record said the copy of the answer the reply carried is late")
	}
	if n := late(); n != 0 {
		t.Fatalf("the copy of the answer the reply carried was journaled late (%d records)", n)
	}
	other := pensionAnswer(t, "req-replied")
	other.Payload = append([]byte(nil), other.Payload...)
	other.Payload = append(other.Payload[:len(other.Payload)-1], []byte(`,"x":1}`)...)
	if !record(t, l, other) {
		t.Error("Record said another answer to the replied service is not late")
	}
	if n := late(); n != 1 {
		t.Fatalf("another answer to the replied service: %d late records, want 1", n)
	}
}

// TestRepliedDigestOnlyOfAnAnswer: an exchange record names the answer's digest only when it
// records that answer's result; a service recorded as timed out names none, even if its answer
// came after the wait (the fault test lost such an answer when the timeout's record named it:
// the late answer was taken for a copy of the reply's).
func TestRepliedDigestOnlyOfAnAnswer(t *testing.T) {
	ok := exchange{Result: siobroker.ServiceResult{Service: 5, Status: siobroker.StatusOK, Reason: siobroker.ReasonOK}, AnswerDigest: "d", AnsweredAt: time.Now()}
	if got := repliedDigest(ok); got != "d" {
		t.Errorf("an answered service: digest %q, want d", got)
	}
	late := ok
	late.Result = siobroker.ServiceResult{Service: 5, Status: siobroker.StatusTimeout, Reason: siobroker.ReasonTimeout}
	if got := repliedDigest(late); got != "" {
		t.Errorf("a service recorded as timed out: digest %q, want none", got)
	}
	failed := exchange{Result: siobroker.ServiceResult{Service: 5, Status: siobroker.StatusError, Reason: siobroker.ReasonAdapterError}, AnswerDigest: "d"}
	if got := repliedDigest(failed); got != "" {
		t.Errorf("the broker's error: digest %q, want none", got)
	}
}
