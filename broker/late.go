package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/signing"
)

// A synchronous request whose services do not all answer within their (synchronous) timeouts is
// answered with what has arrived, as always; with Config.AsyncTimeout set, the broker then keeps
// waiting in the background for the late services, up to AsyncTimeout, and stores the complete
// signed reply as a DELIVERED asynchronous request under the reply's messageId. The reply's
// status message says so. The request is stored ON_DELIVERY, leased to the waiter, as soon as the
// partial reply is ready, so that a broker restarted meanwhile resumes it (from the start: the
// services are asked again).

// late tracks the background waits, so that Shutdown can end them.
type late struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool // no wait is started after Shutdown
	wg     sync.WaitGroup
}

// start runs f as a background wait, unless Shutdown has begun.
func (l *late) start(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Go(f)
	return true
}

func (l *late) init() {
	l.once.Do(func() { l.ctx, l.cancel = context.WithCancel(context.Background()) })
}

// Shutdown ends the background waits for late services and waits for them to return. Their
// requests stay ON_DELIVERY, and the AsyncWorker of the next start resumes them. Call it before
// the transport is closed.
func (b *Broker) Shutdown() {
	b.late.init()
	b.late.mu.Lock()
	b.late.closed = true
	b.late.cancel()
	b.late.mu.Unlock()
	b.late.wg.Wait()
}

// processSync is Process for the synchronous path when late services are waited for. The
// request is held ON_DELIVERY from its admission (holdSync); when a service misses its timeout,
// the hold is extended to the background wait, which completes the request.
func (b *Broker) processSync(ctx context.Context, job siobroker.AsyncJob) (*Reply, error) {
	b.late.init()
	if b.late.ctx.Err() != nil {
		reply, err := b.process(ctx, job, true)
		b.settleSync(ctx, job, reply, err)
		return reply, err
	}
	seen := seenOf(job)
	v := &signing.Verified{SignerIIN: job.SignerIIN, Placement: seen.Placement}
	ids := reqlog.Attrs(job.Info.MessageID, job.RequestID)
	exchanges, pending, wait := b.routeLate(ctx, job, true)
	note := ""
	if wait != nil {
		until := b.deps.Clock.Now().Add(b.cfg.AsyncTimeout + time.Minute)
		if _, err := b.deps.Async.LeaseAsync(ctx, job.RequestID, until); err != nil {
			b.deps.Logger.Error("request not leased to its wait for late services; the worker may route it again", append(ids, "error", err)...)
		}
		note = fmt.Sprintf("; the broker keeps waiting for the late services for up to %s: fetch the complete result on the asynchronous channel by messageId %s",
			b.cfg.AsyncTimeout, job.RequestID)
	}
	out, err := b.reply(job.RequestID, job.Info, job.Query, v, results(exchanges), note)
	settled := false
	if err == nil {
		var jerr error
		if settled, jerr = b.journalAnswered(ctx, job, seen, exchanges, out, pending, wait == nil); jerr != nil {
			err = siobroker.Wrap(siobroker.CodeUnavailable, jerr, "the broker cannot journal the reply now; retry later")
		}
	}
	if wait == nil {
		if err == nil {
			b.recordHeldLate(ctx, job, exchanges)
		}
		b.settleSync(ctx, job, &Reply{settled: settled}, err)
	} else if !b.late.start(func() { b.completeLate(job, seen, v, wait) }) {
		// The complete reply is produced even if this one could not be given out: the request
		// was admitted and journaled, and its stored job says where the result will be.
		b.deps.Logger.Info("shutting down: the late services resume at the next start", ids...)
	}
	if err != nil {
		return nil, err
	}
	return &Reply{Bytes: out, MessageID: job.RequestID, RequestID: job.Info.MessageID, SignerIIN: job.SignerIIN, Services: results(exchanges)}, nil
}

// seenOf is the Request of an admitted, stored request, for its journal records.
func seenOf(job siobroker.AsyncJob) Request {
	return Request{
		RequestID: job.RequestID, Organisation: job.Organisation, MessageID: job.Info.MessageID, SenderID: job.Info.SenderID,
		SignerIIN: job.SignerIIN, Role: job.Role, Placement: signing.Placement(job.Placement), requestJournaled: true,
	}
}

// processAsync is Process for the AsyncWorker when late services are waited for: a service that
// does not answer within its (synchronous) timeout is waited for in the background, up to
// AsyncTimeout, as the late services of a synchronous request are, and the job is leased to that
// wait. An asynchronous request accepted before an outage of RabbitMQ or of an adapter that
// outlasts a service's timeout is therefore completed with the answers once they come, not
// ended NOT_DELIVERED while they are still on their way; and the wait does not hold one of the
// worker's slots. It returns the reply when every service answered in time, or nil when the
// request was handed to a background wait (or, with ctx ended, interrupted: it stays
// ON_DELIVERY and is resumed).
func (b *Broker) processAsync(ctx context.Context, job siobroker.AsyncJob) (*Reply, error) {
	b.late.init()
	if b.cfg.AsyncTimeout <= 0 || b.late.ctx.Err() != nil {
		return b.Process(ctx, job)
	}
	seen := seenOf(job)
	v := &signing.Verified{SignerIIN: job.SignerIIN, Placement: seen.Placement}
	exchanges, _, wait := b.routeLate(ctx, job, false)
	if ctx.Err() != nil {
		return nil, nil
	}
	if wait == nil {
		out, err := b.reply(job.RequestID, job.Info, job.Query, v, results(exchanges), "")
		if err != nil {
			return nil, err
		}
		if err := b.journalReply(ctx, seen, job.Received, exchanges, out, nil); err != nil {
			return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot journal the reply now; retry later")
		}
		b.recordHeldLate(ctx, job, exchanges)
		return &Reply{Bytes: out, MessageID: job.RequestID, RequestID: job.Info.MessageID, SignerIIN: job.SignerIIN, Services: results(exchanges)}, nil
	}
	until := b.deps.Clock.Now().Add(b.cfg.AsyncTimeout + time.Minute)
	if _, err := b.deps.Async.LeaseAsync(ctx, job.RequestID, until); err != nil {
		// Without the lease the worker would route the request again at its next scan; the
		// copies are recognised by their correlation keys, so this costs work, not answers.
		b.deps.Logger.Error("asynchronous request not leased to its wait for late services", "request_id", job.RequestID, "error", err)
	}
	if !b.late.start(func() { b.completeLate(job, seen, v, wait) }) {
		b.deps.Logger.Info("shutting down: the asynchronous request resumes at the next start", "request_id", job.RequestID)
		return nil, nil
	}
	b.deps.Logger.Info("asynchronous request waits for late services", "request_id", job.RequestID, "until", siobroker.FormatTime(until))
	return nil, nil
}

func results(exchanges []exchange) []siobroker.ServiceResult {
	out := make([]siobroker.ServiceResult, len(exchanges))
	for i, e := range exchanges {
		out[i] = e.Result
	}
	return out
}

// completeLate waits for the late services, then signs, journals and stores the complete reply.
func (b *Broker) completeLate(job siobroker.AsyncJob, seen Request, v *signing.Verified, wait func() []exchange) {
	exchanges := wait()
	ctx := reqlog.With(b.late.ctx, job.Info.MessageID, job.RequestID)
	ids := reqlog.Attrs(job.Info.MessageID, job.RequestID)
	if ctx.Err() != nil {
		b.deps.Logger.Info("waiting for late services interrupted; the request resumes at the next start", ids...)
		return
	}
	b.logResults(ctx, job.RequestID, job.Info, exchanges)
	out, err := b.reply(job.RequestID, job.Info, job.Query, v, results(exchanges), "")
	if err == nil {
		err = b.journalReply(ctx, seen, job.Received, exchanges, out, nil)
	}
	if err != nil {
		// The lease runs out, and the worker then completes the request from the answers held.
		b.deps.Logger.Error("complete reply after late services failed; the worker will retry", append(ids, "error", err)...)
		return
	}
	b.recordHeldLate(ctx, job, exchanges)
	state, reason := deliveryState(results(exchanges))
	if _, err := b.deps.Async.CompleteAsync(ctx, job.RequestID, state, reason, out, b.deps.Clock.Now()); err != nil {
		b.deps.Logger.Error("complete reply after late services not stored", append(ids, "error", err)...)
		return
	}
	b.deps.Logger.Info("complete reply stored after late services", append(ids, "state", state)...)
}

// routeLate is route for the synchronous path: every allowed service is dispatched with the
// asynchronous timeout, and waited for up to its synchronous one. A service that misses it is
// answered as timed out; wait, nil when none missed, then gives every outcome once they are in.
// Whether a service missed its limit is the dispatcher's verdict (DispatchLate's overdue), so
// that the reply and the service's counts agree on it. first is true for the synchronous call
// that admitted the request (routing.FirstDispatch), false for the worker's.
func (b *Broker) routeLate(ctx context.Context, job siobroker.AsyncJob, first bool) (res []exchange, pending []int, wait func() []exchange) {
	res, decisions, reqs, slots := b.decide(job.RequestID, job.Info, job.Query, job.SignerIIN)
	chans := make([]chan exchange, len(reqs))
	overdue := make([]chan struct{}, len(reqs))
	start := time.Now()
	defer b.observe(StageServices, start) // the synchronous wait; the background one is not a request's time
	// The waits outlive the request's call, so they run under the broker's own context, which
	// carries only the request's span (its trace), not its cancellation.
	lateCtx := trace.ContextWithSpanContext(b.late.ctx, trace.SpanContextFromContext(ctx))
	if first {
		lateCtx = routing.FirstDispatch(lateCtx, job.RequestID)
	}
	for j, req := range reqs {
		ch, over := make(chan exchange, 1), make(chan struct{})
		chans[j], overdue[j] = ch, over
		go func() {
			o := b.deps.Dispatcher.DispatchLate(lateCtx, req, b.cfg.Timeout(req.Service), b.cfg.AsyncTimeout, func() { close(over) })
			ch <- b.finish(o, decisions[slots[j]])
		}()
	}
	var missed []int
	early := make(map[int]exchange) // outcomes of missed services that came before their wait was asked for
	for j, req := range reqs {
		limit := b.cfg.Timeout(req.Service)
		select {
		case o := <-chans[j]:
			if !o.Late {
				res[slots[j]] = o
				continue
			}
			early[j] = o // its limit passed first (Late): the client is told so, as the counts are
			res[slots[j]] = timedOut(req.Service, fmt.Sprintf("no answer within %s", limit))
		case <-overdue[j]:
			res[slots[j]] = timedOut(req.Service, fmt.Sprintf("no answer within %s", limit))
		case <-ctx.Done():
			res[slots[j]] = timedOut(req.Service, "the request was cancelled before the answer came")
		}
		missed = append(missed, j)
	}
	b.logResults(ctx, job.RequestID, job.Info, res)
	if len(missed) == 0 {
		return res, nil, nil
	}
	full := make([]exchange, len(res))
	copy(full, res)
	for _, j := range missed {
		pending = append(pending, reqs[j].Service)
	}
	return res, pending, func() []exchange {
		for _, j := range missed {
			if o, ok := early[j]; ok {
				full[slots[j]] = o
				continue
			}
			full[slots[j]] = <-chans[j]
		}
		return full
	}
}

// recordHeldLate records as late the answers held (Deps.Answers) for the services whose outcome
// was just recorded without an answer: they came after the wait for them had ended, while the
// outcome was being recorded, and the dispatcher left them to this request's completion.
func (b *Broker) recordHeldLate(ctx context.Context, job siobroker.AsyncJob, exchanges []exchange) {
	if b.deps.Answers == nil || b.deps.Late == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, e := range exchanges {
		if !unanswered(e) {
			continue
		}
		key := routing.CorrelationKey(job.RequestID, e.Result.Service)
		payload, ok, err := b.deps.Answers.Answer(ctx, key)
		if err != nil || !ok {
			continue // none came; or, unreadable, it reaches the journal when it is delivered again
		}
		a, _ := routing.NewLateAnswer(key, job.Info.MessageID, payload, b.deps.Clock.Now())
		if _, err := b.deps.Late(ctx, a); err != nil {
			b.deps.Logger.Error("late answer held but not journaled", append(reqlog.Attrs(job.Info.MessageID, key), "error", err)...)
		}
	}
}

// mayHoldLate reports whether recordHeldLate may have anything to record of exchanges.
func (b *Broker) mayHoldLate(exchanges []exchange) bool {
	return b.deps.Answers != nil && b.deps.Late != nil && slices.ContainsFunc(exchanges, unanswered)
}

// unanswered reports whether e's outcome was recorded without an answer: a late one may be held.
func unanswered(e exchange) bool {
	return e.Result.Status == siobroker.StatusTimeout || (e.Result.Status == siobroker.StatusError && e.AnsweredAt.IsZero())
}

func timedOut(service int, message string) exchange {
	return exchange{Result: siobroker.ServiceResult{Service: service, Status: siobroker.StatusTimeout,
		Reason: siobroker.ReasonTimeout, Message: message}}
}
