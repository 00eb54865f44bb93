package soap

import (
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// Prefixes written by NewRequest, NewResponse and FaultXML. Readers resolve namespaces, so any
// prefix is accepted on input; these are only what the broker and its client emit.
const (
	prefixEnv = "soapenv"
	prefixTyp = "typ"
	prefixQ   = "q"
	prefixOp  = "op"
	prefixWSU = "wsu"
)

// ResponseInfo is responseInfo of a SendMessageResponse.
type ResponseInfo struct {
	MessageID     string
	CorrelationID string // the request's messageId, by the gateway's convention
	ResponseDate  time.Time
	StatusCode    string
	StatusMessage string
	SessionID     string
}

// Result is the q:result of a reply.
type Result struct {
	RequestMessageID string
	SignerIIN        string
	Basis            siobroker.Basis
	Subject          siobroker.Subject
	Services         []siobroker.ServiceResult
}

// NewRequest builds an unsigned SendMessage envelope. The Body carries a wsu:Id (for a WS-Security
// signature) and q:query an Id (for an enveloped one), both derived from the messageId so that the
// same input gives the same bytes. It does not validate q: the client validates its input, and
// ParseQuery on the broker is the authority.
func NewRequest(info siobroker.RequestInfo, q siobroker.Query) *etree.Document {
	doc, data := newRequestData(info)
	qe := data.CreateElement(prefixQ + ":query")
	qe.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	qe.CreateAttr("Id", "id-q-"+idPart(info.MessageID))
	leaf(qe, prefixQ+":basis", strconv.Itoa(int(q.Basis)))
	ce := qe.CreateElement(prefixQ + ":case")
	leaf(ce, prefixQ+":number", q.Case.Number)
	optLeaf(ce, prefixQ+":instructionNo", q.Case.InstructionNo)
	optLeaf(ce, prefixQ+":requestingBody", q.Case.RequestingBody)
	optLeaf(ce, prefixQ+":coveringLetterNo", q.Case.CoveringLetterNo)
	optLeaf(ce, prefixQ+":year", q.Case.Year)
	optLeaf(ce, prefixQ+":court", q.Case.Court)
	optLeaf(qe, prefixQ+":article", q.Article)
	subject(qe, q.Subject)
	se := qe.CreateElement(prefixQ + ":services")
	for _, n := range q.Services {
		leaf(se, prefixQ+":service", strconv.Itoa(n))
	}
	leaf(qe, prefixQ+":purpose", q.Purpose)
	return doc
}

// NewResponse builds an unsigned SendMessageResponse envelope around q:result.
func NewResponse(info ResponseInfo, r Result) *etree.Document {
	doc, data := newResponseData(info)
	re := data.CreateElement(prefixQ + ":result")
	re.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	re.CreateAttr("Id", "id-r-"+idPart(info.MessageID))
	leaf(re, prefixQ+":requestMessageId", r.RequestMessageID)
	leaf(re, prefixQ+":signerIin", r.SignerIIN)
	leaf(re, prefixQ+":basis", strconv.Itoa(int(r.Basis)))
	subject(re, r.Subject)
	for _, s := range r.Services {
		se := re.CreateElement(prefixQ + ":service")
		se.CreateAttr("no", strconv.Itoa(s.Service))
		se.CreateAttr("status", string(s.Status))
		se.CreateAttr("reason", s.Reason)
		optLeaf(se, prefixQ+":message", s.Message)
		for _, rec := range s.Records {
			rece := se.CreateElement(prefixQ + ":record")
			rece.CreateAttr("type", rec.Type)
			for _, f := range rec.Fields {
				fe := leaf(rece, prefixQ+":field", f.Value)
				fe.CreateAttr("name", f.Name)
			}
		}
	}
	return doc
}

// newRequestData writes the envelope and requestInfo of a SendMessage and returns the empty
// requestData/data element.
func newRequestData(info siobroker.RequestInfo) (*etree.Document, *etree.Element) {
	return newOperationRequestData(info, OpSendMessage)
}

// newOperationRequestData is newRequestData for the request of operation op.
func newOperationRequestData(info siobroker.RequestInfo, op Operation) (*etree.Document, *etree.Element) {
	doc, body := newEnvelope(info.MessageID)
	sm := body.CreateElement(op.prefix() + ":" + op.Request)
	sm.CreateAttr("xmlns:"+op.prefix(), op.Space)
	req := sm.CreateElement("request")
	ri := req.CreateElement("requestInfo")
	leaf(ri, "messageId", info.MessageID)
	optLeaf(ri, "correlationId", info.CorrelationID)
	leaf(ri, "serviceId", info.ServiceID)
	leaf(ri, "messageDate", siobroker.FormatTime(info.MessageDate))
	optLeaf(ri, "routeId", info.RouteID)
	leaf(ri.CreateElement("sender"), "senderId", info.SenderID)
	for _, p := range info.Properties {
		pe := ri.CreateElement("properties")
		leaf(pe, "key", p.Key)
		leaf(pe, "value", p.Value)
	}
	optLeaf(ri, "sessionId", info.SessionID)
	return doc, req.CreateElement("requestData").CreateElement("data")
}

// newResponseData writes a SendMessageResponse envelope with its responseInfo and returns the
// empty responseData/data element, for the result, report or asynchronous status to fill.
func newResponseData(info ResponseInfo) (*etree.Document, *etree.Element) {
	return newOperationResponseData(info, OpSendMessage)
}

// newOperationResponseData is newResponseData for the response of operation op.
func newOperationResponseData(info ResponseInfo, op Operation) (*etree.Document, *etree.Element) {
	doc, body := newEnvelope(info.MessageID)
	sm := body.CreateElement(op.prefix() + ":" + op.Response)
	sm.CreateAttr("xmlns:"+op.prefix(), op.Space)
	resp := sm.CreateElement("response")
	ri := resp.CreateElement("responseInfo")
	leaf(ri, "messageId", info.MessageID)
	optLeaf(ri, "correlationId", info.CorrelationID)
	leaf(ri, "responseDate", siobroker.FormatTime(info.ResponseDate))
	st := ri.CreateElement("status")
	leaf(st, "code", info.StatusCode)
	leaf(st, "message", info.StatusMessage)
	optLeaf(ri, "sessionId", info.SessionID)
	return doc, resp.CreateElement("responseData").CreateElement("data")
}

// newEnvelope makes Envelope{Header, Body wsu:Id} and returns the document and the Body.
func newEnvelope(messageID string) (*etree.Document, *etree.Element) {
	doc := etree.NewDocument()
	env := doc.CreateElement(prefixEnv + ":Envelope")
	env.CreateAttr("xmlns:"+prefixEnv, schemas.NSSoapEnv)
	env.CreateElement(prefixEnv + ":Header")
	body := env.CreateElement(prefixEnv + ":Body")
	body.CreateAttr("xmlns:"+prefixWSU, schemas.NSWSU)
	body.CreateAttr(prefixWSU+":Id", "id-"+idPart(messageID))
	return doc, body
}

func subject(parent *etree.Element, s siobroker.Subject) {
	se := parent.CreateElement(prefixQ + ":subject")
	if s.IIN != "" {
		leaf(se, prefixQ+":iin", s.IIN)
	} else {
		leaf(se, prefixQ+":bin", s.BIN)
	}
}

func leaf(parent *etree.Element, tag, value string) *etree.Element {
	e := parent.CreateElement(tag)
	if value != "" {
		e.SetText(value)
	}
	return e
}

func optLeaf(parent *etree.Element, tag, value string) {
	if value != "" {
		leaf(parent, tag, value)
	}
}

// idPart turns a messageId into the tail of an xs:ID. A UUID passes through unchanged; anything
// outside [A-Za-z0-9._-] becomes "_". IDs only need to be unique within one document, so
// collisions between different messageIds do not matter.
func idPart(s string) string {
	if s == "" {
		return "0"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}
