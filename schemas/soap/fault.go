package soap

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// faultDetail is the gateway's fault detail element (ErrorInfo), in the types namespace.
const faultDetail = "SendMessageFault1_SendMessageFault"

// FaultXML renders err as a SOAP 1.1 Fault of SyncChannel's SendMessage. faultstring and
// errorMessage are the client-facing message (an error without a code is internal and its text
// is not disclosed); errorData carries the field path of a schema error. faultcode says whose
// fault it is, as SOAP 1.1 §4.4.1 asks.
func FaultXML(err error, now time.Time) []byte {
	return FaultXMLFor("", err, now)
}

// FaultXMLFor renders err as the SOAP 1.1 Fault of an operation: "" is SyncChannel's SendMessage
// (detail typ:SendMessageFault1_SendMessageFault), an AsyncChannel v10 operation gets its own
// detail element (typ:<op>Fault1_<op>Fault in the AsyncChannel Types namespace), as its WSDL
// declares. The detail's content, ErrorInfo, is the same.
func FaultXMLFor(operation string, err error, now time.Time) []byte {
	detailNS, detailName := schemas.NSSyncTypes, faultDetail
	if contains(acOperations, operation) {
		detailNS, detailName = schemas.NSAsyncTypes, operation+"Fault1_"+operation+"Fault"
	}
	code := siobroker.ErrorCode(err)
	msg := siobroker.ErrorMessage(err)
	var field string
	var e *siobroker.Error
	if errors.As(err, &e) {
		field = e.Field
	}

	doc := etree.NewDocument()
	env := doc.CreateElement(prefixEnv + ":Envelope")
	env.CreateAttr("xmlns:"+prefixEnv, schemas.NSSoapEnv)
	f := env.CreateElement(prefixEnv + ":Body").CreateElement(prefixEnv + ":Fault")
	leaf(f, "faultcode", prefixEnv+":"+faultCode(code))
	leaf(f, "faultstring", msg)
	d := f.CreateElement("detail").CreateElement(prefixTyp + ":" + detailName)
	d.CreateAttr("xmlns:"+prefixTyp, detailNS)
	leaf(d, "errorCode", string(code))
	leaf(d, "errorMessage", msg)
	optLeaf(d, "errorData", field)
	leaf(d, "errorDate", siobroker.FormatTime(now))
	b, serr := Serialize(doc)
	if serr != nil {
		// Serialize fails only on an empty document, and this one has a root.
		panic("soap: serializing a fault: " + serr.Error())
	}
	return b
}

// faultCode is "Server" for the broker's own failures, and those of what it depends on (an OCSP
// responder), after which a retry may succeed, and "Client" for everything the caller must change.
func faultCode(code siobroker.Code) string {
	switch code {
	case siobroker.CodeInternal, siobroker.CodeUnavailable, siobroker.CodeMaintenance, siobroker.CodeCertStatus,
		siobroker.CodeRateLimited, siobroker.CodeTooManyConnections:
		return "Server"
	}
	return "Client"
}

// HTTPStatus is the status of a SOAP fault. SOAP 1.1 over HTTP answers every fault with 500; the
// two exceptions are transport refusals that HTTP has a status for, and which are answered before
// any SOAP processing. Plain-HTTP endpoints use siobroker.HTTPStatus instead.
func HTTPStatus(code siobroker.Code) int {
	switch code {
	case siobroker.CodeOversize:
		return http.StatusRequestEntityTooLarge
	case siobroker.CodeMethod:
		return http.StatusMethodNotAllowed
	case siobroker.CodeRateLimited, siobroker.CodeTooManyConnections:
		// 429 tells HTTP clients and proxies to back off (with Retry-After), which a 500 would not.
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// RetryAfter is the cause of a fault the client may retry after Wait (siobroker.Wrap keeps it):
// WriteFault sends it as the Retry-After header of a 429.
type RetryAfter struct{ Wait time.Duration }

func (r *RetryAfter) Error() string { return "retry after " + r.Wait.String() }

// RetryAfterSeconds is the Retry-After of err in whole seconds, rounded up: at least one, so
// that a client told to back off does not retry at once; one when err does not say.
func RetryAfterSeconds(err error) int {
	var r *RetryAfter
	if !errors.As(err, &r) {
		return 1
	}
	return max(1, int(math.Ceil(r.Wait.Seconds())))
}

// WriteFault is the one place that turns an error into a response: a SOAP fault with the status
// of HTTPStatus.
func WriteFault(w http.ResponseWriter, err error, now time.Time) {
	WriteFaultFor(w, "", err, now)
}

// WriteFaultFor is WriteFault with the fault detail of an operation (FaultXMLFor).
func WriteFaultFor(w http.ResponseWriter, operation string, err error, now time.Time) {
	code := siobroker.ErrorCode(err)
	status := HTTPStatus(code)
	body := FaultXMLFor(operation, err, now)
	h := w.Header()
	h.Set("Content-Type", "text/xml; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusMethodNotAllowed {
		h.Set("Allow", http.MethodPost) // RFC 9110 §15.5.6 requires it with 405
	}
	if status == http.StatusTooManyRequests {
		h.Set("Retry-After", strconv.Itoa(RetryAfterSeconds(err)))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client has gone if this fails; nothing left to tell it
}

// ParseFault recognises a SOAP 1.1 fault in a reply body and returns its code, message and field.
// A fault without the gateway's detail (from a proxy, say) gives CodeInternal with its faultstring.
// It reads the body with the same defences and default limits as ReadEnvelope.
func ParseFault(body []byte) (*siobroker.Error, bool) {
	doc, err := parseXML(body, Limits{}.WithDefaults())
	if err != nil {
		return nil, false
	}
	b, err := envelopeBody(doc)
	if err != nil {
		return nil, false
	}
	kids := b.ChildElements()
	if len(kids) != 1 || kids[0].Tag != "Fault" || kids[0].NamespaceURI() != schemas.NSSoapEnv {
		return nil, false
	}
	return faultError(kids[0]), true
}

// faultError reads a soapenv:Fault element. The message fields come from the other side and are
// taken as they are; the code is trusted only to be a string.
func faultError(f *etree.Element) *siobroker.Error {
	child := func(parent *etree.Element, name string) string {
		for _, c := range parent.ChildElements() {
			if c.Tag == name && c.NamespaceURI() == "" {
				return strings.TrimSpace(c.Text())
			}
		}
		return ""
	}
	e := &siobroker.Error{Code: siobroker.CodeInternal, Message: child(f, "faultstring")}
	for _, d := range f.ChildElements() {
		if d.Tag != "detail" || d.NamespaceURI() != "" {
			continue
		}
		for _, info := range d.ChildElements() {
			isSync := info.Tag == faultDetail && info.NamespaceURI() == schemas.NSSyncTypes
			isAsync := strings.HasSuffix(info.Tag, "Fault") && info.NamespaceURI() == schemas.NSAsyncTypes
			if !isSync && !isAsync {
				continue
			}
			if c := child(info, "errorCode"); c != "" {
				e.Code = siobroker.Code(c)
			}
			if m := child(info, "errorMessage"); m != "" {
				e.Message = m
			}
			e.Field = child(info, "errorData")
		}
	}
	return e
}
