package soap

import (
	"strconv"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// The client's side of AsyncChannel v10, for the broker's own tests and client: building the
// calls, and locating what an answer holds after its signature has been verified (the readers
// trust the broker's shapes).

// newACRequest writes Envelope{Header, Body wsu:Id}/typ:<operation>/request and returns the
// document and the request element.
func newACRequest(operation, id string) (*etree.Document, *etree.Element) {
	doc, body := newEnvelope(id)
	op := body.CreateElement(prefixTyp + ":" + operation)
	op.CreateAttr("xmlns:"+prefixTyp, schemas.NSAsyncTypes)
	return doc, op.CreateElement("request")
}

// NewACSendMessage builds an unsigned sendMessage REQUEST carrying q:query, as a client of the
// gateway's contract sends it (the broker's own tests and client use it). id names the Body.
func NewACSendMessage(id string, mi ACMessageInfo, q siobroker.Query) *etree.Document {
	doc, r := newACRequest(ACSendMessage, id)
	writeACMessageInfo(r.CreateElement("messageInfo"), mi)
	query := NewRequest(siobroker.RequestInfo{MessageID: id}, q).FindElement("//data/*")
	r.CreateElement("messageData").CreateElement("data").AddChild(query.Copy())
	return doc
}

// NewACGetMessageStatus builds an unsigned getMessageStatus for messageID.
func NewACGetMessageStatus(id, messageID, senderID string, at time.Time) *etree.Document {
	doc, r := newACRequest(ACGetMessageStatus, id)
	leaf(r, "messageId", messageID)
	leaf(r, "requestDate", siobroker.FormatTime(at))
	leaf(r.CreateElement("sender"), "senderId", senderID)
	return doc
}

// NewACGetMessages builds an unsigned getMessages; messageID and correlationID may be empty, and
// amount 0 leaves the number to the broker.
func NewACGetMessages(id, serviceID, messageID, correlationID, senderID string, amount int, at time.Time) *etree.Document {
	doc, r := newACRequest(ACGetMessages, id)
	optLeaf(r, "messageId", messageID)
	optLeaf(r, "correlationId", correlationID)
	leaf(r, "requestDate", siobroker.FormatTime(at))
	leaf(r, "serviceId", serviceID)
	leaf(r.CreateElement("sender"), "senderId", senderID)
	if amount > 0 {
		leaf(r, "amount", strconv.Itoa(amount))
	}
	return doc
}

// NewACSendDeliveryNotification builds an unsigned sendDeliveryNotification of the message
// messageID.
func NewACSendDeliveryNotification(id, messageID, serviceID, senderID string, receipt siobroker.AsyncReceipt, at time.Time) *etree.Document {
	doc, r := newACRequest(ACSendDeliveryNotification, id)
	n := r.CreateElement("notification")
	leaf(n, "messageId", messageID)
	leaf(n, "serviceId", serviceID)
	leaf(n, "notificationDate", siobroker.FormatTime(at))
	ds := n.CreateElement("deliveryStatus")
	receive, resend := "MESSAGE_NOT_ACCTEPTED", "NOT_RESEND"
	if receipt.Accepted {
		receive = "MESSAGE_ACCEPTED"
	}
	if receipt.Resend {
		resend = "RESEND"
	}
	leaf(ds, "receiveStatus", receive)
	leaf(ds, "statusDate", siobroker.FormatTime(at))
	leaf(ds, "resendMessage", resend)
	leaf(r, "requestDate", siobroker.FormatTime(at))
	leaf(r.CreateElement("sender"), "senderId", senderID)
	return doc
}

// The readers below are the client's side of AsyncChannel v10, for the broker's own tests and
// client: they locate what a reply holds after its signature has been verified, and trust the
// broker's shapes.

// acResponse returns the response element of typ:<operation>Response in a Body, or the fault's
// error.
func acResponse(body *etree.Element, operation string) (*etree.Element, error) {
	if !isBody(body) {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "not a SOAP 1.1 Body")
	}
	r, err := singleChild(body)
	if err != nil {
		return nil, err
	}
	if r.Tag == "Fault" && r.NamespaceURI() == schemas.NSSoapEnv {
		return nil, faultError(r)
	}
	if r.Tag != operation+"Response" || r.NamespaceURI() != schemas.NSAsyncTypes {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "the Body must hold typ:%sResponse, found %s", operation, describe(r))
	}
	resp := childNamed(r, "response")
	if resp == nil {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "typ:%sResponse has no response", operation)
	}
	return resp, nil
}

func childNamed(el *etree.Element, name string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == name && c.NamespaceURI() == "" {
			return c
		}
	}
	return nil
}

func childText(el *etree.Element, name string) string {
	if c := childNamed(el, name); c != nil {
		return c.Text()
	}
	return ""
}

// ParseACSendMessageResponse returns the messageId and correlationId of a sendMessage's
// acknowledgement.
func ParseACSendMessageResponse(body *etree.Element) (messageID, correlationID string, err error) {
	r, err := acResponse(body, ACSendMessage)
	if err != nil {
		return "", "", err
	}
	return childText(r, "messageId"), childText(r, "correlationId"), nil
}

// ParseACGetMessageStatusResponse returns the state of a getMessageStatus answer.
func ParseACGetMessageStatusResponse(body *etree.Element) (ACStatus, error) {
	r, err := acResponse(body, ACGetMessageStatus)
	if err != nil {
		return ACStatus{}, err
	}
	st := ACStatus{State: siobroker.AsyncState(childText(r, "messageState"))}
	if s := childNamed(r, "status"); s != nil {
		st.StatusCode, st.StatusMessage = childText(s, "statusCode"), childText(s, "statusMessage")
		st.StatusDate, _ = time.Parse(time.RFC3339Nano, childText(s, "statusDate"))
	}
	return st, nil
}

// ParseACGetMessagesResponse returns the messages of a getMessages answer, each with its q:result.
func ParseACGetMessagesResponse(body *etree.Element) ([]ACMessage, error) {
	r, err := acResponse(body, ACGetMessages)
	if err != nil {
		return nil, err
	}
	var out []ACMessage
	for _, m := range r.ChildElements() {
		if m.Tag != "messages" {
			continue
		}
		var am ACMessage
		if mi := childNamed(m, "messageInfo"); mi != nil {
			am.Info = ACMessageInfo{
				MessageID: childText(mi, "messageId"), CorrelationID: childText(mi, "correlationId"),
				ServiceID: childText(mi, "serviceId"), MessageType: childText(mi, "messageType"),
			}
			am.Info.MessageDate, _ = time.Parse(time.RFC3339Nano, childText(mi, "messageDate"))
			if s := childNamed(mi, "sender"); s != nil {
				am.Info.SenderID = childText(s, "senderId")
			}
		}
		if md := childNamed(m, "messageData"); md != nil {
			if d := childNamed(md, "data"); d != nil && len(d.ChildElements()) == 1 {
				am.Data = d.ChildElements()[0]
			}
		}
		out = append(out, am)
	}
	return out, nil
}
