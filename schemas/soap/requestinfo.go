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
	if ri.SenderID, err = senderInfo(s, p, true); err != nil {
		return ri, err
	}
	// Our SyncChannel XSD declares no lengths for properties; the gateway's published one does.
	if ri.Properties, err = properties(s, p, false); err != nil {
		return ri, err
	}
	if ri.SessionID, err = optString(s, "sessionId"); err != nil {
		return ri, err
	}
	return ri, s.end()
}

// senderInfo reads a SenderInfo (senderId, password?) and returns the senderId. The password is
// dropped: the broker authenticates by signature, and a password must not reach the journal.
func senderInfo(s *seq, p string, required bool) (string, error) {
	var sender *etree.Element
	if required {
		var err error
		if sender, err = s.req("sender"); err != nil {
			return "", err
		}
	} else if sender = s.opt("sender"); sender == nil {
		return "", nil
	}
	ss, err := newSeq(sender, p+"/sender", "", "senderId", "password")
	if err != nil {
		return "", err
	}
	id, err := reqString(ss, "senderId", true)
	if err != nil {
		return "", err
	}
	if _, err = optString(ss, "password"); err != nil {
		return "", err
	}
	return id, ss.end()
}

// properties reads the properties* of requestInfo or messageInfo; published adds the lengths the
// gateway's common types give key (30) and value (500).
func properties(s *seq, p string, published bool) ([]siobroker.Property, error) {
	props, err := s.many("properties", 0, 0)
	if err != nil {
		return nil, err
	}
	var out []siobroker.Property
	for _, pe := range props {
		ps, err := newSeq(pe, p+"/properties", "", "key", "value")
		if err != nil {
			return nil, err
		}
		var prop siobroker.Property
		if prop.Key, err = reqString(ps, "key", false); err != nil {
			return nil, err
		}
		if prop.Value, err = reqString(ps, "value", false); err != nil {
			return nil, err
		}
		if published {
			if err := lengthIn(p+"/properties/key", prop.Key, 0, 30); err != nil {
				return nil, err
			}
			if err := lengthIn(p+"/properties/value", prop.Value, 0, 500); err != nil {
				return nil, err
			}
		}
		if err := ps.end(); err != nil {
			return nil, err
		}
		out = append(out, prop)
	}
	return out, nil
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
