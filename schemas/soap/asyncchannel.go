package soap

import (
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// This file is the wire format of the e-government gateway's AsyncChannel v10 (IAsyncChannel), as
// published (schemas/async-channel-v10*.wsdl and the XSDs they import; docs/research/
// asyncchannel-v10.md gives the sources). Its global elements are in the AsyncChannel Types
// namespace and every child is unqualified, as in SyncChannel; its names are lower-case.
//
// The broker serves it at /AsyncChannel/v10 beside its own asynchronous variant of the
// SyncChannel envelope (async.go): the Body's element tells them apart.

// The operations of IAsyncChannel, by the local name of their input element.
const (
	ACSendMessage              = "sendMessage"
	ACSendDeliveryNotification = "sendDeliveryNotification"
	ACGetMessageStatus         = "getMessageStatus"
	ACGetMessages              = "getMessages"
)

// The message types of AsyncMessageInfo/messageType.
const (
	ACRequest  = "REQUEST"
	ACResponse = "RESPONSE"
)

// acOperations are the operations, for recognising a Body.
var acOperations = []string{ACSendMessage, ACSendDeliveryNotification, ACGetMessageStatus, ACGetMessages}

// ACOperation returns the AsyncChannel v10 operation whose input element the Body holds, or "".
func ACOperation(body *etree.Element) string {
	if body == nil {
		return ""
	}
	kids := body.ChildElements()
	if len(kids) != 1 || kids[0].NamespaceURI() != schemas.NSAsyncTypes {
		return ""
	}
	if contains(acOperations, kids[0].Tag) {
		return kids[0].Tag
	}
	return ""
}

// ACMessageInfo is an AsyncMessageInfo.
type ACMessageInfo struct {
	MessageID     string // empty in a REQUEST sent to the gateway, by the contract
	CorrelationID string // empty in a REQUEST
	ServiceID     string
	MessageType   string
	RouteID       string
	MessageDate   time.Time
	SenderID      string
	Properties    []siobroker.Property
	SessionID     string
}

// ACNotification is the DeliveryNotification of a sendDeliveryNotification.
type ACNotification struct {
	MessageID        string
	ServiceID        string
	NotificationDate time.Time
	Receipt          siobroker.AsyncReceipt
	StatusDate       time.Time
	ErrorCode        string // deliveryStatus/error, when the client says why it refused
	ErrorMessage     string
}

// ACCall is one AsyncChannel v10 request, read from a Body.
type ACCall struct {
	Operation string
	// sendMessage
	Info ACMessageInfo
	// Data is the one element of messageData/data or, when data is typed with xsi:type (an
	// xsd:anyType holding the content of a type, as zeep writes it), data itself: DataTyped then
	// names the type.
	Data      *etree.Element
	DataTyped string
	// getMessageStatus, getMessages
	MessageID     string
	CorrelationID string
	ServiceID     string
	Amount        int
	// every operation but sendMessage: requestDate (optional in getMessages) and sender
	RequestDate time.Time
	SenderID    string
	// sendDeliveryNotification
	Notification ACNotification
}

// Date is the time the call was made at, by its own account: messageDate of a sendMessage,
// requestDate of the others (zero when getMessages omits it).
func (c ACCall) Date() time.Time {
	if c.Operation == ACSendMessage {
		return c.Info.MessageDate
	}
	return c.RequestDate
}

// ParseACCall validates the AsyncChannel v10 request a Body holds against the published types and
// returns it. The Body is the document's, or the one a WS-Security verifier returned.
func ParseACCall(body *etree.Element) (ACCall, error) {
	var c ACCall
	if !isBody(body) {
		return c, siobroker.Errorf(siobroker.CodeNotSOAP, "not a SOAP 1.1 Body")
	}
	op, err := singleChild(body)
	if err != nil {
		return c, err
	}
	if op.NamespaceURI() != schemas.NSAsyncTypes || !contains(acOperations, op.Tag) {
		return c, siobroker.Errorf(siobroker.CodeNotSOAP, "the Body must hold an AsyncChannel v10 operation (sendMessage, getMessageStatus, getMessages, sendDeliveryNotification), found %s", describe(op))
	}
	c.Operation = op.Tag
	s, err := newSeq(op, op.Tag, "", "request")
	if err != nil {
		return c, err
	}
	req, err := s.req("request")
	if err != nil {
		return c, err
	}
	if err := s.end(); err != nil {
		return c, err
	}
	p := op.Tag + "/request"
	switch c.Operation {
	case ACSendMessage:
		err = parseACSendMessage(req, p, &c)
	case ACGetMessageStatus:
		err = parseACGetMessageStatus(req, p, &c)
	case ACGetMessages:
		err = parseACGetMessages(req, p, &c)
	case ACSendDeliveryNotification:
		err = parseACDeliveryNotification(req, p, &c)
	}
	return c, err
}

func parseACSendMessage(req *etree.Element, p string, c *ACCall) error {
	s, err := newSeq(req, p, "", "messageInfo", "messageData")
	if err != nil {
		return err
	}
	mi, err := s.req("messageInfo")
	if err != nil {
		return err
	}
	if c.Info, err = parseACMessageInfo(mi, p+"/messageInfo"); err != nil {
		return err
	}
	md, err := s.req("messageData")
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	if d := typedData(md); d != nil {
		c.Data, c.DataTyped = d, "{"+schemas.NSQuery+"}Query"
		return nil
	}
	c.Data, err = dataChild(md, p+"/messageData")
	return err
}

// typedData returns messageData/data when it is typed xsi:type="q:Query" (data is xsd:anyType in
// AsyncChannel v10, and a toolkit such as zeep serialises a typed value so: the query's children
// directly in data); nil otherwise.
func typedData(md *etree.Element) *etree.Element {
	kids := md.ChildElements()
	if len(kids) != 1 || kids[0].Tag != "data" || kids[0].NamespaceURI() != "" {
		return nil
	}
	d := kids[0]
	for _, a := range d.Attr {
		if a.Key != "type" || a.NamespaceURI() != nsXSI {
			continue
		}
		prefix, local, ok := strings.Cut(strings.TrimSpace(a.Value), ":")
		if !ok {
			prefix, local = "", prefix
		}
		if local != "Query" {
			continue
		}
		// Exclusive canonicalisation drops a declaration used only inside an attribute value, so
		// in the signed copy the type's prefix is unbound (zeep signs so). The content is then
		// read as a query, and ParseQuery holds its elements, whose namespaces are signed, to the
		// query's namespace: an unqualified child is refused by name, not as a stray xsi:type.
		if uri := prefixURI(d, prefix); uri == schemas.NSQuery || uri == "" {
			return d
		}
	}
	return nil
}

const nsXSI = "http://www.w3.org/2001/XMLSchema-instance"

// prefixURI returns the namespace prefix is bound to at el ("" for the default namespace).
func prefixURI(el *etree.Element, prefix string) string {
	for e := el; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if (prefix == "" && a.Space == "" && a.Key == "xmlns") || (prefix != "" && a.Space == "xmlns" && a.Key == prefix) {
				return a.Value
			}
		}
	}
	return ""
}

// QueryElement returns the q:query a sendMessage carries. A typed data element (DataTyped) is
// turned into a q:query in place, its xsi:type removed: call it only on a tree of one's own (the
// verifier's copy of the signed Body), never on the tree a signature is verified over.
func (c ACCall) QueryElement() *etree.Element {
	if c.DataTyped == "" || c.Data == nil {
		return c.Data
	}
	d := c.Data
	for _, a := range slices.Clone(d.Attr) {
		if a.Key == "type" && a.NamespaceURI() == nsXSI {
			d.RemoveAttr(a.FullKey())
		}
	}
	d.CreateAttr("xmlns:sioq", schemas.NSQuery)
	d.Space, d.Tag = "sioq", "query"
	return d
}

// parseACMessageInfo reads an AsyncMessageInfo. sender/password is accepted and dropped: the broker
// authenticates by signature, and a password must not reach the journal.
func parseACMessageInfo(el *etree.Element, p string) (ACMessageInfo, error) {
	var mi ACMessageInfo
	s, err := newSeq(el, p, "", "messageId", "correlationId", "serviceId", "messageType", "routeId", "messageDate", "sender", "properties", "sessionId")
	if err != nil {
		return mi, err
	}
	if mi.MessageID, err = optString(s, "messageId"); err != nil {
		return mi, err
	}
	if mi.CorrelationID, err = optString(s, "correlationId"); err != nil {
		return mi, err
	}
	if mi.ServiceID, err = reqString(s, "serviceId", true); err != nil {
		return mi, err
	}
	if mi.MessageType, err = reqString(s, "messageType", false); err != nil {
		return mi, err
	}
	switch mi.MessageType {
	case ACRequest, "NOTIFICATION", "UPDATE", ACResponse:
	default:
		return mi, siobroker.FieldError(p+"/messageType", "must be REQUEST, NOTIFICATION, UPDATE or RESPONSE, got %q", mi.MessageType)
	}
	if mi.RouteID, err = optString(s, "routeId"); err != nil {
		return mi, err
	}
	md, err := reqString(s, "messageDate", false)
	if err != nil {
		return mi, err
	}
	if mi.MessageDate, err = xsDateTime(p+"/messageDate", md); err != nil {
		return mi, err
	}
	if mi.SenderID, err = senderInfo(s, p, true); err != nil {
		return mi, err
	}
	if mi.Properties, err = properties(s, p, true); err != nil {
		return mi, err
	}
	if mi.SessionID, err = optString(s, "sessionId"); err != nil {
		return mi, err
	}
	return mi, s.end()
}

func acDate(s *seq, name string, required bool) (time.Time, error) {
	var raw string
	var err error
	if required {
		raw, err = reqString(s, name, false)
	} else {
		raw, err = optString(s, name)
	}
	if err != nil || raw == "" {
		return time.Time{}, err
	}
	return xsDateTime(s.child(name), raw)
}

func parseACGetMessageStatus(req *etree.Element, p string, c *ACCall) error {
	s, err := newSeq(req, p, "", "messageId", "requestDate", "sender", "properties")
	if err != nil {
		return err
	}
	if c.MessageID, err = reqString(s, "messageId", true); err != nil {
		return err
	}
	if c.RequestDate, err = acDate(s, "requestDate", true); err != nil {
		return err
	}
	if c.SenderID, err = senderInfo(s, p, true); err != nil {
		return err
	}
	if _, err = properties(s, p, true); err != nil {
		return err
	}
	return s.end()
}

func parseACGetMessages(req *etree.Element, p string, c *ACCall) error {
	s, err := newSeq(req, p, "", "messageId", "correlationId", "requestDate", "serviceId", "sender", "amount", "properties")
	if err != nil {
		return err
	}
	if c.MessageID, err = optString(s, "messageId"); err != nil {
		return err
	}
	if c.CorrelationID, err = optString(s, "correlationId"); err != nil {
		return err
	}
	if c.RequestDate, err = acDate(s, "requestDate", false); err != nil {
		return err
	}
	if c.ServiceID, err = reqString(s, "serviceId", true); err != nil {
		return err
	}
	if c.SenderID, err = senderInfo(s, p, false); err != nil {
		return err
	}
	amount, err := optString(s, "amount")
	if err != nil {
		return err
	}
	if amount != "" {
		if c.Amount, err = xsInt(p+"/amount", amount, 0, 1<<31-1); err != nil {
			return err
		}
	}
	if _, err = properties(s, p, true); err != nil {
		return err
	}
	return s.end()
}

func parseACDeliveryNotification(req *etree.Element, p string, c *ACCall) error {
	s, err := newSeq(req, p, "", "notification", "requestDate", "sender")
	if err != nil {
		return err
	}
	ne, err := s.req("notification")
	if err != nil {
		return err
	}
	if err := parseACNotification(ne, p+"/notification", &c.Notification); err != nil {
		return err
	}
	if c.RequestDate, err = acDate(s, "requestDate", true); err != nil {
		return err
	}
	if c.SenderID, err = senderInfo(s, p, false); err != nil {
		return err
	}
	return s.end()
}

// parseACNotification reads the notification element ne, at path np, of a
// sendDeliveryNotification into n.
func parseACNotification(ne *etree.Element, np string, n *ACNotification) error {
	ns, err := newSeq(ne, np, "", "messageId", "serviceId", "notificationDate", "deliveryStatus")
	if err != nil {
		return err
	}
	if n.MessageID, err = reqString(ns, "messageId", true); err != nil {
		return err
	}
	if n.ServiceID, err = reqString(ns, "serviceId", true); err != nil {
		return err
	}
	if n.NotificationDate, err = acDate(ns, "notificationDate", true); err != nil {
		return err
	}
	ds, err := ns.req("deliveryStatus")
	if err != nil {
		return err
	}
	if err := ns.end(); err != nil {
		return err
	}
	return parseACDeliveryStatus(ds, np+"/deliveryStatus", n)
}

// parseACDeliveryStatus reads the deliveryStatus element ds, at path dp, into n: the receipt,
// its date, and the code and message of the client's error if it gives one.
func parseACDeliveryStatus(ds *etree.Element, dp string, n *ACNotification) error {
	dss, err := newSeq(ds, dp, "", "receiveStatus", "statusDate", "resendMessage", "error")
	if err != nil {
		return err
	}
	receive, err := reqString(dss, "receiveStatus", false)
	if err != nil {
		return err
	}
	switch receive {
	case "MESSAGE_ACCEPTED":
		n.Receipt.Accepted = true
	case "MESSAGE_NOT_ACCTEPTED": // sic: the published enumeration's spelling
	default:
		return siobroker.FieldError(dp+"/receiveStatus", "must be MESSAGE_ACCEPTED or MESSAGE_NOT_ACCTEPTED (as the gateway spells it), got %q", receive)
	}
	if n.StatusDate, err = acDate(dss, "statusDate", true); err != nil {
		return err
	}
	resend, err := reqString(dss, "resendMessage", false)
	if err != nil {
		return err
	}
	switch resend {
	case "RESEND":
		n.Receipt.Resend = !n.Receipt.Accepted
	case "NOT_RESEND":
	default:
		return siobroker.FieldError(dp+"/resendMessage", "must be RESEND or NOT_RESEND, got %q", resend)
	}
	if ee := dss.opt("error"); ee != nil {
		es, err := newSeq(ee, dp+"/error", "", "errorCode", "errorMessage", "errorData", "errorDate", "subError", "sessionId")
		if err != nil {
			return err
		}
		if n.ErrorCode, err = reqString(es, "errorCode", false); err != nil {
			return err
		}
		if n.ErrorMessage, err = reqString(es, "errorMessage", false); err != nil {
			return err
		}
		// The rest of the client's error (data, date, nested errors) is its own business; only
		// code and message are kept in the journal.
	}
	return dss.end()
}

// ACMessage is one AsyncMessage of a getMessagesResponse: its info and the one element of its data.
type ACMessage struct {
	Info ACMessageInfo
	Data *etree.Element
}

// ACStatus is the answer of getMessageStatus.
type ACStatus struct {
	State         siobroker.AsyncState
	StatusCode    string
	StatusMessage string
	StatusDate    time.Time
}

// newACResponse writes Envelope{Header, Body wsu:Id}/typ:<operation>Response/response and returns
// the document and the response element.
func newACResponse(operation, id string) (*etree.Document, *etree.Element) {
	doc, body := newEnvelope(id)
	r := body.CreateElement(prefixTyp + ":" + operation + "Response")
	r.CreateAttr("xmlns:"+prefixTyp, schemas.NSAsyncTypes)
	return doc, r.CreateElement("response")
}

// NewACSendMessageResponse builds the unsigned acknowledgement of a sendMessage.
func NewACSendMessageResponse(messageID, correlationID string, at time.Time, sessionID string) *etree.Document {
	doc, r := newACResponse(ACSendMessage, messageID)
	leaf(r, "messageId", messageID)
	leaf(r, "correlationId", correlationID)
	leaf(r, "responseDate", siobroker.FormatTime(at))
	optLeaf(r, "sessionId", sessionID)
	return doc
}

// NewACGetMessageStatusResponse builds the unsigned answer of a getMessageStatus. id names the
// Body.
func NewACGetMessageStatusResponse(id string, st ACStatus, at time.Time) *etree.Document {
	doc, r := newACResponse(ACGetMessageStatus, id)
	leaf(r, "messageState", string(st.State))
	se := r.CreateElement("status")
	leaf(se, "statusCode", st.StatusCode)
	leaf(se, "statusMessage", st.StatusMessage)
	leaf(se, "statusDate", siobroker.FormatTime(st.StatusDate))
	leaf(r, "responseDate", siobroker.FormatTime(at))
	return doc
}

// NewACGetMessagesResponse builds the unsigned answer of a getMessages. Each message's data
// element is copied in.
func NewACGetMessagesResponse(id string, at time.Time, sessionID string, msgs []ACMessage) *etree.Document {
	doc, r := newACResponse(ACGetMessages, id)
	leaf(r, "responseDate", siobroker.FormatTime(at))
	leaf(r, "sessionId", sessionID)
	for _, m := range msgs {
		me := r.CreateElement("messages")
		writeACMessageInfo(me.CreateElement("messageInfo"), m.Info)
		me.CreateElement("messageData").CreateElement("data").AddChild(m.Data.Copy())
	}
	return doc
}

// NewACDeliveryNotificationResponse builds the unsigned answer of a sendDeliveryNotification.
func NewACDeliveryNotificationResponse(notificationID string, at time.Time, sessionID string) *etree.Document {
	doc, r := newACResponse(ACSendDeliveryNotification, notificationID)
	leaf(r, "notificationId", notificationID)
	leaf(r, "responseDate", siobroker.FormatTime(at))
	leaf(r, "sessionId", sessionID)
	return doc
}

func writeACMessageInfo(el *etree.Element, mi ACMessageInfo) {
	optLeaf(el, "messageId", mi.MessageID)
	optLeaf(el, "correlationId", mi.CorrelationID)
	leaf(el, "serviceId", mi.ServiceID)
	leaf(el, "messageType", mi.MessageType)
	optLeaf(el, "routeId", mi.RouteID)
	leaf(el, "messageDate", siobroker.FormatTime(mi.MessageDate))
	leaf(el.CreateElement("sender"), "senderId", mi.SenderID)
	for _, p := range mi.Properties {
		pe := el.CreateElement("properties")
		leaf(pe, "key", p.Key)
		leaf(pe, "value", p.Value)
	}
	optLeaf(el, "sessionId", mi.SessionID)
}

// StoredResult returns the q:result of a signed reply the broker stored, as an element of its own
// without any ds:Signature: getMessages hands it out inside a new envelope that the broker signs
// as a whole.
func StoredResult(reply []byte) (*etree.Element, error) {
	doc, err := parseXML(reply, Limits{MaxBytes: int64(len(reply)) + 1, MaxDepth: DefaultMaxDepth, MaxElements: 1 << 20})
	if err != nil {
		return nil, err
	}
	body, err := envelopeBody(doc)
	if err != nil {
		return nil, err
	}
	_, data, err := responseParts(body)
	if err != nil {
		return nil, err
	}
	result := data.Copy()
	for _, c := range result.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == schemas.NSDSig {
			result.RemoveChild(c)
		}
	}
	return result, nil
}
