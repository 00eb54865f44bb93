package soap

import (
	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
)

// ParseRequestInfo validates requestInfo against SyncMessageInfo of bip-sync-v10-types.xsd and
// returns it. Beyond the XSD, messageId, serviceId and senderId must not be blank (replay detection
// and routing depend on them) and messageDate must carry an offset. sender/password is accepted and
// dropped: the broker authenticates by signature, and a password must not reach the journal.
func ParseRequestInfo(el *etree.Element) (siobroker.RequestInfo, error) {
	var ri siobroker.RequestInfo
	const p = "requestInfo"
	if el == nil {
		return ri, siobroker.FieldError(p, "is required")
	}
	if el.Tag != "requestInfo" || el.NamespaceURI() != "" {
		return ri, siobroker.FieldError(p, "expected unqualified <requestInfo>, found %s", describe(el))
	}
	s, err := newSeq(el, p, "", "messageId", "correlationId", "serviceId", "messageDate", "routeId", "sender", "properties", "sessionId")
	if err != nil {
		return ri, err
	}
	if ri.MessageID, err = reqString(s, "messageId", true); err != nil {
		return ri, err
	}
	if ri.CorrelationID, err = optString(s, "correlationId"); err != nil {
		return ri, err
	}
	if ri.ServiceID, err = reqString(s, "serviceId", true); err != nil {
		return ri, err
	}
	md, err := reqString(s, "messageDate", false)
	if err != nil {
		return ri, err
	}
	if ri.MessageDate, err = xsDateTime(p+"/messageDate", md); err != nil {
		return ri, err
	}
	if ri.RouteID, err = optString(s, "routeId"); err != nil {
		return ri, err
	}
	sender, err := s.req("sender")
	if err != nil {
		return ri, err
	}
	ss, err := newSeq(sender, p+"/sender", "", "senderId", "password")
	if err != nil {
		return ri, err
	}
	if ri.SenderID, err = reqString(ss, "senderId", true); err != nil {
		return ri, err
	}
	if _, err = optString(ss, "password"); err != nil {
		return ri, err
	}
	if err := ss.end(); err != nil {
		return ri, err
	}
	props, err := s.many("properties", 0, 0)
	if err != nil {
		return ri, err
	}
	for _, pe := range props {
		ps, err := newSeq(pe, p+"/properties", "", "key", "value")
		if err != nil {
			return ri, err
		}
		var prop siobroker.Property
		if prop.Key, err = reqString(ps, "key", false); err != nil {
			return ri, err
		}
		if prop.Value, err = reqString(ps, "value", false); err != nil {
			return ri, err
		}
		if err := ps.end(); err != nil {
			return ri, err
		}
		ri.Properties = append(ri.Properties, prop)
	}
	if ri.SessionID, err = optString(s, "sessionId"); err != nil {
		return ri, err
	}
	return ri, s.end()
}

// reqString reads a required xs:string child; notBlank adds the broker's non-empty rule.
func reqString(s *seq, name string, notBlank bool) (string, error) {
	e, err := s.req(name)
	if err != nil {
		return "", err
	}
	v, err := text(e, s.child(name))
	if err != nil {
		return "", err
	}
	if notBlank {
		if err := nonEmpty(s.child(name), v); err != nil {
			return "", err
		}
	}
	return v, nil
}

// optString reads an optional xs:string child; absent gives "".
func optString(s *seq, name string) (string, error) {
	e := s.opt(name)
	if e == nil {
		return "", nil
	}
	return text(e, s.child(name))
}
