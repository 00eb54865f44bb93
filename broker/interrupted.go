package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/reqlog"
)

// admissionLimit bounds how long a request may take from its replay marks to its acceptance or
// refusal, the background retries of a refusal the journal would not take (backgroundRetryLimit)
// included: its checks, the case registry's answer included, end well within it. An admission
// older than this was refused, or interrupted (CloseInterrupted tells which).
const admissionLimit = 3 * backgroundRetryLimit

// CloseStaleAdmissions is CloseInterrupted for the admissions older than admissionLimit: run
// hourly, it ends those of refused requests, whose replay marks can then be forgotten.
func (b *Broker) CloseStaleAdmissions(ctx context.Context) (int, error) {
	return b.CloseInterrupted(ctx, b.deps.Clock.Now().Add(-admissionLimit))
}

// interruptedMessage is the refusal journaled for a request a stopped broker left unadmitted.
const interruptedMessage = "the broker stopped before the request was accepted; it was not served, and may be retried as it was sent"

// CloseInterrupted ends the admissions recorded by before (siobroker.ReplayMark): a request whose
// refusal or reply is journaled, or that was stored for delivery, only has its admission ended. A
// request with neither was interrupted between its replay marks and its acceptance (the broker
// stopped); it is journaled as refused (SIO-UNAVAILABLE), so that the journal holds an outcome
// of every request it holds, and its marks are forgotten, so that the client's retry as sent is
// accepted. At start, before anything is served, before is the start; later, an hourly sweep
// ends the admissions of refused requests that are older than admissionLimit. It returns how
// many requests it journaled as interrupted.
func (b *Broker) CloseInterrupted(ctx context.Context, before time.Time) (int, error) {
	marks, err := b.deps.Replay.Admissions(ctx, before)
	if err != nil {
		return 0, fmt.Errorf("close interrupted requests: %w", err)
	}
	closed := 0
	for _, m := range marks {
		interrupted, organisation, err := b.interrupted(ctx, m.RequestID)
		if err != nil {
			return closed, fmt.Errorf("close interrupted request %s: %w", m.RequestID, err)
		}
		if !interrupted {
			if err := b.deps.Replay.EndAdmission(ctx, m.RequestID); err != nil {
				return closed, err
			}
			continue
		}
		data, _ := json.Marshal(struct {
			Message string `json:"message"`
		}{interruptedMessage})
		seen := Request{RequestID: m.RequestID, MessageID: messageIDOf(m.Key), SignerIIN: m.SignerIIN, Organisation: organisation}
		rec := b.record(seen, b.deps.Clock.Now(), siobroker.JournalRefusal, 0, string(siobroker.CodeUnavailable), data)
		if _, err := b.deps.Journal.Append(ctx, rec); err != nil {
			return closed, fmt.Errorf("journal interrupted request %s: %w", m.RequestID, err)
		}
		if err := b.deps.Replay.Release(ctx, m.Key, m.Digest); err != nil {
			return closed, fmt.Errorf("release interrupted request %s: %w", m.RequestID, err)
		}
		b.deps.Logger.Warn("request interrupted before it was accepted: journaled as refused, its retry is accepted",
			reqlog.Attrs(seen.MessageID, seen.RequestID)...)
		closed++
	}
	return closed, nil
}

// interrupted reports whether the request with the broker's id requestID was left neither
// accepted nor refused, and the organisation its request record names, if any.
func (b *Broker) interrupted(ctx context.Context, requestID string) (bool, string, error) {
	if b.deps.Async != nil {
		if _, ok, err := b.deps.Async.AsyncJob(ctx, requestID); err != nil || ok {
			return false, "", err
		}
	}
	recs, err := b.deps.Journal.Query(ctx, siobroker.JournalFilter{RequestID: requestID,
		Kinds: []siobroker.JournalKind{siobroker.JournalRequest, siobroker.JournalRefusal, siobroker.JournalReply}})
	if err != nil {
		return false, "", err
	}
	organisation := ""
	for _, r := range recs {
		if r.Kind != siobroker.JournalRequest {
			return false, "", nil
		}
		organisation = r.Organisation
	}
	return true, organisation, nil
}

// messageIDOf is the client's messageId a replay key stands for; "" for a call without one.
func messageIDOf(key string) string {
	if strings.HasPrefix(key, "content:") {
		return ""
	}
	return key
}
