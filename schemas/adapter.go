package schemas

import (
	"strconv"
	"time"

	"github.com/sio-pso/siobroker"
)

// The AMQP/GoChannel messages between the broker and its adapters. They are JSON, so that an
// adapter written in another language needs no XML. Changing a field is a wire change: add, never
// rename.

// Metadata keys carried on every transport message. Only strings go into headers (see the
// watermill-amqp notes in STYLE.md).
const (
	MetaRequestID = "sio_request_id" // the broker's id of the client request
	MetaService   = "sio_service"    // the service number, decimal
	MetaReplyTo   = "sio_reply_to"   // the topic the answer goes to: one per broker instance
	MetaMessageID = "sio_message_id" // the client's requestInfo/messageId, for logs
	MetaRegistry  = "sio_registry"   // on a case check and its answer: the registry's name (§5)
)

// Metadata keys of the authenticator of a transport message (package routing/msgauth): the
// broker's on every service message to an adapter, the adapter's on every answer. The adapter
// whose key made it (an adapter name of the routing table), the key's id (which key of a
// rotation), when a service message stops being accepted (RFC 3339, UTC; not on answers), and
// the MAC itself ("v1:" and the unpadded base64url HMAC-SHA256).
const (
	MetaAuthAdapter = "sio_auth_adapter"
	MetaAuthKey     = "sio_auth_key"
	MetaAuthExpires = "sio_auth_expires"
	MetaAuthMAC     = "sio_auth_mac"
)

// AuthFailure is why a transport message was refused as unauthenticated (routing/msgauth): a word
// of a fixed set, fit for a metric's label and a dead-letter reason.
type AuthFailure string

// The reasons of a refusal.
const (
	AuthMissing       AuthFailure = "missing"        // no authenticator at all
	AuthMalformed     AuthFailure = "malformed"      // an authenticator that cannot be read
	AuthWrongAdapter  AuthFailure = "wrong_adapter"  // made for (or by) another adapter
	AuthWrongRegistry AuthFailure = "wrong_registry" // a case check made for (or answered by) another registry
	AuthUnknownKey    AuthFailure = "unknown_key"    // made with a key the receiver does not hold (any more)
	AuthMismatch      AuthFailure = "mismatch"       // altered, or forged
	AuthExpired       AuthFailure = "expired"        // an authentic service message past its expiry
)

// Metadata keys of a request an adapter put on the dead-letter topic itself, having given up on it
// (its source kept failing): why, the topic it came from (where a replay sends it back), after how
// many attempts, and when (RFC 3339).
const (
	MetaDeadReason   = "sio_dead_reason"
	MetaDeadTopic    = "sio_dead_topic"
	MetaDeadAttempts = "sio_dead_attempts"
	MetaDeadAt       = "sio_dead_at"
)

// ServiceRequest asks one adapter for one service about one subject.
type ServiceRequest struct {
	RequestID string            `json:"requestId"`
	MessageID string            `json:"messageId"`
	Service   int               `json:"service"`
	Basis     siobroker.Basis   `json:"basis"`
	Case      siobroker.CaseRef `json:"case"`
	Article   string            `json:"article,omitempty"`
	Subject   siobroker.Subject `json:"subject"`
	SignerIIN string            `json:"signerIin"`
	SentAt    time.Time         `json:"sentAt"`
	Deadline  time.Time         `json:"deadline"`
	ReplyTo   string            `json:"replyTo"`
}

// ServiceResponse is an adapter's answer to one ServiceRequest.
type ServiceResponse struct {
	RequestID  string                  `json:"requestId"`
	Service    int                     `json:"service"`
	Result     siobroker.ServiceResult `json:"result"`
	Adapter    string                  `json:"adapter"`
	AnsweredAt time.Time               `json:"answeredAt"`
}

// ServiceTopic is the topic (AMQP queue) that carries requests for service n.
func ServiceTopic(n int) string {
	return "sio.service." + threeDigits(n)
}

func threeDigits(n int) string {
	b := []byte{'0', '0', '0'}
	for i := 2; i >= 0 && n > 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b)
}

// MetaCorrelation is set on every answer (service or case check): the key the waiting broker
// correlates it by.
const MetaCorrelation = "sio_correlation"

// CorrelationKey names one service of one request, "request/service": the MetaCorrelation of its
// answer, and the key under which adapters remember and claim it. An adapter written in another
// language builds it the same way.
func CorrelationKey(requestID string, service int) string {
	return requestID + "/" + strconv.Itoa(service)
}

// CaseCheckRequest asks a case registry (ЕРДР, the courts' system, АИС ОИП) whether a case exists
// and is in the proceedings of the signer (§5 of the Rules).
type CaseCheckRequest struct {
	RequestID string            `json:"requestId"`
	MessageID string            `json:"messageId,omitempty"` // the client's, for logs
	Basis     siobroker.Basis   `json:"basis"`
	Case      siobroker.CaseRef `json:"case"`
	SignerIIN string            `json:"signerIin"`
	SentAt    time.Time         `json:"sentAt"`
	Deadline  time.Time         `json:"deadline"`
	ReplyTo   string            `json:"replyTo"`
}

// CaseCheckResponse is a case registry's answer. Of a case it found, it carries what the broker
// decides on (§5, App. 2 fn. 2): the case's status, the people in its proceedings with their part,
// and its qualification. The broker, not the registry, decides whether the case is in the
// signer's proceedings: from the signer's parts, the part its rules ask of the signer's role
// (cases.parts), and the status (cases.open_statuses).
type CaseCheckResponse struct {
	RequestID string `json:"requestId"`
	Found     bool   `json:"found"` // the case exists in the registry
	// InProceedings says the signer is among Participants, whatever the part: kept for readers
	// that predate Participants. The broker does not decide on it.
	InProceedings bool      `json:"inProceedings"`
	Message       string    `json:"message,omitempty"`
	Registry      string    `json:"registry"`
	AnsweredAt    time.Time `json:"answeredAt"`

	// Status is the case's status in the registry's words, lower-cased: "open", "suspended",
	// "closed"... Empty when not found.
	Status string `json:"status,omitempty"`
	// Participants are the people in the case's proceedings with their part: every one the
	// registry lists, not only the signer, since which part counts depends on the signer's role.
	Participants []siobroker.Participant `json:"participants,omitempty"`
	// Articles are the case's qualification: Criminal Code article numbers ("216", "217-1").
	Articles []string `json:"articles,omitempty"`
}

// Facts returns what r says of the case.
func (r CaseCheckResponse) Facts() siobroker.CaseFacts {
	return siobroker.CaseFacts{Status: r.Status, Participants: r.Participants, Articles: r.Articles}
}

// RegistryTopic is the topic that carries case checks to the named registry.
func RegistryTopic(name string) string { return "sio.registry." + name }
