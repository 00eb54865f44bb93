package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
)

// LateAnswers journals the answers that reach the broker when nobody waits for them any more
// (routing.DispatcherConfig.OnLateAnswer) as siobroker.JournalLate records. Nobody received such
// an answer, yet it is a result, and the Rules keep every result (§37, 50).
//
// Record appends the record before the reply handler acknowledges the answer, so that a broker
// killed in between gets the answer delivered again instead of losing a result. Late answers
// are rare, and an append is a millisecond or two; while the journal fails, Record holds one
// reply consumer for at most the attempts' time and then has the answer delivered again (over
// RabbitMQ, past the reply queue's delivery limit, into the dead-letter queue with the reason),
// so that it is not lost while the journal mends. A broker whose journal fails cannot answer
// timely requests either (their records fail too), so holding the reply handler costs nothing
// the failing journal has not already taken.
//
// The signer and organisation are filled in from the store of asynchronous requests (an
// asynchronous request, or a synchronous one whose late services were waited for), or else from
// the journal's record of the request (a plain synchronous one), so that reports and exports by
// user and organisation find the late answer too. The answer's records are truncated
// as the reply's would have been (Appendix 2, footnote 1): by the request's basis when it is
// known, otherwise of every field the service may lose under any basis.
type LateAnswers struct {
	cfg  LateConfig
	deps LateDeps
}

// LateConfig bounds the journaling of late answers. Zero fields take the defaults; negative ones
// are refused.
type LateConfig struct {
	Attempts    int           // appends of one record per delivery of the answer; default 3
	Backoff     time.Duration // after a failed append, doubling after each; default 250ms
	AppendLimit time.Duration // one append, or one look-up of the request; default 5s
}

func (c *LateConfig) setDefaults() {
	if c.Attempts == 0 {
		c.Attempts = 3
	}
	if c.Backoff == 0 {
		c.Backoff = 250 * time.Millisecond
	}
	if c.AppendLimit == 0 {
		c.AppendLimit = 5 * time.Second
	}
}

// Validate reports what is wrong with c once its defaults are applied: no field may be negative.
func (c LateConfig) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Attempts < 0 {
		errs = append(errs, fmt.Errorf("broker: LateConfig.Attempts must not be negative, got %d", c.Attempts))
	}
	if c.Backoff < 0 {
		errs = append(errs, fmt.Errorf("broker: LateConfig.Backoff must not be negative, got %s", c.Backoff))
	}
	if c.AppendLimit < 0 {
		errs = append(errs, fmt.Errorf("broker: LateConfig.AppendLimit must not be negative, got %s", c.AppendLimit))
	}
	return errors.Join(errs...)
}

// LateDeps are what LateAnswers needs. Journal, Rights, Clock and Logger are required.
type LateDeps struct {
	// Journal keeps one late record per request and service (AppendOnce): a copy of a late
	// answer delivered again, by a lost acknowledgement or a restart, is not recorded twice.
	Journal siobroker.OutcomeWriter
	// Answers holds the answers the dispatcher received (routing.AnswerStore). With Jobs and
	// Requests, an answer to a request that is still to be completed — stored ON_DELIVERY, its
	// service without an exchange record: a request resumed after a crash, or retried after its
	// reply could not be journaled — is not late: the completion takes it from Answers. Nil:
	// every answer nobody waits for is recorded late.
	Answers HeldAnswers
	// Jobs finds the stored asynchronous request of an answer, for its signer, organisation and
	// basis (sqlite.DB implements it). Nil: none is looked up.
	Jobs AsyncJobs
	// Requests finds the journal's record of a request the store does not keep, for its signer
	// and organisation (the journal stores implement it). Nil: none is looked up.
	Requests RequestRecords
	Rights   LateRights
	Clock    siobroker.Clock
	Logger   *slog.Logger
}

// HeldAnswers reads the answers the dispatcher keeps (routing.AnswerStore).
type HeldAnswers interface {
	Answer(ctx context.Context, key string) (payload []byte, ok bool, err error)
}

// AsyncJobs looks up a stored asynchronous request by the broker's id.
type AsyncJobs interface {
	AsyncJob(ctx context.Context, requestID string) (siobroker.AsyncJob, bool, error)
}

// RequestRecords reads journal records; LateAnswers asks it for one request's request record.
type RequestRecords interface {
	Query(ctx context.Context, f siobroker.JournalFilter) ([]siobroker.JournalRecord, error)
}

// LateRights is what the truncation of a late answer reads of the rights tables.
type LateRights interface {
	DecideService(b siobroker.Basis, service int, q siobroker.Qualification) siobroker.Decision
	TruncatedFields(service int) []string
}

// Validate reports every required collaborator that d lacks: Journal, Rights, Clock and Logger.
func (d LateDeps) Validate() error {
	var errs []error
	if d.Journal == nil {
		errs = append(errs, errors.New("broker: LateDeps.Journal is required"))
	}
	if d.Rights == nil {
		errs = append(errs, errors.New("broker: LateDeps.Rights is required"))
	}
	if d.Clock == nil {
		errs = append(errs, errors.New("broker: LateDeps.Clock is required"))
	}
	if d.Logger == nil {
		errs = append(errs, errors.New("broker: LateDeps.Logger is required"))
	}
	return errors.Join(errs...)
}

// NewLateAnswers returns a LateAnswers. It applies the defaults of cfg and returns an error
// naming every field of cfg or deps that is missing or invalid.
func NewLateAnswers(cfg LateConfig, deps LateDeps) (*LateAnswers, error) {
	cfg.setDefaults()
	if err := errors.Join(cfg.Validate(), deps.Validate()); err != nil {
		return nil, err
	}
	return &LateAnswers{cfg: cfg, deps: deps}, nil
}

// Record journals a: the routing.DispatcherConfig.OnLateAnswer hook. It returns nil once the
// record is appended, and whether a is late: a copy of the answer its request's reply carried is
// not, and nothing is recorded. An answer its request still awaits is late (it came after its
// time limit) and is left to the request's completion; one recorded before, or one that cannot
// be recorded at all, is late. An append that fails is tried again, with back-off, up to
// LateConfig.Attempts times, and after the last failure Record waits the back-off once more and
// returns the error, so that the answer is delivered again no sooner. An answer whose record
// cannot be built at all (it never will be) is logged at Error and Record returns nil:
// delivering it again would loop. ctx (the delivery's) only shortens the waits; an append once
// started gets its own time limit.
//
// The journal keeps one late record per request and service (AppendOnce): a copy delivered
// again, to a broker killed between the append and the acknowledgement or restarted since, is
// not recorded twice. An answer its request still awaits (see LateDeps.Answers) is not recorded
// here: the request's completion takes it.
func (l *LateAnswers) Record(ctx context.Context, a routing.LateAnswer) (late bool, err error) {
	outcomes, err := l.outcomes(ctx, a)
	if err != nil {
		return false, err
	}
	awaited, err := l.awaited(ctx, a, outcomes)
	if err != nil {
		return false, err
	}
	if awaited {
		l.deps.Logger.Info("answer held for its request's completion", append(reqlog.Attrs(a.MessageID, a.Key), "service", a.Service)...)
		return true, nil
	}
	if inReply(a, outcomes) {
		l.deps.Logger.Info("copy of an answer its request's reply carried: not late", append(reqlog.Attrs(a.MessageID, a.Key), "service", a.Service)...)
		return false, nil
	}
	rec, err := l.record(ctx, a)
	if err != nil {
		l.lost(a, err)
		return true, nil
	}
	wait := l.cfg.Backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.AppendLimit)
		appended, err := l.deps.Journal.AppendOnce(actx, rec)
		cancel()
		if err == nil {
			if len(appended) == 0 {
				l.deps.Logger.Info("copy of a late answer already journaled: not recorded again", append(reqlog.Attrs(a.MessageID, a.Key),
					"service", a.Service)...)
			}
			return true, nil
		}
		l.deps.Logger.Warn("late answer not journaled yet", append(reqlog.Attrs(a.MessageID, a.Key),
			"attempt", attempt, "error", err)...)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return true, fmt.Errorf("journal late answer %s: %w (stopped after %d attempts: %w)", a.Key, err, attempt, ctx.Err())
		}
		if attempt >= l.cfg.Attempts {
			return true, fmt.Errorf("journal late answer %s (%d attempts): %w", a.Key, attempt, err)
		}
		wait *= 2
	}
}

// outcomes reads the exchange records of a's service (LateDeps.Requests), for awaited and
// inReply; none for a case check's answer. An error gives the answer back to the transport:
// recording it without knowing them might give the service a second outcome.
func (l *LateAnswers) outcomes(ctx context.Context, a routing.LateAnswer) ([]siobroker.JournalRecord, error) {
	if a.CaseCheck || l.deps.Requests == nil {
		return nil, nil
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.AppendLimit)
	defer cancel()
	recs, err := l.deps.Requests.Query(lctx, siobroker.JournalFilter{RequestID: a.RequestID, Service: a.Service,
		Kinds: []siobroker.JournalKind{siobroker.JournalExchange}})
	if err != nil {
		return nil, fmt.Errorf("look up the outcome of %s: %w", a.Key, err)
	}
	return recs, nil
}

// awaited reports whether a's request is still to be completed with a's answer: the answer is
// held (LateDeps.Answers), the request is stored ON_DELIVERY and the journal holds no exchange
// record of the service (outcomes). Its completion then takes the answer, and records it as late
// itself if its outcome was recorded meanwhile without it. An error (the store cannot be read)
// gives the answer back to the transport.
func (l *LateAnswers) awaited(ctx context.Context, a routing.LateAnswer, outcomes []siobroker.JournalRecord) (bool, error) {
	if a.CaseCheck || l.deps.Answers == nil || l.deps.Jobs == nil || l.deps.Requests == nil || len(outcomes) > 0 {
		return false, nil
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.AppendLimit)
	defer cancel()
	if _, held, err := l.deps.Answers.Answer(lctx, a.Key); err != nil || !held {
		return false, err
	}
	job, ok, err := l.deps.Jobs.AsyncJob(lctx, a.RequestID)
	return err == nil && ok && job.State == siobroker.AsyncOnDelivery, err
}

// inReply reports whether a is the answer its request's reply carried: an exchange record of its
// service (outcomes) names a's digest. A broker killed after it received an answer, but before it
// acknowledged it, receives the answer again once restarted; the request resumed meanwhile may
// have been completed from that answer (held), and the copy then finds no wait. It is no other
// result and not late (the fault test's duplicate: an exchange and a late record of one answer).
func inReply(a routing.LateAnswer, outcomes []siobroker.JournalRecord) bool {
	if len(a.Payload) == 0 {
		return false
	}
	digest := routing.AnswerDigest(a.Payload)
	return slices.ContainsFunc(outcomes, func(r siobroker.JournalRecord) bool {
		var d struct {
			AnswerDigest string `json:"answerDigest"`
		}
		return json.Unmarshal(r.Data, &d) == nil && d.AnswerDigest == digest
	})
}

// lost logs a late answer that will not be in the journal: a result is missing from it.
func (l *LateAnswers) lost(a routing.LateAnswer, err error) {
	l.deps.Logger.Error("late answer NOT journaled: a result is missing from the journal", append(reqlog.Attrs(a.MessageID, a.Key),
		"service", a.Service, "status", a.Status, "reason", a.Reason, "adapter", a.Adapter, "error", err)...)
}

// lateDetails is the Data of a JournalLate record, as JSON. It only ever gains fields.
type lateDetails struct {
	Times     lateTimes              `json:"times"`
	Status    siobroker.ResultStatus `json:"status,omitempty"`
	Reason    string                 `json:"reason,omitempty"`
	Adapter   string                 `json:"adapter,omitempty"` // for a case check: the registry
	Records   int                    `json:"records"`
	CaseCheck *caseVerdict           `json:"caseCheck,omitempty"`
	// Truncated names the fields taken out of Answer's records, as the reply would have lost them.
	Truncated []string `json:"truncated,omitempty"`
	// Answer is the adapter's answer as it came (schemas.ServiceResponse or CaseCheckResponse
	// JSON), less the Truncated fields; Unreadable holds the bytes of one that could not be read.
	Answer     json.RawMessage `json:"answer,omitempty"`
	Unreadable []byte          `json:"unreadable,omitempty"`
	// AnswerDigest is answerDigest of the answer as it came, before any truncation: a copy of
	// it delivered again is recognised by it.
	AnswerDigest string `json:"answerDigest,omitempty"`
}

// lateTimes are in Astana time. Received is the request's, known while the broker keeps it.
type lateTimes struct {
	Received time.Time `json:"received,omitzero"`
	Answered time.Time `json:"answered,omitzero"` // on the adapter's clock
	Arrived  time.Time `json:"arrived"`           // when the answer reached the broker
}

type caseVerdict struct {
	Found         bool `json:"found"`
	InProceedings bool `json:"inProceedings"`
}

// Codes of JournalLate records besides the service answers' "status/reason".
const (
	LateCodeUnreadable         = "unreadable"
	LateCodeCaseFound          = "case/found"
	LateCodeCaseNotFound       = "case/not-found"
	LateCodeCaseNotProceedings = "case/not-in-proceedings"
)

// record builds the journal record of a.
func (l *LateAnswers) record(ctx context.Context, a routing.LateAnswer) (siobroker.JournalRecord, error) {
	rec := siobroker.JournalRecord{
		At: l.deps.Clock.Now().In(siobroker.Astana), Kind: siobroker.JournalLate,
		RequestID: a.RequestID, MessageID: a.MessageID, Service: a.Service,
	}
	if a.ReceivedAt.IsZero() {
		a.ReceivedAt = rec.At
	}
	d := lateDetails{
		Times:  lateTimes{Arrived: a.ReceivedAt.In(siobroker.Astana)},
		Status: a.Status, Reason: a.Reason, Adapter: a.Adapter, Records: a.Records,
		AnswerDigest: routing.AnswerDigest(a.Payload),
	}
	if !a.AnsweredAt.IsZero() {
		d.Times.Answered = a.AnsweredAt.In(siobroker.Astana)
	}
	job, known := l.job(ctx, a)
	if !known {
		l.attribute(ctx, a, &rec, &d.Times)
	} else {
		rec.SignerIIN, rec.Organisation = job.SignerIIN, job.Organisation
		if rec.MessageID == "" {
			rec.MessageID = job.Info.MessageID
		}
		d.Times.Received = job.Received.In(siobroker.Astana)
	}
	switch {
	case !a.Readable:
		rec.Code, d.Unreadable = LateCodeUnreadable, a.Payload
	case a.CaseCheck:
		d.CaseCheck = &caseVerdict{Found: a.Found, InProceedings: a.InProceedings}
		switch {
		case !a.Found:
			rec.Code = LateCodeCaseNotFound
		case !a.InProceedings:
			rec.Code = LateCodeCaseNotProceedings
		default:
			rec.Code = LateCodeCaseFound
		}
		d.Answer = a.Payload
	default:
		rec.Code = string(a.Status) + "/" + a.Reason
		answer, truncated, err := l.truncated(a, job, known)
		if err != nil {
			return rec, err
		}
		d.Answer, d.Truncated = answer, truncated
	}
	data, err := json.Marshal(d)
	if err != nil {
		return rec, fmt.Errorf("encode late answer %s: %w", a.Key, err)
	}
	rec.Data = data
	return rec, nil
}

// job returns the stored request of a, if the store still has it.
func (l *LateAnswers) job(ctx context.Context, a routing.LateAnswer) (siobroker.AsyncJob, bool) {
	if l.deps.Jobs == nil || a.RequestID == "" {
		return siobroker.AsyncJob{}, false
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.AppendLimit)
	defer cancel()
	job, ok, err := l.deps.Jobs.AsyncJob(lctx, a.RequestID)
	if err != nil {
		l.deps.Logger.Warn("late answer journaled without its signer: the stored request cannot be read",
			append(reqlog.Attrs(a.MessageID, a.Key), "error", err)...)
		return siobroker.AsyncJob{}, false
	}
	return job, ok
}

// attribute fills in rec's signer and organisation, and times.Received, from the journal's
// record of a's request, when there is one (the request's basis is not read from it: the answer
// is then truncated of every field its service may lose).
func (l *LateAnswers) attribute(ctx context.Context, a routing.LateAnswer, rec *siobroker.JournalRecord, times *lateTimes) {
	if l.deps.Requests == nil || a.RequestID == "" {
		return
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.AppendLimit)
	defer cancel()
	recs, err := l.deps.Requests.Query(lctx, siobroker.JournalFilter{RequestID: a.RequestID, Kinds: []siobroker.JournalKind{siobroker.JournalRequest}, Limit: 1})
	if err != nil {
		l.deps.Logger.Warn("late answer journaled without its signer: the journal's request record cannot be read",
			append(reqlog.Attrs(a.MessageID, a.Key), "error", err)...)
		return
	}
	if len(recs) == 0 {
		return
	}
	req := recs[0]
	rec.SignerIIN, rec.Organisation = req.SignerIIN, req.Organisation
	if rec.MessageID == "" {
		rec.MessageID = req.MessageID
	}
	times.Received = req.At.In(siobroker.Astana)
}

// truncated returns the answer to journal: a's payload, less the fields the reply would have
// lost, and the names of those fields when any record had them.
func (l *LateAnswers) truncated(a routing.LateAnswer, job siobroker.AsyncJob, known bool) (json.RawMessage, []string, error) {
	fields := l.deps.Rights.TruncatedFields(a.Service)
	if known {
		if d := l.deps.Rights.DecideService(job.Query.Basis, a.Service, job.Query.Qualification()); d.Allowed && d.Access != siobroker.AccessTruncated {
			fields = nil
		}
	}
	if len(fields) == 0 {
		return a.Payload, nil, nil
	}
	var resp schemas.ServiceResponse
	if err := json.Unmarshal(a.Payload, &resp); err != nil {
		return nil, nil, fmt.Errorf("read late answer %s: %w", a.Key, err)
	}
	if !hasAny(resp.Result.Records, fields) {
		return a.Payload, nil, nil
	}
	resp.Result = truncate(resp.Result, fields)
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, nil, fmt.Errorf("encode late answer %s: %w", a.Key, err)
	}
	return out, fields, nil
}

func hasAny(records []siobroker.Record, fields []string) bool {
	for _, r := range records {
		for _, f := range r.Fields {
			if slices.Contains(fields, f.Name) {
				return true
			}
		}
	}
	return false
}
