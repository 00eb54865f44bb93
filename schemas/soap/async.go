package soap

import (
	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// The asynchronous channel (POST /AsyncChannel/v10) takes the same signed SendMessage envelope as
// the synchronous endpoint. Its requestData/data holds one of:
//   - q:query: the request, accepted at once; the reply's data holds q:asyncStatus (ON_DELIVERY);
//   - q:statusQuery: the delivery state of an earlier request; the reply holds q:asyncStatus;
//   - q:fetchQuery: the signed reply of an earlier request, exactly as the broker stored it.
//
// statusQuery and fetchQuery name the request by the broker's id: the messageId of the ack.

// The local names of the asynchronous queries.
const (
	AsyncStatusQuery = "statusQuery"
	AsyncFetchQuery  = "fetchQuery"
)

// AsyncStatus is the q:asyncStatus of an ack or of a status reply.
type AsyncStatus struct {
	RequestMessageID string // the messageId of the request this reply answers (the submit, or the status query)
	MessageID        string // the broker's id of the asynchronous request
	CorrelationID    string // the client's messageId of the asynchronous request
	State            siobroker.AsyncState
	Message          string
}

// NewAsyncQueryRequest builds an unsigned SendMessage envelope carrying q:statusQuery or
// q:fetchQuery (kind) for the asynchronous request with the broker's id messageID.
func NewAsyncQueryRequest(info siobroker.RequestInfo, kind, messageID string) *etree.Document {
	doc, data := newRequestData(info)
	qe := data.CreateElement(prefixQ + ":" + kind)
	qe.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	qe.CreateAttr("Id", "id-aq-"+idPart(info.MessageID))
	leaf(qe, prefixQ+":messageId", messageID)
	return doc
}

// IsAsyncQuery reports whether el is a q:statusQuery or q:fetchQuery, by name only.
func IsAsyncQuery(el *etree.Element) bool {
	return el != nil && el.NamespaceURI() == schemas.NSQuery && (el.Tag == AsyncStatusQuery || el.Tag == AsyncFetchQuery)
}

// ParseAsyncQuery validates a q:statusQuery or q:fetchQuery element against sio-query-v1.xsd and
// returns its kind and the messageId it asks about.
func ParseAsyncQuery(el *etree.Element) (kind, messageID string, err error) {
	if !IsAsyncQuery(el) {
		return "", "", siobroker.FieldError("requestData/data", "expected q:statusQuery or q:fetchQuery, found %s", describe(el))
	}
	p := el.Tag
	if err := rootElement(el, p); err != nil {
		return "", "", err
	}
	s, err := querySeq(el, p, "messageId")
	if err != nil {
		return "", "", err
	}
	e, err := s.req("messageId")
	if err != nil {
		return "", "", err
	}
	if messageID, err = text(e, p+"/messageId"); err != nil {
		return "", "", err
	}
	if err := token64(p+"/messageId", messageID); err != nil {
		return "", "", err
	}
	return p, messageID, s.end()
}

// NewAsyncStatusResponse builds an unsigned SendMessageResponse envelope around q:asyncStatus.
func NewAsyncStatusResponse(info ResponseInfo, st AsyncStatus) *etree.Document {
	doc, data := newResponseData(info)
	ae := data.CreateElement(prefixQ + ":asyncStatus")
	ae.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	ae.CreateAttr("Id", "id-as-"+idPart(info.MessageID))
	leaf(ae, prefixQ+":requestMessageId", st.RequestMessageID)
	leaf(ae, prefixQ+":messageId", st.MessageID)
	leaf(ae, prefixQ+":correlationId", st.CorrelationID)
	leaf(ae, prefixQ+":state", string(st.State))
	optLeaf(ae, prefixQ+":message", st.Message)
	return doc
}

// ParseAsyncStatusResponse reads a SendMessageResponse carrying q:asyncStatus from a Body. A Body
// holding a soapenv:Fault gives the fault's error. In the enveloped placement only q:asyncStatus is
// signed; the client reads that with ParseAsyncStatus from the verified element.
func ParseAsyncStatusResponse(body *etree.Element) (ResponseInfo, AsyncStatus, error) {
	info, data, err := responseParts(body)
	if err != nil {
		return info, AsyncStatus{}, err
	}
	st, err := ParseAsyncStatus(data)
	return info, st, err
}

// ParseAsyncStatus validates and reads a q:asyncStatus element on its own: the content an
// enveloped reply signature covers.
func ParseAsyncStatus(el *etree.Element) (AsyncStatus, error) {
	var st AsyncStatus
	const p = "asyncStatus"
	if err := rootElement(el, p); err != nil {
		return st, err
	}
	s, err := querySeq(el, p, "requestMessageId", "messageId", "correlationId", "state", "message")
	if err != nil {
		return st, err
	}
	str := func(name string) (string, error) {
		e, err := s.req(name)
		if err != nil {
			return "", err
		}
		return text(e, p+"/"+name)
	}
	if st.RequestMessageID, err = str("requestMessageId"); err != nil {
		return st, err
	}
	if st.MessageID, err = str("messageId"); err != nil {
		return st, err
	}
	if err := token64(p+"/messageId", st.MessageID); err != nil {
		return st, err
	}
	if st.CorrelationID, err = str("correlationId"); err != nil {
		return st, err
	}
	state, err := str("state")
	if err != nil {
		return st, err
	}
	if st.State = siobroker.AsyncState(state); !st.State.Valid() {
		return st, siobroker.FieldError(p+"/state", "must be ON_DELIVERY, DELIVERED, NOT_DELIVERED or DELIVERY_STOPPED, got %q", state)
	}
	if e := s.opt("message"); e != nil {
		if st.Message, err = text(e, p+"/message"); err != nil {
			return st, err
		}
	}
	return st, s.end()
}
