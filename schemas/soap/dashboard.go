package soap

import (
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// The operator's dashboard is entered with a signed login: POST /dashboard/login takes the same
// SendMessage envelope as a query, signed in either placement, whose requestData/data holds one
// q:dashboardLogin; the reply's data holds q:dashboardTicket, the link of a one-time ticket that
// opens a session in a browser. The types are in sio-query-v1.xsd.
//
// q:dashboardLogin carries its own issuedAt: in the enveloped placement requestInfo (and with it
// messageDate) is outside the signature, so without a signed time a captured login could be
// posted again with a fresh messageDate once the broker had forgotten it.

// DashboardLogin is a q:dashboardLogin.
type DashboardLogin struct {
	IssuedAt time.Time // when the login was signed; the broker accepts it only within its window
}

// DashboardTicket is the q:dashboardTicket of a login reply.
type DashboardTicket struct {
	RequestMessageID string    // the messageId of the login it answers
	Link             string    // where the ticket is used: a path and query, e.g. /dashboard/?ticket=...
	Expires          time.Time // after this the ticket opens nothing
}

// NewDashboardLoginRequest builds an unsigned SendMessage envelope carrying q:dashboardLogin,
// issued at info.MessageDate.
func NewDashboardLoginRequest(info siobroker.RequestInfo) *etree.Document {
	doc, data := newRequestData(info)
	le := data.CreateElement(prefixQ + ":dashboardLogin")
	le.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	le.CreateAttr("Id", "id-dl-"+idPart(info.MessageID))
	leaf(le, prefixQ+":issuedAt", siobroker.FormatTime(info.MessageDate))
	return doc
}

// ParseDashboardLogin validates a q:dashboardLogin element (the one the signature verifier
// returned, or the one in the signed Body) against sio-query-v1.xsd and returns it.
func ParseDashboardLogin(el *etree.Element) (DashboardLogin, error) {
	var l DashboardLogin
	const p = "dashboardLogin"
	if err := rootElement(el, p); err != nil {
		return l, err
	}
	s, err := querySeq(el, p, "issuedAt")
	if err != nil {
		return l, err
	}
	e, err := s.req("issuedAt")
	if err != nil {
		return l, err
	}
	v, err := text(e, s.child("issuedAt"))
	if err != nil {
		return l, err
	}
	if l.IssuedAt, err = xsDateTime(s.child("issuedAt"), v); err != nil {
		return l, err
	}
	return l, s.end()
}

// NewDashboardTicketResponse builds an unsigned SendMessageResponse envelope around
// q:dashboardTicket.
func NewDashboardTicketResponse(info ResponseInfo, t DashboardTicket) *etree.Document {
	doc, data := newResponseData(info)
	te := data.CreateElement(prefixQ + ":dashboardTicket")
	te.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	te.CreateAttr("Id", "id-dt-"+idPart(info.MessageID))
	leaf(te, prefixQ+":requestMessageId", t.RequestMessageID)
	leaf(te, prefixQ+":link", t.Link)
	leaf(te, prefixQ+":expires", siobroker.FormatTime(t.Expires))
	return doc
}

// ParseDashboardTicketResponse reads a SendMessageResponse carrying q:dashboardTicket from a Body.
// A Body holding a soapenv:Fault gives the fault's error. In the enveloped placement only
// q:dashboardTicket is signed; the client reads that with ParseDashboardTicket.
func ParseDashboardTicketResponse(body *etree.Element) (ResponseInfo, DashboardTicket, error) {
	info, data, err := responseParts(body)
	if err != nil {
		return info, DashboardTicket{}, err
	}
	t, err := ParseDashboardTicket(data)
	return info, t, err
}

// ParseDashboardTicket validates and reads a q:dashboardTicket element on its own.
func ParseDashboardTicket(el *etree.Element) (DashboardTicket, error) {
	var t DashboardTicket
	const p = "dashboardTicket"
	if err := rootElement(el, p); err != nil {
		return t, err
	}
	s, err := querySeq(el, p, "requestMessageId", "link", "expires")
	if err != nil {
		return t, err
	}
	str := func(name string) (string, error) {
		e, err := s.req(name)
		if err != nil {
			return "", err
		}
		return text(e, s.child(name))
	}
	if t.RequestMessageID, err = str("requestMessageId"); err != nil {
		return t, err
	}
	if t.Link, err = str("link"); err != nil {
		return t, err
	}
	if err := lengthIn(s.child("link"), t.Link, 1, 2048); err != nil {
		return t, err
	}
	exp, err := str("expires")
	if err != nil {
		return t, err
	}
	if t.Expires, err = xsDateTime(s.child("expires"), exp); err != nil {
		return t, err
	}
	return t, s.end()
}
