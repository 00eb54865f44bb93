package broker

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// The gateway's AsyncChannel v10 (IAsyncChannel), served at /AsyncChannel/v10 beside the broker's
// own asynchronous variant of the SyncChannel envelope, onto the same asynchronous requests:
//
//   - sendMessage (messageType REQUEST, q:query in messageData/data) runs every check of a
//     synchronous request, stores the request ON_DELIVERY, and acknowledges with messageId and
//     correlationId both the broker's id of the request: the chain the reply belongs to.
//   - The reply is a message of its own (messageType RESPONSE, messageId AsyncJob.ReplyMessageID,
//     correlationId the request's), holding the signed q:result.
//   - getMessageStatus(messageId): for the request's id, the request's state (ON_DELIVERY while it
//     is worked on, DELIVERED when its reply is ready, NOT_DELIVERED when no service could be
//     answered, DELIVERY_STOPPED when an operator stopped it); for the reply's id, the reply's own
//     delivery to the client (ON_DELIVERY until the client confirms it, then DELIVERED, or
//     NOT_DELIVERED when the client refused it for good).
//   - getMessages(serviceId[, messageId | correlationId][, amount]): by id, that one reply; else
//     the signer's replies of that service not yet confirmed, oldest first.
//   - sendDeliveryNotification(messageId of a reply): MESSAGE_ACCEPTED confirms it (it leaves the
//     mailbox); MESSAGE_NOT_ACCTEPTED with RESEND offers it again, with NOT_RESEND drops it.
//
// Every call is signed in a WS-Security header (any KeyInfo form) and answered signed the same
// way. Ids of other signers are answered as unknown. A call without a date (getMessages may omit
// requestDate) is refused: the date and the signed content are the replay defence of calls that
// carry no messageId.

// Defaults of getMessages.
const (
	acDefaultAmount = 10 // messages a getMessages without amount hands out
	acMaxAmount     = 50 // the most one getMessages hands out, whatever amount asks
)

// acBrokerSenderID is the senderId of the replies the broker hands out (AsyncMessageInfo/sender).
const acBrokerSenderID = "SIO_PSO"

// signedCall is an AsyncChannel v10 call whose signature verified, read from the signed Body.
type signedCall struct {
	call     soap.ACCall
	verified *signing.Verified
	now      time.Time
}

// asyncChannelCall runs one AsyncChannel v10 call read from doc.
func (b *Broker) asyncChannelCall(ctx context.Context, doc *etree.Document, raw []byte, received time.Time, seen *Request) (*Reply, error) {
	seen.raw, seen.doc = raw, doc
	start := time.Now()
	sc, err := b.verifyCall(ctx, doc, seen)
	b.observe(StageVerify, start)
	if err != nil {
		return nil, err
	}
	ctx = reqlog.With(ctx, seen.MessageID, seen.RequestID)
	switch sc.call.Operation {
	case soap.ACSendMessage:
		return b.acSendMessage(ctx, sc, received, seen)
	case soap.ACGetMessageStatus:
		return b.acQuery(ctx, sc, seen, b.acGetMessageStatus)
	case soap.ACGetMessages:
		return b.acQuery(ctx, sc, seen, b.acGetMessages)
	case soap.ACSendDeliveryNotification:
		return b.acQuery(ctx, sc, seen, b.acDeliveryNotification)
	}
	return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "unknown AsyncChannel v10 operation %q", sc.call.Operation)
}

// verifyCall reads the call once unsigned, to learn its date, refuses a date outside the replay
// window, verifies the signature at that date and reads the call again from the signed Body.
func (b *Broker) verifyCall(ctx context.Context, doc *etree.Document, seen *Request) (signedCall, error) {
	var sc signedCall
	unsigned, err := soap.ParseACCall(soap.Body(doc))
	if err != nil {
		return sc, err
	}
	seen.MessageID, seen.SenderID = unsigned.Info.MessageID, unsigned.Info.SenderID
	if unsigned.Operation != soap.ACSendMessage {
		seen.SenderID = unsigned.SenderID
	}
	date := unsigned.Date()
	if date.IsZero() {
		return sc, siobroker.FieldError(unsigned.Operation+"/request/requestDate",
			"is required by this broker: it dates the signed call, which carries no messageId to refuse a replay by")
	}
	sc.now = b.deps.Clock.Now()
	if skew := sc.now.Sub(date); skew > b.cfg.ReplayWindow || skew < -b.cfg.ReplayWindow {
		return sc, siobroker.Errorf(siobroker.CodeReplayDate, "the call's date %s is outside ±%s of the broker's time %s",
			siobroker.FormatTime(date), b.cfg.ReplayWindow, siobroker.FormatTime(sc.now))
	}
	if sc.verified, err = b.deps.Verifier.Verify(ctx, doc, date); err != nil {
		return sc, err
	}
	seen.SignerIIN, seen.Placement = sc.verified.SignerIIN, sc.verified.Placement
	seen.signerVerified = true
	if err := b.limitSigner(sc.verified.SignerIIN); err != nil {
		return sc, err
	}
	if !sc.verified.Placement.InHeader() {
		return sc, siobroker.Errorf(siobroker.CodeSigMissing, "an AsyncChannel v10 call is signed in the wsse:Security header, over the Body")
	}
	if sc.call, err = soap.ParseACCall(sc.verified.Signed); err != nil {
		return sc, err
	}
	if !sc.call.Date().Equal(date) || sc.call.Operation != unsigned.Operation {
		return sc, siobroker.Errorf(siobroker.CodeSigReference, "the call differs from the signed Body")
	}
	return sc, nil
}

// acSendMessage takes a REQUEST: the checks of a synchronous request, then the asynchronous
// channel's storage, and an acknowledgement naming the chain.
func (b *Broker) acSendMessage(ctx context.Context, sc signedCall, received time.Time, seen *Request) (*Reply, error) {
	mi := sc.call.Info
	const p = "sendMessage/request/messageInfo"
	switch {
	case mi.MessageType != soap.ACRequest:
		return nil, siobroker.FieldError(p+"/messageType",
			"the broker takes requests only (REQUEST) and answers them itself; %s is not accepted", mi.MessageType)
	case mi.CorrelationID != "":
		return nil, siobroker.FieldError(p+"/correlationId",
			"must be empty in a REQUEST: the broker opens the chain and names it in its acknowledgement")
	}
	info := siobroker.RequestInfo{
		MessageID: mi.MessageID, ServiceID: mi.ServiceID, MessageDate: mi.MessageDate, RouteID: mi.RouteID,
		SenderID: mi.SenderID, Properties: mi.Properties, SessionID: mi.SessionID,
	}
	a := authenticated{info: info, data: sc.call.QueryElement(), verified: sc.verified, now: sc.now}
	job, err := b.takeAsync(ctx, a, seen, received, siobroker.AsyncChannelV10)
	if err != nil {
		return nil, err
	}
	out, err := b.signDocument(soap.NewACSendMessageResponse(job.RequestID, job.RequestID, b.deps.Clock.Now(), b.sessionID()), sc.verified.Placement, "sendMessageResponse")
	if err != nil {
		return nil, err
	}
	b.deps.Logger.InfoContext(ctx, "asynchronous request accepted (AsyncChannel v10)", reqlog.Attrs(info.MessageID, job.RequestID)...)
	return &Reply{Bytes: out, MessageID: job.RequestID, RequestID: info.MessageID, SignerIIN: sc.verified.SignerIIN}, nil
}

// acQuery runs the checks common to the calls that read or confirm replies (the replay defence
// and the user registry) and then answer.
func (b *Broker) acQuery(ctx context.Context, sc signedCall, seen *Request,
	answer func(context.Context, signedCall, *Request) (*Reply, error)) (*Reply, error) {
	info := siobroker.RequestInfo{SenderID: sc.call.SenderID}
	digest, err := b.checkReplay(ctx, info, sc.verified, sc.now, "")
	if err != nil {
		return nil, err
	}
	user, err := b.deps.Users.Authorize(ctx, sc.verified.SignerIIN)
	if err == nil {
		seen.Role, seen.Organisation = user.Role, user.Organisation
		var reply *Reply
		if reply, err = answer(ctx, sc, seen); err == nil {
			return reply, nil
		}
	}
	b.releaseIfUnavailable(ctx, err, "", digest)
	return nil, err
}

// ownJob returns the asynchronous request of the signer whose request or reply has messageId id.
// An id of another signer is answered as an unknown one, so that ids do not leak between signers.
func (b *Broker) ownJob(ctx context.Context, id, signerIIN string) (siobroker.AsyncJob, error) {
	job, ok, err := b.deps.Async.AsyncJobByMessage(ctx, id)
	if err != nil {
		return job, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot read its requests now; retry later")
	}
	if !ok || job.SignerIIN != signerIIN {
		return job, siobroker.Errorf(siobroker.CodeAsyncUnknown, "no message %q of this signer", id)
	}
	return job, nil
}

// replyMessageID is the messageId of a job's reply; a job stored before replies had ids of their
// own answers by its request's id.
func replyMessageID(j siobroker.AsyncJob) string {
	if j.ReplyMessageID != "" {
		return j.ReplyMessageID
	}
	return j.RequestID
}

// acGetMessageStatus answers getMessageStatus: the state of the signer's request, or of its reply.
func (b *Broker) acGetMessageStatus(ctx context.Context, sc signedCall, seen *Request) (*Reply, error) {
	id := sc.call.MessageID
	job, err := b.ownJob(ctx, id, sc.verified.SignerIIN)
	if err != nil {
		return nil, err
	}
	st := soap.ACStatus{State: job.State, StatusCode: string(job.State), StatusMessage: stateMessage(job), StatusDate: job.Updated}
	if id == replyMessageID(job) && id != job.RequestID {
		st = replyStatus(job)
	}
	out, err := b.signDocument(soap.NewACGetMessageStatusResponse(seen.RequestID, st, b.deps.Clock.Now()), sc.verified.Placement, "getMessageStatusResponse")
	if err != nil {
		return nil, err
	}
	return &Reply{Bytes: out, MessageID: seen.RequestID, SignerIIN: sc.verified.SignerIIN}, nil
}

// replyStatus is the state of a job's reply as a message to its client.
func replyStatus(j siobroker.AsyncJob) soap.ACStatus {
	switch {
	case len(j.Reply) == 0:
		return soap.ACStatus{State: siobroker.AsyncOnDelivery, StatusCode: string(siobroker.AsyncOnDelivery),
			StatusMessage: "the reply is not ready: the request is " + string(j.State), StatusDate: j.Updated}
	case j.Receipt == siobroker.AsyncDelivered:
		return soap.ACStatus{State: j.Receipt, StatusCode: string(j.Receipt), StatusMessage: "the client confirmed the reply", StatusDate: j.ReceiptAt}
	case j.Receipt == siobroker.AsyncNotDelivered:
		return soap.ACStatus{State: j.Receipt, StatusCode: string(j.Receipt), StatusMessage: "the client refused the reply and asked for no resend", StatusDate: j.ReceiptAt}
	}
	return soap.ACStatus{State: siobroker.AsyncOnDelivery, StatusCode: string(siobroker.AsyncOnDelivery),
		StatusMessage: "the reply waits for the client (getMessages, then sendDeliveryNotification)", StatusDate: j.Updated}
}

// acGetMessages answers getMessages: the signer's replies as RESPONSE messages, by id or chain, or
// the unconfirmed ones of the gateway's contract for the service.
func (b *Broker) acGetMessages(ctx context.Context, sc signedCall, seen *Request) (*Reply, error) {
	c := sc.call
	iin := sc.verified.SignerIIN
	var jobs []siobroker.AsyncJob
	if id := cmp.Or(c.MessageID, c.CorrelationID); id != "" {
		// By the reply's messageId (or the request's), or by the chain, which is the request's id.
		job, err := b.ownJob(ctx, id, iin)
		if err != nil {
			return nil, err
		}
		if c.CorrelationID != "" && c.CorrelationID != job.RequestID {
			return nil, siobroker.Errorf(siobroker.CodeAsyncUnknown, "no chain %q of this signer holds message %q", c.CorrelationID, c.MessageID)
		}
		if job.Info.ServiceID != c.ServiceID {
			return nil, siobroker.FieldError("getMessages/request/serviceId", "message %q is of service %q, not %q", id, job.Info.ServiceID, c.ServiceID)
		}
		if len(job.Reply) > 0 {
			jobs = append(jobs, job)
		}
	} else {
		limit := c.Amount
		if limit <= 0 {
			limit = acDefaultAmount
		}
		limit = min(limit, acMaxAmount)
		var err error
		jobs, err = b.deps.Async.AsyncReplies(ctx, siobroker.AsyncMailbox{SignerIIN: iin, Channel: siobroker.AsyncChannelV10, ServiceID: c.ServiceID, Limit: limit})
		if err != nil {
			return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot read its replies now; retry later")
		}
	}
	msgs := make([]soap.ACMessage, 0, len(jobs))
	ids := make([]string, 0, len(jobs))
	for _, j := range jobs {
		result, err := soap.StoredResult(j.Reply)
		if err != nil {
			return nil, fmt.Errorf("stored reply of %s: %w", j.RequestID, err)
		}
		msgs = append(msgs, soap.ACMessage{Data: result, Info: soap.ACMessageInfo{
			MessageID: replyMessageID(j), CorrelationID: j.RequestID, ServiceID: j.Info.ServiceID, MessageType: soap.ACResponse,
			MessageDate: j.Updated, SenderID: acBrokerSenderID,
		}})
		ids = append(ids, replyMessageID(j))
	}
	out, err := b.signDocument(soap.NewACGetMessagesResponse(seen.RequestID, b.deps.Clock.Now(), b.sessionID(), msgs), sc.verified.Placement, "getMessagesResponse")
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		// Who was handed which result, and when: the results themselves are journaled already.
		if err := b.journalDelivery(ctx, *seen, "", "handed-out", map[string]any{"operation": soap.ACGetMessages, "messages": ids}); err != nil {
			return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot journal the delivery now; retry later")
		}
	}
	return &Reply{Bytes: out, MessageID: seen.RequestID, SignerIIN: sc.verified.SignerIIN}, nil
}

// acDeliveryNotification answers sendDeliveryNotification: the client's receipt of one of its
// replies, journaled before it is recorded.
func (b *Broker) acDeliveryNotification(ctx context.Context, sc signedCall, seen *Request) (*Reply, error) {
	n := sc.call.Notification
	const p = "sendDeliveryNotification/request/notification"
	job, err := b.ownJob(ctx, n.MessageID, sc.verified.SignerIIN)
	if err != nil {
		return nil, err
	}
	switch {
	case n.MessageID != replyMessageID(job):
		return nil, siobroker.FieldError(p+"/messageId",
			"names the request %s; a delivery notification names the reply, messageId %s (getMessages gives it)", job.RequestID, replyMessageID(job))
	case n.ServiceID != job.Info.ServiceID:
		return nil, siobroker.FieldError(p+"/serviceId", "the reply %s is of service %q, not %q", n.MessageID, job.Info.ServiceID, n.ServiceID)
	case len(job.Reply) == 0:
		return nil, siobroker.Errorf(siobroker.CodeAsyncPending, "the reply %s is not ready (%s); there is nothing to confirm yet", n.MessageID, job.State)
	}
	if job.Receipt != "" {
		return nil, siobroker.Errorf(siobroker.CodeAsyncReceipted, "the reply %s was %s at %s already; a receipt is final",
			n.MessageID, receiptWords(job.Receipt), siobroker.FormatTime(job.ReceiptAt))
	}
	receipt := "MESSAGE_ACCEPTED"
	if !n.Receipt.Accepted {
		receipt = "MESSAGE_NOT_ACCTEPTED/NOT_RESEND"
		if n.Receipt.Resend {
			receipt = "MESSAGE_NOT_ACCTEPTED/RESEND"
		}
	}
	if err := b.journalDelivery(ctx, *seen, job.RequestID, receipt, map[string]any{
		"operation": soap.ACSendDeliveryNotification, "message": n.MessageID, "notificationDate": siobroker.FormatTime(n.NotificationDate),
		"errorCode": n.ErrorCode, "errorMessage": n.ErrorMessage,
	}); err != nil {
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot journal the notification now; retry later")
	}
	// Journaled first: a receipt is never recorded without its record. A notification journaled
	// and then not recorded (the store failed, or another receipt won) is refused, and the
	// journal shows it was made.
	now := b.deps.Clock.Now()
	recorded, err := b.deps.Async.ReceiptAsync(ctx, job.RequestID, n.Receipt.State(), now)
	switch {
	case err != nil:
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot record the notification now; retry later")
	case !recorded:
		return nil, siobroker.Errorf(siobroker.CodeAsyncReceipted, "the reply %s was confirmed or refused meanwhile; a receipt is final", n.MessageID)
	}
	out, err := b.signDocument(soap.NewACDeliveryNotificationResponse(seen.RequestID, now, b.sessionID()), sc.verified.Placement, "sendDeliveryNotificationResponse")
	if err != nil {
		return nil, err
	}
	b.deps.Logger.InfoContext(ctx, "asynchronous reply receipted", append(reqlog.Attrs("", job.RequestID), "receipt", receipt)...)
	return &Reply{Bytes: out, MessageID: seen.RequestID, SignerIIN: sc.verified.SignerIIN}, nil
}

// journalDelivery appends a JournalDelivery record: ids and codes only, never a result.
func (b *Broker) journalDelivery(ctx context.Context, seen Request, requestID, code string, details map[string]any) error {
	data, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("encode delivery record: %w", err)
	}
	rec := b.record(seen, b.deps.Clock.Now(), siobroker.JournalDelivery, 0, code, data)
	if requestID != "" {
		rec.RequestID = requestID // the record belongs to the request whose reply it concerns
	}
	_, err = b.deps.Journal.Append(ctx, rec)
	return err
}

// receiptWords says what a final receipt was.
func receiptWords(s siobroker.AsyncState) string {
	if s == siobroker.AsyncDelivered {
		return "accepted"
	}
	return "refused for good"
}

// sessionID is a fresh session id in the gateway's guid form: a UUID in braces.
func (b *Broker) sessionID() string { return "{" + b.deps.NewID() + "}" }
