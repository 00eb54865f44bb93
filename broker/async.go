package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/internal/tracing"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// AsyncStore keeps the requests of the asynchronous channel durably (sqlite.DB implements it).
type AsyncStore interface {
	CreateAsync(ctx context.Context, j siobroker.AsyncJob) error
	AsyncJob(ctx context.Context, requestID string) (siobroker.AsyncJob, bool, error)
	// PendingAsync lists the ON_DELIVERY jobs whose lease has run out by now, oldest first.
	PendingAsync(ctx context.Context, now time.Time) ([]siobroker.AsyncJob, error)
	CompleteAsync(ctx context.Context, requestID string, state siobroker.AsyncState, reason string, reply []byte, at time.Time) (bool, error)
	// LeaseAsync keeps the worker away from an ON_DELIVERY job until the given time, while its
	// late services are waited for.
	LeaseAsync(ctx context.Context, requestID string, until time.Time) (bool, error)
	// VoidLeases ends every lease in the store (ResumeEarlierRun) and says how many.
	VoidLeases(ctx context.Context) (int, error)
	// AsyncJobByMessage finds a job by its request's or its reply's messageId (AsyncChannel v10).
	AsyncJobByMessage(ctx context.Context, id string) (siobroker.AsyncJob, bool, error)
	// AsyncReplies lists the replies a getMessages hands out.
	AsyncReplies(ctx context.Context, m siobroker.AsyncMailbox) ([]siobroker.AsyncJob, error)
	// ReceiptAsync records the client's receipt of a reply (sendDeliveryNotification).
	ReceiptAsync(ctx context.Context, requestID string, state siobroker.AsyncState, at time.Time) (bool, error)
	// ForgetSync deletes the job of a synchronous request whose reply was journaled and given
	// out: it was stored only so that an interruption would not leave it unfinished.
	ForgetSync(ctx context.Context, requestID string) error
	// AsyncJobOfClient finds the job of the request a signer sent with a messageId.
	AsyncJobOfClient(ctx context.Context, signerIIN, messageID string) (siobroker.AsyncJob, bool, error)
}

// AsyncPipeline adapts Accept to the shape of Handle, for an HTTP handler of the asynchronous
// endpoint.
type AsyncPipeline struct{ B *Broker }

// Handle runs Accept.
func (p AsyncPipeline) Handle(ctx context.Context, body io.Reader, contentType string) (*Reply, Request, error) {
	return p.B.Accept(ctx, body, contentType)
}

// Accept runs one request of the asynchronous channel. The envelope is the synchronous one; its
// data decides what is asked:
//   - q:query: every check of Handle runs now (signature, replay, user, role, case rules, case
//     registry) and the request is journaled; the admitted work is stored ON_DELIVERY and the
//     signed ack (q:asyncStatus, state ON_DELIVERY, messageId the broker's id) returned at once.
//     The AsyncWorker routes it later.
//   - q:statusQuery: the state of the caller's own request, as a signed q:asyncStatus.
//   - q:fetchQuery: the signed reply of the caller's own request, exactly as stored; a
//     SIO-ASYNC-PENDING fault while there is none.
//
// An id that does not exist and an id of another signer give the same SIO-ASYNC-UNKNOWN fault.
// Refusals are journaled as Handle journals them.
func (b *Broker) Accept(ctx context.Context, body io.Reader, contentType string) (*Reply, Request, error) {
	seen := Request{RequestID: b.deps.NewID(), body: newBodyTap(body, b.cfg.Unauthenticated.PrefixBytes)}
	ctx = reqlog.With(ctx, "", seen.RequestID)
	received := b.deps.Clock.Now()
	reply, err := b.accept(ctx, seen.body, contentType, received, &seen)
	if err != nil {
		b.journalRefusal(ctx, seen, err)
	}
	return reply, seen, err
}

func (b *Broker) accept(ctx context.Context, body io.Reader, contentType string, received time.Time, seen *Request) (*Reply, error) {
	if b.deps.Async == nil {
		return nil, siobroker.Errorf(siobroker.CodeUnavailable, "the asynchronous channel is not enabled on this broker")
	}
	doc, raw, op, err := soap.ReadAsyncChannelEnvelope(body, contentType, b.cfg.Limits)
	seen.Operation = op
	if err != nil {
		return nil, err
	}
	if op != "" {
		return b.asyncChannelCall(ctx, doc, raw, received, seen)
	}
	a, err := b.authenticateRead(ctx, doc, raw, seen)
	if err != nil {
		return nil, err
	}
	ctx = reqlog.With(ctx, a.info.MessageID, seen.RequestID)
	if soap.IsAsyncQuery(a.data) {
		return b.lookup(ctx, a, seen)
	}
	job, err := b.takeAsync(ctx, a, seen, received, "")
	if err != nil {
		return nil, err
	}
	st := soap.AsyncStatus{
		RequestMessageID: a.info.MessageID, MessageID: job.RequestID, CorrelationID: a.info.MessageID,
		State:   siobroker.AsyncOnDelivery,
		Message: fmt.Sprintf("accepted for delivery; ask for its status or fetch its result by messageId %s", job.RequestID),
	}
	out, err := b.signStatus(job.RequestID, a, st)
	if err != nil {
		return nil, err
	}
	b.deps.Logger.InfoContext(ctx, "asynchronous request accepted", reqlog.Attrs(a.info.MessageID, job.RequestID)...)
	return &Reply{Bytes: out, MessageID: job.RequestID, RequestID: a.info.MessageID, SignerIIN: a.verified.SignerIIN}, nil
}

// takeAsync takes an asynchronous request, on either contract (channel): the transport must be
// up, the signer within its requests in flight, the query valid and fresh, and every check of a
// synchronous request pass; then it is stored ON_DELIVERY and the worker woken. A request refused
// for a passing reason of the broker's own is forgotten by the replay defence, to be retried.
// The signer's slot goes with the stored request, to the worker (asyncSlots); a refused request
// releases it here.
func (b *Broker) takeAsync(ctx context.Context, a authenticated, seen *Request, received time.Time, channel string) (job siobroker.AsyncJob, err error) {
	if b.deps.TransportReady != nil {
		if err := b.deps.TransportReady(); err != nil {
			return siobroker.AsyncJob{}, err
		}
	}
	release, err := b.holdSigner(a.verified.SignerIIN)
	if err != nil {
		return siobroker.AsyncJob{}, err
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	q, err := parseQuery(a)
	if err != nil {
		return siobroker.AsyncJob{}, err
	}
	user, digest, err := b.recordRequest(ctx, a, seen, received)
	if err == nil {
		job, err = b.storeAsync(ctx, a, q, user, seen, received, channel, release)
	}
	b.releaseIfUnavailable(ctx, err, a.info.MessageID, digest)
	return job, err
}

// storeAsync admits the request of the authorised user, stores it ON_DELIVERY with its signer's slot (release) and
// wakes the worker. On error the slot is still the caller's.
func (b *Broker) storeAsync(ctx context.Context, a authenticated, q siobroker.Query, user siobroker.User, seen *Request, received time.Time,
	channel string, release func()) (siobroker.AsyncJob, error) {
	if err := b.admit(ctx, a.info, &q, a.verified, user, seen, received); err != nil {
		return siobroker.AsyncJob{}, err
	}
	job := b.jobOf(*seen, a.info, q, received)
	job.State, job.Updated, job.Channel = siobroker.AsyncOnDelivery, received, channel
	job.TraceParent = traceParent(ctx)
	b.asyncSlots.hold(job.RequestID, release)
	if err := b.deps.Async.CreateAsync(ctx, job); err != nil {
		b.asyncSlots.drop(job.RequestID)
		return job, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot store the request now; retry later")
	}
	b.asyncSlots.stored(job.RequestID)
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return job, nil
}

// lookup answers a q:statusQuery or q:fetchQuery.
func (b *Broker) lookup(ctx context.Context, a authenticated, seen *Request) (*Reply, error) {
	kind, id, err := soap.ParseAsyncQuery(a.data)
	if err != nil {
		return nil, err
	}
	digest, err := b.checkReplay(ctx, a.info, a.verified, a.now, "")
	if err != nil {
		return nil, err
	}
	reply, err := b.answerLookup(ctx, a, seen, kind, id)
	b.releaseIfUnavailable(ctx, err, a.info.MessageID, digest)
	return reply, err
}

func (b *Broker) answerLookup(ctx context.Context, a authenticated, seen *Request, kind, id string) (*Reply, error) {
	user, err := b.deps.Users.Authorize(ctx, a.verified.SignerIIN)
	if err != nil {
		return nil, err
	}
	seen.Role, seen.Organisation = user.Role, user.Organisation
	job, ok, err := b.deps.Async.AsyncJob(ctx, id)
	if err != nil {
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot read its requests now; retry later")
	}
	if !ok || job.SignerIIN != a.verified.SignerIIN {
		// One answer for both, so that ids do not leak between signers.
		return nil, siobroker.Errorf(siobroker.CodeAsyncUnknown, "no asynchronous request %q of this signer", id)
	}
	if kind == soap.AsyncFetchQuery {
		switch {
		case job.State == siobroker.AsyncStopped:
			return nil, siobroker.Errorf(siobroker.CodeAsyncPending, "the delivery of %s was stopped by the operator (%s); no result will be produced", id, job.Reason)
		case len(job.Reply) == 0:
			return nil, siobroker.Errorf(siobroker.CodeAsyncPending, "the result of %s is not ready (%s); ask again later", id, job.State)
		}
		out := job.Reply
		if signing.Placement(job.Placement) == signing.PlacementWSSETokenTimestamp {
			if out, err = b.resign(job.Reply, signing.PlacementWSSETokenTimestamp); err != nil {
				return nil, err
			}
		}
		return &Reply{Bytes: out, MessageID: job.RequestID, RequestID: a.info.MessageID, SignerIIN: job.SignerIIN}, nil
	}
	st := soap.AsyncStatus{
		RequestMessageID: a.info.MessageID, MessageID: job.RequestID, CorrelationID: job.MessageID,
		State: job.State, Message: stateMessage(job),
	}
	out, err := b.signStatus(seen.RequestID, a, st)
	if err != nil {
		return nil, err
	}
	return &Reply{Bytes: out, MessageID: seen.RequestID, RequestID: a.info.MessageID, SignerIIN: a.verified.SignerIIN}, nil
}

// resign signs a stored reply anew in placement p: its wsse:Security header is replaced. A
// signature with a wsu:Timestamp expires ReplyTimestampTTL after it was made, and WSS4J refuses a
// reply fetched later; the Body is unchanged, and the journal keeps the reply as first signed.
func (b *Broker) resign(reply []byte, p signing.Placement) ([]byte, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(reply); err != nil {
		return nil, fmt.Errorf("stored reply: %w", err)
	}
	if header := soap.Header(doc); header != nil {
		for _, c := range header.ChildElements() {
			if c.Tag == "Security" && c.NamespaceURI() == schemas.NSWSSE {
				header.RemoveChild(c)
			}
		}
	}
	return b.signDocument(doc, p, "the stored reply")
}

func stateMessage(j siobroker.AsyncJob) string {
	switch j.State {
	case siobroker.AsyncOnDelivery:
		return "on delivery since " + siobroker.FormatTime(j.Received)
	case siobroker.AsyncDelivered:
		return "delivered " + siobroker.FormatTime(j.Updated) + "; fetch the result"
	case siobroker.AsyncNotDelivered:
		return "not delivered: " + j.Reason + "; the signed reply can be fetched"
	case siobroker.AsyncStopped:
		return "delivery stopped by the operator: " + j.Reason
	}
	return string(j.State)
}

// signStatus signs a reply carrying q:asyncStatus in the request's placement. Its responseInfo
// carries the state as the status code.
func (b *Broker) signStatus(messageID string, a authenticated, st soap.AsyncStatus) ([]byte, error) {
	doc := soap.NewAsyncStatusResponse(soap.ResponseInfo{
		MessageID: messageID, CorrelationID: a.info.MessageID, ResponseDate: b.deps.Clock.Now(),
		StatusCode: string(st.State), StatusMessage: st.Message, SessionID: a.info.SessionID,
	}, st)
	return b.signDocument(doc, a.verified.Placement, "asynchronous status "+messageID)
}

// signDocument signs doc in placement p and serialises it; what names it in errors.
func (b *Broker) signDocument(doc *etree.Document, p signing.Placement, what string) ([]byte, error) {
	if err := b.deps.Signer.Sign(doc, p); err != nil {
		return nil, fmt.Errorf("sign %s: %w", what, err)
	}
	out, err := soap.Serialize(doc)
	if err != nil {
		return nil, fmt.Errorf("serialize %s: %w", what, err)
	}
	return out, nil
}

// ResumeEarlierRun voids the leases an earlier run of the broker left on its requests on
// delivery, so that the AsyncWorker completes them at its first scan: their holders (the
// synchronous call that was answering, a wait for late services) went with that run. It returns
// how many it voided. Call it at start before the broker takes a request: a request held by
// this run's own call keeps its lease. (The worker's first scan took leased requests itself, and
// one admitted between the start of the HTTP server and that scan was asked of its services by
// its call and by the worker both.)
func (b *Broker) ResumeEarlierRun(ctx context.Context) (int, error) {
	if b.deps.Async == nil {
		return 0, nil
	}
	return b.deps.Async.VoidLeases(ctx)
}

// AsyncWorker processes the ON_DELIVERY requests of the asynchronous channel with bounded
// concurrency: it routes each (Broker.Process), stores the signed reply and sets DELIVERED, or
// NOT_DELIVERED when no service could be answered. With Config.AsyncTimeout set, the services
// that miss their timeout are waited for in the background up to AsyncTimeout, as for a
// synchronous request, and the reply is stored once they are in. At start it resumes every
// ON_DELIVERY request left by an earlier run, once Broker.ResumeEarlierRun voided their leases.
type AsyncWorker struct {
	Broker      *Broker
	Concurrency int           // default 8
	Poll        time.Duration // how often the store is scanned besides wake-ups; default 5s
}

// Run works until ctx ends, then waits for the requests in flight. A request interrupted by the
// end of ctx stays ON_DELIVERY, and the next run resumes it.
func (w *AsyncWorker) Run(ctx context.Context) {
	b := w.Broker
	n, poll := w.Concurrency, w.Poll
	if n <= 0 {
		n = 8
	}
	if poll <= 0 {
		poll = 5 * time.Second
	}
	sem := make(chan struct{}, n)
	var mu sync.Mutex
	inflight := map[string]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		scan := b.asyncSlots.beginScan()
		jobs, err := b.deps.Async.PendingAsync(ctx, b.deps.Clock.Now())
		if err != nil && ctx.Err() == nil {
			b.deps.Logger.Warn("listing asynchronous requests failed", "error", err)
		}
		if err == nil {
			b.asyncSlots.releaseUnlisted(scan, jobs)
		}
		for _, job := range jobs {
			mu.Lock()
			busy := inflight[job.RequestID]
			if !busy {
				inflight[job.RequestID] = true
			}
			mu.Unlock()
			if busy {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				defer func() {
					<-sem
					mu.Lock()
					delete(inflight, job.RequestID)
					mu.Unlock()
				}()
				w.process(ctx, job)
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		case <-ticker.C:
		}
	}
}

// process runs job once. Whatever comes of the run (the reply stored, a wait for late services
// started, a failure to retry at a later scan), it ends the job's hold on its signer's slot
// (asyncSlots): a retry, the late wait and a request resumed after a restart hold none, since the
// slot bounds what a signer queues in front of the worker, and a stalled service must not lock
// its signer out of the others for up to Config.AsyncTimeout.
func (w *AsyncWorker) process(ctx context.Context, job siobroker.AsyncJob) {
	b := w.Broker
	defer b.asyncSlots.release(job.RequestID)
	// The listing may predate the end of an earlier run of this same job, which released it just
	// before this one claimed it, finished or leased to a wait for late services: read the state
	// again now that the job is claimed.
	current, ok, err := b.deps.Async.AsyncJob(ctx, job.RequestID)
	if err != nil || !ok || current.State != siobroker.AsyncOnDelivery {
		return
	}
	if current.LeaseUntil.After(b.deps.Clock.Now()) {
		return
	}
	ids := reqlog.Attrs(job.Info.MessageID, job.RequestID)
	if out, exchanges, ok := b.journaledReply(ctx, job); ok {
		// An earlier run journaled the complete reply and stopped before it settled the job.
		b.recordHeldLate(ctx, job, exchanges)
		w.settle(ctx, job, &Reply{Bytes: out, Services: results(exchanges)}, ids)
		return
	}
	reply, err := b.processAsync(continueTrace(ctx, job), job)
	if ctx.Err() != nil {
		b.deps.Logger.Info("asynchronous request interrupted; it resumes at the next start", ids...)
		return
	}
	if err != nil {
		b.deps.Logger.Error("asynchronous request failed; it will be retried", append(ids, "error", err)...)
		return
	}
	if reply == nil {
		return // waiting for late services in the background
	}
	w.settle(ctx, job, reply, ids)
}

// settle stores the reply of a request the worker completed, and its final state.
func (w *AsyncWorker) settle(ctx context.Context, job siobroker.AsyncJob, reply *Reply, ids []any) {
	b := w.Broker
	state, reason := deliveryState(reply.Services)
	done, err := b.deps.Async.CompleteAsync(ctx, job.RequestID, state, reason, reply.Bytes, b.deps.Clock.Now())
	switch {
	case err != nil:
		b.deps.Logger.Error("asynchronous reply not stored; it will be retried", append(ids, "error", err)...)
	case !done:
		b.deps.Logger.Info("asynchronous request was stopped meanwhile; reply kept only in the journal", ids...)
	default:
		b.deps.Logger.Info("asynchronous request answered", append(ids, "state", state)...)
	}
}

// journaledReply finds the complete reply an earlier run of job journaled: a reply record after
// an exchange record of every service the query asked. It returns the reply and the outcomes the
// exchange records give. A broker killed after journaling the reply and before storing it
// completes the request with it rather than with a second reply; a journal that cannot be read
// only costs the completion again (its outcomes are not recorded twice).
func (b *Broker) journaledReply(ctx context.Context, job siobroker.AsyncJob) ([]byte, []exchange, bool) {
	recs, err := b.deps.Journal.Query(ctx, siobroker.JournalFilter{RequestID: job.RequestID,
		Kinds: []siobroker.JournalKind{siobroker.JournalExchange, siobroker.JournalReply}})
	if err != nil {
		b.deps.Logger.Warn("the journal cannot be read; the request is completed again", append(reqlog.Attrs(job.Info.MessageID, job.RequestID), "error", err)...)
		return nil, nil, false
	}
	outcomes := map[int]exchange{}
	var reply []byte
	for _, r := range recs {
		switch r.Kind {
		case siobroker.JournalExchange:
			outcomes[r.Service] = outcomeOf(r)
			reply = nil // a reply before the last outcome is a partial one
		case siobroker.JournalReply:
			reply = r.Data
		}
	}
	if reply == nil {
		return nil, nil, false
	}
	exchanges := make([]exchange, 0, len(job.Query.Services))
	for _, svc := range job.Query.Services {
		o, ok := outcomes[svc]
		if !ok {
			return nil, nil, false
		}
		exchanges = append(exchanges, o)
	}
	return reply, exchanges, true
}

// outcomeOf reads a service's outcome back from its exchange record: its status and reason, and
// whether an adapter answered (AnsweredAt set).
func outcomeOf(r siobroker.JournalRecord) exchange {
	var d struct {
		Times   siobroker.ExchangeTimes `json:"times"`
		Status  siobroker.ResultStatus  `json:"status"`
		Reason  string                  `json:"reason"`
		Adapter string                  `json:"adapter"`
	}
	_ = json.Unmarshal(r.Data, &d) // a record the broker wrote; an unreadable one reads as no answer
	return exchange{Result: siobroker.ServiceResult{Service: r.Service, Status: d.Status, Reason: d.Reason},
		Adapter: d.Adapter, DispatchedAt: d.Times.Dispatched, AnsweredAt: d.Times.Answered}
}

// deliveryState is NOT_DELIVERED when every service ended in error or timeout, else DELIVERED.
func deliveryState(results []siobroker.ServiceResult) (siobroker.AsyncState, string) {
	for _, r := range results {
		if r.Status != siobroker.StatusError && r.Status != siobroker.StatusTimeout {
			return siobroker.AsyncDelivered, ""
		}
	}
	return siobroker.AsyncNotDelivered, fmt.Sprintf("none of the %d services could be answered", len(results))
}

// traceParent is the W3C traceparent of ctx's span, kept with a request the worker may complete
// (siobroker.AsyncJob.TraceParent); "" when ctx has none.
func traceParent(ctx context.Context) string {
	meta := map[string]string{}
	tracing.Inject(ctx, meta)
	return meta[tracing.Header]
}

// continueTrace is ctx under the span of the call that took job, when it kept one: the services
// the worker asks are then in the request's trace, also after a restart.
func continueTrace(ctx context.Context, job siobroker.AsyncJob) context.Context {
	if job.TraceParent == "" {
		return ctx
	}
	return tracing.Extract(ctx, map[string]string{tracing.Header: job.TraceParent})
}
