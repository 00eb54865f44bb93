package siobroker

import "net/http"

// plainHTTPStatus is the status of every code on the endpoints that answer in plain HTTP (the
// reports' GET, the dashboard). SOAP endpoints answer every fault with 500, as SOAP 1.1 over HTTP
// requires (soap.HTTPStatus); the code itself, in the fault and in X-SIO-Error-Code, is what
// clients match on either way.
var plainHTTPStatus = map[Code]int{
	CodeMethod:      http.StatusMethodNotAllowed,
	CodeContentType: http.StatusUnsupportedMediaType,
	CodeOversize:    http.StatusRequestEntityTooLarge,
	CodeEncoding:    http.StatusBadRequest,
	CodeMalformed:   http.StatusBadRequest,
	CodeDoctype:     http.StatusBadRequest,
	CodeProcInst:    http.StatusBadRequest,
	CodeNotSOAP:     http.StatusBadRequest,
	CodeSchema:      http.StatusBadRequest,
	CodeTooDeep:     http.StatusBadRequest,
	CodeReplayDate:  http.StatusBadRequest,
	// A replay is a conflict with a request already taken, not a malformed one.
	CodeReplayID:     http.StatusConflict,
	CodeUnavailable:  http.StatusServiceUnavailable,
	CodeInternal:     http.StatusInternalServerError,
	CodeServiceRange: http.StatusBadRequest,
	CodeMaintenance:  http.StatusServiceUnavailable,
	CodeRateLimited:  http.StatusTooManyRequests,

	// Too many connections is also "back off" to HTTP clients and proxies, with Retry-After.
	CodeTooManyConnections: http.StatusTooManyRequests,

	// A signature that does not verify proves no identity: 403, as for a certificate refused.
	// (401 would promise an HTTP authentication scheme to retry with, which these endpoints do
	// not offer.)
	CodeSigMissing:   http.StatusForbidden,
	CodeSigInvalid:   http.StatusForbidden,
	CodeSigAlgorithm: http.StatusForbidden,
	CodeSigReference: http.StatusForbidden,
	CodeCertChain:    http.StatusForbidden,
	CodeCertExpired:  http.StatusForbidden,
	CodeCertRevoked:  http.StatusForbidden,
	// Not the signer's fault nor proof against them: the responder that would tell did not.
	CodeCertStatus:  http.StatusServiceUnavailable,
	CodeCertNoIIN:   http.StatusForbidden,
	CodeCertUsage:   http.StatusForbidden,
	CodeCertUnknown: http.StatusForbidden,
	CodeKeyInfo:     http.StatusForbidden,
	CodeTimestamp:   http.StatusForbidden,

	CodeUserUnknown: http.StatusForbidden,
	CodeUserBlocked: http.StatusForbidden,
	CodeUserDeleted: http.StatusForbidden,
	CodeNoConsent:   http.StatusForbidden,
	CodeRoleBasis:   http.StatusForbidden,
	CodeCaseInvalid: http.StatusBadRequest,
	// An unknown case and a case outside the user's proceedings are one answer, so that the
	// refusal does not tell whether the case exists.
	CodeCaseUnknown: http.StatusForbidden,
	CodeSubject:     http.StatusBadRequest,

	CodeReportsDenied:   http.StatusForbidden,
	CodeReportsTooLarge: http.StatusUnprocessableEntity,
	CodeExportUnknown:   http.StatusNotFound,
	CodeReportsCSRF:     http.StatusForbidden,

	CodeDashboardDenied:      http.StatusForbidden,
	CodeWindowsDenied:        http.StatusForbidden,
	CodeDashboardTicket:      http.StatusForbidden,
	CodeDashboardCSRF:        http.StatusForbidden,
	CodeDashboardUnsupported: http.StatusNotImplemented,
	CodeDashboardNotFound:    http.StatusNotFound,
	CodeDashboardConflict:    http.StatusConflict,

	CodeAsyncPending:   http.StatusConflict,
	CodeAsyncUnknown:   http.StatusNotFound,
	CodeAsyncReceipted: http.StatusConflict,
}

// HTTPStatus is the one map from an error code to the status of a plain-HTTP answer. A code
// without an entry (there is none: a test holds every declared code to one) is the broker's own
// failure.
func HTTPStatus(code Code) int {
	if s, ok := plainHTTPStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}
