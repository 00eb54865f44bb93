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
}
