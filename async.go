package siobroker

import "time"

// AsyncState is the delivery state of a request taken on the asynchronous channel, named as the
// gateway's AsyncChannel names them.
type AsyncState string

// The four delivery states.
const (
	AsyncOnDelivery   AsyncState = "ON_DELIVERY"      // accepted, not yet answered
	AsyncDelivered    AsyncState = "DELIVERED"        // the signed reply is stored and can be fetched
	AsyncNotDelivered AsyncState = "NOT_DELIVERED"    // no service could be answered; the signed reply says why
	AsyncStopped      AsyncState = "DELIVERY_STOPPED" // an operator stopped it; no reply will be produced
)

// Valid reports whether s is one of the four states.
func (s AsyncState) Valid() bool {
	switch s {
	case AsyncOnDelivery, AsyncDelivered, AsyncNotDelivered, AsyncStopped:
		return true
	}
	return false
}

// AsyncJob is one request taken on the asynchronous channel: everything the broker needs to
// route it and sign its reply after a restart, and the reply once produced. Every check (the
// signature, replay, user, role, case rules and case registry) passed before it was stored.
type AsyncJob struct {
	RequestID    string // the broker's id: the ack's messageId, and the reply's
	MessageID    string // the client's messageId
	SenderID     string
	SignerIIN    string
	Organisation string
	Role         int
	Placement    string // the signature placement of the request, and so of the reply
	Info         RequestInfo
	Query        Query
	State        AsyncState
	Reason       string    // why it was not delivered or stopped
	Received     time.Time // when the request was received
	Updated      time.Time
	Reply        []byte    // the signed reply, exactly as produced
	LeaseUntil   time.Time // zero, or: the worker leaves the job to another waiter until then

	// ReplyMessageID is the messageId of the reply as a message of its own: the RESPONSE that the
	// gateway's AsyncChannel v10 hands out (getMessages) and that the client confirms
	// (sendDeliveryNotification). Empty on jobs stored before it existed.
	ReplyMessageID string
	// Receipt is what the client said of the reply (sendDeliveryNotification): empty while it
	// has not said, AsyncDelivered when it accepted the reply, AsyncNotDelivered when it refused
	// it and asked for no resend.
	Receipt   AsyncState
	ReceiptAt time.Time
	// Channel is the contract that took the request: AsyncChannelV10 for the gateway's,
	// SyncChannel for a synchronous request, empty for the broker's own asynchronous variant.
	Channel string
	// TraceParent is the W3C traceparent of the span of the call that took the request (""
	// when none), so that the services the worker asks later, or after a restart, are in the
	// request's trace. Ids only: it says nothing of the request.
	TraceParent string
}

// AsyncChannelV10 is AsyncJob.Channel of a request the gateway's AsyncChannel v10 took.
const AsyncChannelV10 = "asyncchannel-v10"

// SyncChannel is AsyncJob.Channel of a synchronous request. It is stored from its admission
// until its reply is journaled and given out, and then forgotten; one that an interruption (a
// crash, a journal that could not be written) left unfinished is completed by the worker, and its
// reply can be fetched by the broker's id, as one that waited for late services can.
const SyncChannel = "sync"

// AsyncReceipt is a client's delivery notification of a reply (AsyncChannel v10's
// sendDeliveryNotification).
type AsyncReceipt struct {
	Accepted bool // MESSAGE_ACCEPTED; else MESSAGE_NOT_ACCTEPTED
	Resend   bool // RESEND: offer the reply again; only with !Accepted
}

// State is the reply's state after the receipt.
func (r AsyncReceipt) State() AsyncState {
	switch {
	case r.Accepted:
		return AsyncDelivered
	case r.Resend:
		return "" // offered again
	default:
		return AsyncNotDelivered
	}
}

// AsyncMailbox selects the replies that AsyncChannel v10's getMessages hands out to a signer.
type AsyncMailbox struct {
	SignerIIN string
	Channel   string // the contract that took the requests (AsyncChannelV10)
	ServiceID string // the requests' serviceId
	Limit     int
}
