package middleware

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// ledgerPoll bounds the wait between two looks at a key another process holds.
const (
	ledgerPollMin = 20 * time.Millisecond
	ledgerPollMax = 500 * time.Millisecond
)

// ledgerCallLimit bounds one call to the ledger.
const ledgerCallLimit = 5 * time.Second

// Ledger claims every request in l before the handlers below ask its source, so that of the
// adapter processes sharing l one asks it (see siobroker.Ledger):
//
//   - taken: the handlers below run under the claim, which is held until Publish is done with
//     their answer. A final answer that went out is recorded answered; otherwise (no answer, a
//     failed delivery, a failed publish, a provisional answer) the claim is released, so that a
//     copy is asked again.
//   - answered by some process before: the copy is answered again from the answer the ledger
//     kept (siobroker.Ledger.Answer), without asking the source: a broker that crashed and asks
//     again gets its answer rather than a timeout. When the ledger has forgotten that answer
//     (older than its retention), the copy is not answered: it goes to the dead-letter topic of
//     poison with why (dropped with a log line where there is none). When the answer cannot be
//     read, the broker is told at once (ADAPTER_ERROR, provisional), as below.
//   - held by another process until the deadline: the copy is dropped (nobody waits any longer).
//   - the ledger cannot be read: whether another process asked the source already cannot be
//     known, so the source is not asked, and the broker is told at once (ADAPTER_ERROR, a
//     provisional answer) rather than left to time out.
//
// It must be below Deadline: the wait for another process ends at the request's deadline.
func Ledger(l siobroker.Ledger, adapter Adapter, poison Poison, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			req, err := request(msg)
			if err != nil {
				return nil, err
			}
			log := requestLog(logger, req)
			ctx := msg.Context()
			key := schemas.CorrelationKey(req.RequestID, req.Service)
			claim, state, err := take(ctx, l, key)
			switch {
			case err != nil:
				log.Error("the ledger cannot be read; the source is not asked", "service", req.Service, "error", err)
				return one(adapter.Provisional(req, errorResult(req.Service,
					"the adapter cannot tell whether this request was answered before; retry later")))
			case state == siobroker.LedgerAnswered:
				return again(ctx, l, key, msg, req, adapter, poison, log)
			case state == siobroker.LedgerBusy:
				log.Warn("another adapter process held the request until its deadline; the copy is dropped", "service", req.Service)
				return nil, nil
			}
			answers, err := h(msg)
			if err != nil || len(answers) == 0 {
				claim.Release()
				return answers, err
			}
			last := answers[len(answers)-1]
			if !onSettled(last, func(published bool) { end(ctx, log, req, claim, answerOf(last), last.Payload, published) }) {
				claim.Release()
			}
			return answers, nil
		}
	}
}

// again answers a copy of req, which some adapter process answered before, from the answer the
// ledger kept: a new message with the same payload, to req's reply topic.
func again(ctx context.Context, l siobroker.Ledger, key string, msg *message.Message, req schemas.ServiceRequest,
	adapter Adapter, poison Poison, log *slog.Logger) ([]*message.Message, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerCallLimit)
	rec, err := l.Answer(lctx, key)
	cancel()
	var resp schemas.ServiceResponse
	if err == nil && rec.Payload != nil {
		if err = json.Unmarshal(rec.Payload, &resp); err == nil && (resp.RequestID != req.RequestID || resp.Service != req.Service) {
			err = fmt.Errorf("the ledger's answer is to %s, not to this request", schemas.CorrelationKey(resp.RequestID, resp.Service))
		}
	}
	switch {
	case err != nil:
		log.Error("redelivered request answered before, but its answer cannot be read from the ledger; the source is not asked",
			"service", req.Service, "error", err)
		return one(adapter.Provisional(req, errorResult(req.Service,
			"the adapter cannot read the answer it gave this request before; retry later")))
	case rec.Payload == nil:
		reason := schemas.DeadReason{Category: schemas.DeadAnswerForgotten, Service: req.Service}
		if !rec.AnsweredAt.IsZero() { // else the row itself went between the two looks
			reason.AnsweredBy, reason.AnsweredAt = rec.Owner, rec.AnsweredAt
		}
		return nil, poison.put(msg, schemas.ServiceTopic(req.Service), log.With("service", req.Service),
			"redelivered request whose earlier answer was forgotten", reason)
	}
	log.Info("redelivered request answered again from the answer the ledger kept; the source is not asked",
		"service", req.Service, "answered_by", rec.Owner)
	return one(newAnswer(req, resp, true))
}

// end ends claim once Publish is done with a, whose message carried payload: recorded answered,
// with payload, when a was a final answer that went out, released otherwise. The record is not
// cut short by ctx, the request's: the answer is out, and a copy reaching another process would
// be asked again.
func end(ctx context.Context, log *slog.Logger, req schemas.ServiceRequest, claim siobroker.LedgerClaim, a *answer, payload []byte, published bool) {
	defer claim.Release() // a no-op once Answered
	if !published || !a.final {
		return
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerCallLimit)
	defer cancel()
	if err := claim.Answered(lctx, a.resp.AnsweredAt, payload); err != nil {
		// The answer is out; a copy reaching another process would be asked again.
		log.Warn("answer not recorded in the ledger", "service", req.Service, "error", err)
	}
}

// take claims key in l, waiting while another process holds it, until ctx ends (the request's
// deadline: nobody waits for the answer after it). It returns the claim, or nil with
// LedgerAnswered, or nil with LedgerBusy when the wait ended first. A call to the ledger is not
// cut short by ctx: a copy that comes after the deadline is still looked up.
func take(ctx context.Context, l siobroker.Ledger, key string) (siobroker.LedgerClaim, siobroker.LedgerState, error) {
	wait := ledgerPollMin
	for {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerCallLimit)
		claim, state, err := l.Take(lctx, key)
		cancel()
		if err != nil || state != siobroker.LedgerBusy {
			return claim, state, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, siobroker.LedgerBusy, nil
		case <-t.C:
		}
		wait = min(2*wait, ledgerPollMax)
	}
}
