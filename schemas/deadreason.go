package schemas

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DeadReason is why a message is in the dead-letter queue, as its MetaDeadReason header carries
// it (Header) and operators read it (String). It is a fixed vocabulary: a category, and details
// that are numbers, names from configuration, or classes of error, never text from a source
// system or a message. A source's error may quote what it was asked and what it holds (a person's
// name, IIN, address); the dead-letter queue keeps its letters until an operator acts, and
// `siobroker dlq list` and the dashboard show them, so the error's text goes only to the log.
type DeadReason struct {
	Category DeadCategory
	Adapter  string // the adapter that put the letter there, by its configured name; "" for the broker
	Service  int    // the service asked; 0: none
	Attempts int    // how often the source was asked; 0: not asked
	// Error is the class of the error that made the letter, and HTTPStatus or SQLState its code
	// where the class has one (ErrorHTTPStatus, ErrorSQLState).
	Error      ErrorClass
	HTTPStatus int
	SQLState   string
	// AnsweredBy and AnsweredAt name the adapter process that answered a request before, and
	// when, for DeadAnswerForgotten; empty where the ledger no longer knows.
	AnsweredBy string
	AnsweredAt time.Time
	// Auth is why the message was refused as unauthenticated, for DeadUnauthenticated and
	// DeadAnswerUnauthenticated.
	Auth AuthFailure
}

// DeadCategory is what kind of message died, and why.
type DeadCategory string

// The categories of dead letters.
const (
	// DeadSourceFailing: a service request whose source failed transiently on every attempt of
	// the adapter (its retry.attempts).
	DeadSourceFailing DeadCategory = "source-failing"
	// DeadNotARequest: a message on a service queue that is not a service request.
	DeadNotARequest DeadCategory = "not-a-request"
	// DeadNoReplyTopic: a service request that names no reply topic, so nobody could be answered.
	DeadNoReplyTopic DeadCategory = "no-reply-topic"
	// DeadAnswerForgotten: a copy of a request answered before whose answer the adapters' ledger
	// no longer keeps; the source is not asked twice.
	DeadAnswerForgotten DeadCategory = "answer-forgotten"
	// DeadReplyUnreadable: a message on a broker's reply queue that names no request it could
	// be correlated with.
	DeadReplyUnreadable DeadCategory = "reply-unreadable"
	// DeadUnauthenticated: a message on a service queue, or a case check on a registry's queue,
	// that the broker did not authenticate for the adapter (routing/msgauth); its source is not
	// asked.
	DeadUnauthenticated DeadCategory = "unauthenticated"
	// DeadAnswerUnauthenticated: an answer on a broker's reply queue that the adapter its service
	// (or its case registry) is routed to did not authenticate; it is neither given to a request
	// nor journaled as late.
	DeadAnswerUnauthenticated DeadCategory = "answer-unauthenticated"
)

// ErrorClass is the kind of an error, told by its type and never by its text.
type ErrorClass string

// The classes of error (ErrorClassOf).
const (
	ErrorTimeout           ErrorClass = "timeout"            // a deadline passed, or an I/O timeout
	ErrorCanceled          ErrorClass = "canceled"           // the operation was cancelled
	ErrorConnectionRefused ErrorClass = "connection-refused" // nothing listens where the source should be
	ErrorConnectionLost    ErrorClass = "connection-lost"    // the connection was reset or closed midway
	ErrorDNS               ErrorClass = "dns"                // the source's host name did not resolve
	ErrorTLS               ErrorClass = "tls"                // the TLS handshake or the source's certificate failed
	ErrorNetwork           ErrorClass = "network"            // another network failure
	ErrorHTTPStatus        ErrorClass = "http-status"        // the source answered an unexpected HTTP status (DeadReason.HTTPStatus)
	ErrorSQLState          ErrorClass = "sqlstate"           // the database answered an error (DeadReason.SQLState)
	ErrorJSON              ErrorClass = "json"               // the message is not the JSON it should be
	ErrorNoRequest         ErrorClass = "no-request"         // the message names no request
	ErrorOther             ErrorClass = "other"              // anything else: see the adapter's log
)

var errorClasses = map[ErrorClass]string{
	ErrorTimeout: "timed out", ErrorCanceled: "cancelled", ErrorConnectionRefused: "connection refused",
	ErrorConnectionLost: "connection lost", ErrorDNS: "host name not resolved", ErrorTLS: "TLS failure",
	ErrorNetwork: "network failure", ErrorHTTPStatus: "HTTP status", ErrorSQLState: "SQLSTATE",
	ErrorJSON: "not valid JSON", ErrorNoRequest: "names no request", ErrorOther: "an error (see the adapter's log)",
}

var deadCategories = map[DeadCategory]bool{
	DeadSourceFailing: true, DeadNotARequest: true, DeadNoReplyTopic: true, DeadAnswerForgotten: true, DeadReplyUnreadable: true,
	DeadUnauthenticated: true, DeadAnswerUnauthenticated: true,
}

// authFailures are the words of AuthFailure, and what operators read of each.
var authFailures = map[AuthFailure]string{
	AuthMissing: "it carries no authenticator", AuthMalformed: "its authenticator cannot be read",
	AuthWrongAdapter: "it was made for another adapter", AuthWrongRegistry: "it was made for another case registry", AuthUnknownKey: "it was made with a key not held",
	AuthMismatch: "its authenticator does not match it (altered, or forged)", AuthExpired: "it expired",
}

// HTTPStatusError is what a backend's error implements to give its HTTP status to the dead-letter
// reason; pgx's *pgconn.PgError implements SQLStateError.
type HTTPStatusError interface{ HTTPStatus() int }

// SQLStateError is an error of a database that names its SQLSTATE.
type SQLStateError interface{ SQLState() string }

// ErrorClassOf classifies err by its type, and returns its HTTP status or SQLSTATE where it has
// one; nil is "". The text of err is never read.
func ErrorClassOf(err error) (class ErrorClass, httpStatus int, sqlState string) {
	var status HTTPStatusError
	var state SQLStateError
	var netErr net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var recordErr tls.RecordHeaderError
	var verifyErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var unknownAuthority x509.UnknownAuthorityError
	var invalidCert x509.CertificateInvalidError
	var hostname x509.HostnameError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return "", 0, ""
	case errors.As(err, &status) && validHTTPStatus(status.HTTPStatus()):
		return ErrorHTTPStatus, status.HTTPStatus(), ""
	case errors.As(err, &state) && validSQLState(state.SQLState()):
		return ErrorSQLState, 0, state.SQLState()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ErrorTimeout, 0, ""
	case errors.Is(err, context.Canceled):
		return ErrorCanceled, 0, ""
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrorConnectionRefused, 0, ""
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return ErrorConnectionLost, 0, ""
	case errors.As(err, &dnsErr):
		return ErrorDNS, 0, ""
	case errors.As(err, &recordErr), errors.As(err, &verifyErr), errors.As(err, &alert), errors.As(err, &unknownAuthority),
		errors.As(err, &invalidCert), errors.As(err, &hostname):
		return ErrorTLS, 0, ""
	case errors.As(err, &opErr):
		return ErrorNetwork, 0, ""
	case errors.As(err, &syntaxErr), errors.As(err, &typeErr):
		return ErrorJSON, 0, ""
	}
	return ErrorOther, 0, ""
}

// WithError is r with the class of err, and its HTTP status or SQLSTATE (ErrorClassOf).
func (r DeadReason) WithError(err error) DeadReason {
	r.Error, r.HTTPStatus, r.SQLState = ErrorClassOf(err)
	return r
}

// The keys of a header after its category, in the order Header writes them.
const (
	keyAdapter    = "adapter"
	keyService    = "service"
	keyAttempts   = "attempts"
	keyError      = "error"
	keyHTTPStatus = "http-status"
	keySQLState   = "sqlstate"
	keyAnsweredBy = "answered-by"
	keyAnsweredAt = "answered-at"
	keyAuth       = "auth"
)

// maxName bounds a name in a reason (an adapter's, an adapter process's).
const maxName = 64

// Header is r as the MetaDeadReason header carries it: the category, then key=value pairs
// separated by spaces, e.g. "source-failing adapter=vehicles service=5 attempts=4 error=http-status
// http-status=503". Names are cut to the characters of a configured name, and any value that
// is not valid is left out, so that what it writes ParseDeadReason reads.
func (r DeadReason) Header() string {
	var b strings.Builder
	b.WriteString(string(r.Category))
	add := func(k, v string) {
		if v != "" {
			b.WriteString(" " + k + "=" + v)
		}
	}
	add(keyAdapter, safeName(r.Adapter))
	if r.Service > 0 && r.Service < 1000 {
		add(keyService, strconv.Itoa(r.Service))
	}
	if r.Attempts > 0 && r.Attempts <= maxAttempts {
		add(keyAttempts, strconv.Itoa(r.Attempts))
	}
	if _, ok := errorClasses[r.Error]; ok {
		add(keyError, string(r.Error))
	}
	if validHTTPStatus(r.HTTPStatus) {
		add(keyHTTPStatus, strconv.Itoa(r.HTTPStatus))
	}
	if validSQLState(r.SQLState) {
		add(keySQLState, r.SQLState)
	}
	add(keyAnsweredBy, safeName(r.AnsweredBy))
	if !r.AnsweredAt.IsZero() {
		add(keyAnsweredAt, r.AnsweredAt.UTC().Format(time.RFC3339))
	}
	if _, ok := authFailures[r.Auth]; ok {
		add(keyAuth, string(r.Auth))
	}
	return b.String()
}

// maxAttempts bounds the attempts a reason names.
const maxAttempts = 1000

// ParseDeadReason reads a MetaDeadReason header written by Header. Anything else (an earlier
// version's free text, a header someone else set) is not a reason: ok is false, and the caller
// shows none of it, since it may quote a source.
func ParseDeadReason(h string) (r DeadReason, ok bool) {
	fields := strings.Split(h, " ")
	r.Category = DeadCategory(fields[0])
	if !deadCategories[r.Category] {
		return DeadReason{}, false
	}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, found := strings.Cut(f, "=")
		if !found || seen[k] || v == "" {
			return DeadReason{}, false
		}
		seen[k] = true
		var err error
		switch k {
		case keyAdapter:
			r.Adapter, err = nameValue(v)
		case keyService:
			r.Service, err = intValue(v, 1, 999)
		case keyAttempts:
			r.Attempts, err = intValue(v, 1, maxAttempts)
		case keyError:
			r.Error = ErrorClass(v)
			if _, known := errorClasses[r.Error]; !known {
				err = errors.New("unknown class")
			}
		case keyHTTPStatus:
			r.HTTPStatus, err = intValue(v, 100, 599)
		case keySQLState:
			r.SQLState = v
			if !validSQLState(v) {
				err = errors.New("not an SQLSTATE")
			}
		case keyAnsweredBy:
			r.AnsweredBy, err = nameValue(v)
		case keyAnsweredAt:
			r.AnsweredAt, err = time.Parse(time.RFC3339, v)
		case keyAuth:
			r.Auth = AuthFailure(v)
			if _, known := authFailures[r.Auth]; !known {
				err = errors.New("unknown failure")
			}
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return DeadReason{}, false
		}
	}
	return r, true
}

// String is what operators read of r.
func (r DeadReason) String() string {
	var s string
	switch r.Category {
	case DeadSourceFailing:
		s = fmt.Sprintf("the source failed transiently %d times", r.Attempts)
	case DeadNotARequest:
		s = "the message is not a service request"
	case DeadNoReplyTopic:
		s = "the service request names no reply topic: nobody could be answered"
	case DeadAnswerForgotten:
		s = "answered by an adapter process"
		if r.AnsweredBy != "" && !r.AnsweredAt.IsZero() {
			s = fmt.Sprintf("answered by adapter process %s at %s", r.AnsweredBy, r.AnsweredAt.UTC().Format(time.RFC3339))
		}
		s += ", but the ledger no longer keeps that answer (it forgets answers after its retention) and the source is not asked twice"
	case DeadReplyUnreadable:
		s = "broker: a reply that cannot be correlated with a request"
	case DeadUnauthenticated:
		s = "the service message or case check is not authenticated by the broker, and its source is not asked"
	case DeadAnswerUnauthenticated:
		s = "broker: an answer not authenticated by the adapter of its service, given to no request"
	default:
		return "unknown reason"
	}
	var where []string
	if r.Adapter != "" {
		where = append(where, "adapter "+r.Adapter)
	}
	if r.Service > 0 {
		where = append(where, "service "+strconv.Itoa(r.Service))
	}
	if len(where) > 0 {
		s += " (" + strings.Join(where, ", ") + ")"
	}
	if why, ok := authFailures[r.Auth]; ok {
		s += ": " + why
	}
	switch r.Error {
	case "":
	case ErrorHTTPStatus:
		s += fmt.Sprintf("; last error: HTTP status %d", r.HTTPStatus)
	case ErrorSQLState:
		s += "; last error: SQLSTATE " + r.SQLState
	default:
		s += "; last error: " + errorClasses[r.Error]
	}
	return s
}

// safeName is name cut to the characters a configured name may have (letters, digits, '.',
// '_', '-') and to maxName bytes.
func safeName(name string) string {
	var b strings.Builder
	for _, c := range name {
		if b.Len() == maxName {
			break
		}
		if nameChar(c) {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func nameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

func nameValue(v string) (string, error) {
	if len(v) > maxName || safeName(v) != v {
		return "", errors.New("not a name")
	}
	return v, nil
}

func intValue(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi || strconv.Itoa(n) != v {
		return 0, errors.New("out of range")
	}
	return n, nil
}

func validHTTPStatus(n int) bool { return n >= 100 && n <= 599 }

// validSQLState reports whether s is an SQLSTATE: five digits or upper-case letters.
func validSQLState(s string) bool {
	if len(s) != 5 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
