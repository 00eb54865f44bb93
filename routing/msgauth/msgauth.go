// Package msgauth authenticates the messages between the broker and its adapters, so that
// being able to publish to a queue is not enough to make an adapter ask its source, nor to give
// the broker an answer.
//
// The broker holds a master key. Each adapter (an adapter name of the routing table) holds only
// its own key, derived from it: HKDF-SHA256 of the master key with the info "siobroker transport
// v1", a zero byte and the adapter's name. So an adapter cannot make a message for another
// adapter's queues, and the broker derives every adapter's key when it needs it, from the one
// secret it keeps.
//
// A service message carries the broker's HMAC-SHA256, with the key of the adapter its service is
// routed to, over the request id, the service, the reply topic, an expiry and the payload; the
// adapter checks it before anything else (Adapter.CheckRequest). An answer carries the adapter's
// HMAC, with the key that authenticated the request, over its correlation key and payload; the
// broker checks that it was made with the key of the adapter the service is routed to
// (Broker.CheckAnswer). A case check (§5) to a case registry is authenticated the same way with
// the key of the adapter the routing table routes the registry to, as a kind of message of its
// own that covers the registry's name (Broker.SignCaseCheck, Adapter.CheckCaseCheck), and so is
// its answer (Adapter.SignCaseAnswer, Broker.CheckCaseAnswer): a service message's MAC does not
// pass for a case check, nor one registry's check for another's. The metadata keys are
// schemas.MetaAuth* and schemas.MetaRegistry; what the MAC covers is mac's documentation, for an
// adapter written in another language.
//
// The W3C trace context a message carries (traceparent, tracestate: package internal/tracing) is
// not covered, on purpose: it only says which trace the adapter's spans join, and nothing the
// adapter does depends on it. Covering it would change the MAC's input, a new version of this
// scheme for every adapter, also those written in other languages that do not trace; and someone
// able to rewrite it on the queue can only misfile the adapter's spans.
//
// Rotation: a party may hold a previous key besides its current one, accepted until a stated
// time. An adapter answers with the key that authenticated the request, so adapters take the new
// key first (the new one current, the old one previous), then the brokers; then the previous
// keys are dropped, or run out.
package msgauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/sio-pso/siobroker/schemas"
)

// label starts every MAC and the HKDF info: it names the scheme and its version.
const label = "siobroker transport v1"

// macPrefix starts the value of schemas.MetaAuthMAC: the version of the scheme.
const macPrefix = "v1:"

// The kinds of message a MAC is made for: a MAC of one kind never verifies as another, though
// the broker and the adapter use the same key. A case check (§5) is not a service message: one
// made for a registry cannot be put on a service's queue, nor the reverse.
const (
	kindRequest    = "request"
	kindAnswer     = "answer"
	kindCaseCheck  = "case-check"
	kindCaseAnswer = "case-answer"
)

// Reason says why a message was refused, in a word of the wire contract's fixed set
// (schemas.AuthFailure), fit for a metric's label and a dead-letter reason.
type Reason = schemas.AuthFailure

// The reasons of a refusal.
const (
	ReasonMissing       = schemas.AuthMissing       // no authenticator at all
	ReasonMalformed     = schemas.AuthMalformed     // an authenticator that cannot be read
	ReasonWrongAdapter  = schemas.AuthWrongAdapter  // made for (or by) another adapter
	ReasonWrongRegistry = schemas.AuthWrongRegistry // a case check made for (or answered by) another registry
	ReasonUnknownKey    = schemas.AuthUnknownKey    // made with a key this party does not hold (any more)
	ReasonMismatch      = schemas.AuthMismatch      // altered, or forged
	ReasonExpired       = schemas.AuthExpired       // an authentic service message past its expiry
)

// Error is a refused message: why, and the detail for the log and the dead letter. The detail
// names no value of the payload; the values of the metadata it quotes are cut short.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string { return e.Detail }

func refuse(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// mac is the HMAC-SHA256 with secret over, in order: the label, the kind, each field and the
// payload, each preceded by its length as a 4-byte big-endian number, so that no two different
// messages give the same input. A service message's fields are the values of its metadata
// schemas.MetaAuthAdapter, MetaAuthKey, MetaRequestID, MetaService, MetaReplyTo and
// MetaAuthExpires; an answer's are MetaAuthAdapter, MetaAuthKey and MetaCorrelation. A case
// check's (kind "case-check") are a service message's with MetaRegistry in place of MetaService;
// its answer's (kind "case-answer") an answer's followed by MetaRegistry. Each value as sent; ""
// when absent.
func mac(secret []byte, kind string, fields []string, payload []byte) []byte {
	h := hmac.New(sha256.New, secret)
	write := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	write([]byte(label))
	write([]byte(kind))
	for _, f := range fields {
		write([]byte(f))
	}
	write(payload)
	return h.Sum(nil)
}

// requestFields and answerFields are the metadata a MAC covers besides the payload (see mac).
func requestFields(meta map[string]string) []string {
	return []string{meta[schemas.MetaAuthAdapter], meta[schemas.MetaAuthKey], meta[schemas.MetaRequestID],
		meta[schemas.MetaService], meta[schemas.MetaReplyTo], meta[schemas.MetaAuthExpires]}
}

func answerFields(meta map[string]string) []string {
	return []string{meta[schemas.MetaAuthAdapter], meta[schemas.MetaAuthKey], meta[schemas.MetaCorrelation]}
}

// caseCheckFields and caseAnswerFields are those of a case check and of its answer: a service
// message's and an answer's with the registry (schemas.MetaRegistry) in place of the service.
func caseCheckFields(meta map[string]string) []string {
	return []string{meta[schemas.MetaAuthAdapter], meta[schemas.MetaAuthKey], meta[schemas.MetaRequestID],
		meta[schemas.MetaRegistry], meta[schemas.MetaReplyTo], meta[schemas.MetaAuthExpires]}
}

func caseAnswerFields(meta map[string]string) []string {
	return []string{meta[schemas.MetaAuthAdapter], meta[schemas.MetaAuthKey], meta[schemas.MetaCorrelation], meta[schemas.MetaRegistry]}
}

// answerFieldsOf is the fields of an answer of kind (kindAnswer or kindCaseAnswer).
func answerFieldsOf(kind string, meta map[string]string) []string {
	if kind == kindCaseAnswer {
		return caseAnswerFields(meta)
	}
	return answerFields(meta)
}

// encodeMAC is the value of schemas.MetaAuthMAC for sum.
func encodeMAC(sum []byte) string { return macPrefix + base64.RawURLEncoding.EncodeToString(sum) }

// received reads the MAC of meta: the first checks of every message, before a key is looked at.
func received(meta map[string]string) ([]byte, *Error) {
	v, ok := meta[schemas.MetaAuthMAC]
	if !ok || v == "" {
		return nil, refuse(ReasonMissing, "the message carries no authenticator (%s)", schemas.MetaAuthMAC)
	}
	enc, ok := strings.CutPrefix(v, macPrefix)
	if !ok {
		return nil, refuse(ReasonMalformed, "the authenticator %s is not of version v1", quote(v))
	}
	sum, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(sum) != sha256.Size {
		return nil, refuse(ReasonMalformed, "the authenticator %s is not a base64url HMAC-SHA256", quote(v))
	}
	return sum, nil
}

// quote is s for a log line or a reason: quoted, and cut short, since anyone who can publish
// chooses it.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// AuthReason is e's reason as a word, for a caller that counts refusals without importing this
// package.
func (e *Error) AuthReason() string { return string(e.Reason) }
