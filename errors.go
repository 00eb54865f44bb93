package siobroker

import (
	"errors"
	"fmt"
)

// Code is a stable error code. Codes are part of the wire contract: clients match on them, so a
// code is never renamed or reused. The README carries the table.
type Code string

// Codes for refusals of a whole request. Each maps to one SOAP fault in soap.WriteFault.
const (
	// Transport and XML.
	CodeMethod       Code = "SIO-HTTP-METHOD"     // not a POST of a SOAP envelope
	CodeContentType  Code = "SIO-HTTP-CONTENT"    // a content type other than text/xml
	CodeOversize     Code = "SIO-XML-OVERSIZE"    // the body exceeds the configured limit
	CodeEncoding     Code = "SIO-XML-ENCODING"    // not UTF-8
	CodeMalformed    Code = "SIO-XML-MALFORMED"   // not well-formed XML
	CodeDoctype      Code = "SIO-XML-DOCTYPE"     // a DOCTYPE directive
	CodeProcInst     Code = "SIO-XML-PI"          // a processing instruction other than the XML declaration
	CodeNotSOAP      Code = "SIO-SOAP-ENVELOPE"   // not a SOAP 1.1 envelope with a SendMessage body
	CodeSchema       Code = "SIO-SCHEMA"          // the XSD rules are broken; the message names the field
	CodeTooDeep      Code = "SIO-XML-DEPTH"       // nesting or element count beyond the limits
	CodeReplayDate   Code = "SIO-REPLAY-DATE"     // messageDate outside the accepted window
	CodeReplayID     Code = "SIO-REPLAY-ID"       // a messageId already seen
	CodeUnavailable  Code = "SIO-UNAVAILABLE"     // the broker cannot take requests now
	CodeInternal     Code = "SIO-INTERNAL"        // a fault of the broker itself
	CodeServiceRange Code = "SIO-SERVICE-UNKNOWN" // a service number with no route
	CodeMaintenance  Code = "SIO-MAINTENANCE"     // every requested service is in an announced maintenance window
	CodeRateLimited  Code = "SIO-RATE-LIMITED"    // the client address or the signer is over its request rate, or the signer over its requests in flight; retry after Retry-After

	// The client address has more connections open than it may: this one is closed after the fault.
	CodeTooManyConnections Code = "SIO-TOO-MANY-CONNECTIONS"

	// Signature and certificate.
	CodeSigMissing   Code = "SIO-SIG-MISSING"   // no signature in either placement
	CodeSigInvalid   Code = "SIO-SIG-INVALID"   // a digest or signature value does not verify
	CodeSigAlgorithm Code = "SIO-SIG-ALGORITHM" // an algorithm outside the allowlist (SHA-1 included)
	CodeSigReference Code = "SIO-SIG-REFERENCE" // the reference does not cover exactly the content used (wrapping)
	CodeCertChain    Code = "SIO-CERT-CHAIN"    // not chained to a trusted root
	CodeCertExpired  Code = "SIO-CERT-EXPIRED"  // outside its validity at the message time
	CodeCertRevoked  Code = "SIO-CERT-REVOKED"  // listed in a CRL in force, or revoked by its OCSP responder
	// CodeCertStatus: no OCSP answer (or "unknown") where trust.ocsp requires one, or prefers one
	// and the issuer has no CRL in force; the certificate may be good: retry later.
	CodeCertStatus  Code = "SIO-CERT-STATUS-UNKNOWN"
	CodeCertNoIIN   Code = "SIO-CERT-NO-IIN"  // the subject carries no IIN
	CodeCertUsage   Code = "SIO-CERT-USAGE"   // a CA or TLS certificate, or one without digitalSignature or a signing extended key usage
	CodeCertUnknown Code = "SIO-CERT-UNKNOWN" // a key identifier (thumbprint, SKI, issuer and serial) names no certificate the broker holds
	CodeKeyInfo     Code = "SIO-SIG-KEYINFO"  // KeyInfo in a form that is not accepted, or that names no certificate at all
	CodeTimestamp   Code = "SIO-TIMESTAMP"    // a wsu:Timestamp expired, from the future, malformed, or missing where required

	// Users, roles and bases.
	CodeUserUnknown Code = "SIO-USER-UNKNOWN"
	CodeUserBlocked Code = "SIO-USER-BLOCKED"
	CodeUserDeleted Code = "SIO-USER-DELETED"
	CodeNoConsent   Code = "SIO-USER-NO-CONSENT"
	CodeRoleBasis   Code = "SIO-ROLE-BASIS"      // the user's role may not use the basis
	CodeCaseInvalid Code = "SIO-CASE-INVALID"    // a case reference that does not match its pattern
	CodeCaseUnknown Code = "SIO-CASE-UNKNOWN"    // the case is not found, or is not in the user's proceedings
	CodeSubject     Code = "SIO-SUBJECT-INVALID" // an IIN or BIN with a bad check digit

	// Reports and the prosecutor's export (§10, 44, 51-53).
	CodeReportsDenied   Code = "SIO-REPORTS-DENIED"    // no reports right, another organisation, or a role that may not order an export
	CodeReportsTooLarge Code = "SIO-REPORTS-TOO-LARGE" // the selection exceeds the row limit; narrow it
	CodeReportsCSRF     Code = "SIO-REPORTS-CSRF"      // a report by client certificate without its form's CSRF token, or from another origin
	CodeExportUnknown   Code = "SIO-EXPORT-UNKNOWN"    // no export request with this id among the signer's own

	// The operator's dashboard.
	CodeDashboardDenied      Code = "SIO-DASHBOARD-DENIED"      // no session or client certificate, or a user without the operator right
	CodeDashboardTicket      Code = "SIO-DASHBOARD-TICKET"      // a login ticket that is unknown, used already or expired
	CodeDashboardCSRF        Code = "SIO-DASHBOARD-CSRF"        // an action without the session's CSRF token, or from another origin
	CodeDashboardUnsupported Code = "SIO-DASHBOARD-UNSUPPORTED" // not available on this broker (no dead-letter queue on GoChannel)
	CodeDashboardNotFound    Code = "SIO-DASHBOARD-NOT-FOUND"   // no incident or maintenance window with that number
	CodeDashboardConflict    Code = "SIO-DASHBOARD-CONFLICT"    // the incident is closed, or the window cancelled, already

	// The schedule of maintenance windows (§36, 42).
	CodeWindowsDenied Code = "SIO-WINDOWS-DENIED" // the feed without a verified TLS client certificate of a registered user

	// The asynchronous channel.
	CodeAsyncPending   Code = "SIO-ASYNC-PENDING"   // the result is not ready (or its delivery was stopped); ask the status
	CodeAsyncUnknown   Code = "SIO-ASYNC-UNKNOWN"   // no such messageId among the caller's own asynchronous requests
	CodeAsyncReceipted Code = "SIO-ASYNC-RECEIPTED" // the reply was accepted, or refused for good, already: a receipt is final
)

// Error is the one error type that crosses package boundaries. Code is stable; Message is for
// people and may name a field; Field is the XML path of the offending field, where there is one.
type Error struct {
	Code    Code
	Message string
	Field   string
	Err     error // the cause, kept for logs; never sent to a client
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns a schema error that names the offending field by its path.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: CodeSchema, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error that keeps cause for the logs.
func Wrap(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// ErrorCode returns the code of err, or CodeInternal if err carries none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-facing message of err. Errors without a code are internal and
// their text is not disclosed.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Outcome is how a request ended.
type Outcome string

// The outcomes of a request.
const (
	OutcomeAnswered Outcome = "answered" // a reply went out
	OutcomeRefused  Outcome = "refused"  // a fault about the request or its sender
	OutcomeFailed   Outcome = "failed"   // a fault of the broker: SIO-INTERNAL or SIO-UNAVAILABLE
)

// OutcomeOf is the outcome of a request that ended with err (nil: answered).
func OutcomeOf(err error) Outcome {
	switch code := ErrorCode(err); {
	case err == nil:
		return OutcomeAnswered
	case code == CodeInternal || code == CodeUnavailable:
		return OutcomeFailed
	default:
		return OutcomeRefused
	}
}
