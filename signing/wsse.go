package signing

import (
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// Identifiers of the OASIS Web Services Security specifications that a WS-Security header uses:
// SOAP Message Security 1.0 and 1.1 and the X.509 Certificate Token Profile 1.1
// (https://docs.oasis-open.org/wss-m/wss/v1.1.1/). They are written here as the specifications
// publish them; a client that writes another spelling is refused.
const (
	// ValueTypeX509v3 is the value type of a BinarySecurityToken, a Reference to one, or a
	// KeyIdentifier that carries one X.509 v3 certificate.
	ValueTypeX509v3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
	// ValueTypeSKI is the value type of a KeyIdentifier holding a certificate's subject key
	// identifier.
	ValueTypeSKI = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"
	// ValueTypeThumbprintSHA1 is the value type of a KeyIdentifier holding the SHA-1 of a whole
	// certificate (SOAP Message Security 1.1, §7.2; note the 1.1 URI has no "2004/01").
	ValueTypeThumbprintSHA1 = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"
	// EncodingBase64Binary is the only encoding of token and identifier values accepted.
	EncodingBase64Binary = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

	// nsWSA and nsWSA2004 are WS-Addressing 1.0 and the member submission of August 2004, whose
	// headers (To, Action, MessageID...) clients may sign beside the Body.
	nsWSA     = "http://www.w3.org/2005/08/addressing"
	nsWSA2004 = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
)

const (
	nsWSSE = schemas.NSWSSE
	nsWSU  = schemas.NSWSU
)

// securityHeader is the one wsse:Security header of an envelope and what it carries.
type securityHeader struct {
	el        *etree.Element
	signature *etree.Element // nil when the header carries no ds:Signature
	timestamp *etree.Element // nil when the header carries no wsu:Timestamp
}

// findSecurityHeader returns the wsse:Security header of an envelope's Header, or nil when there is
// none. More than one Security header, signature or Timestamp is refused: which one would count is
// exactly what a wrapping attack plays on.
func findSecurityHeader(header *etree.Element) (*securityHeader, error) {
	if header == nil {
		return nil, nil
	}
	secs := children(header, nsWSSE, "Security")
	switch {
	case len(secs) == 0:
		return nil, nil
	case len(secs) > 1:
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "the Header carries %d wsse:Security elements; one is accepted", len(secs))
	}
	sec := &securityHeader{el: secs[0]}
	switch sigs := children(sec.el, nsDSig, "Signature"); len(sigs) {
	case 0:
	case 1:
		sec.signature = sigs[0]
	default:
		return nil, siobroker.Errorf(siobroker.CodeSigReference, "wsse:Security carries %d ds:Signature elements; one is accepted", len(sigs))
	}
	switch ts := children(sec.el, nsWSU, "Timestamp"); len(ts) {
	case 0:
	case 1:
		sec.timestamp = ts[0]
	default:
		// WS-Security 1.1, §10: "exactly one" Timestamp per header.
		return nil, siobroker.Errorf(siobroker.CodeTimestamp, "wsse:Security carries %d wsu:Timestamp elements; at most one is allowed", len(ts))
	}
	return sec, nil
}

// TimestampPolicy says how a wsu:Timestamp in the Security header is checked.
type TimestampPolicy struct {
	// Clock is the broker's clock; nil disables the checks of Created and Expires.
	Clock siobroker.Clock
	// Skew is the difference between the sender's clock and ours that is tolerated: Created may
	// be up to Skew in the future, and Expires up to Skew in the past.
	Skew time.Duration
	// MaxAge, when positive, is how old Created may be, whatever Expires says: WSS4J's time to
	// live. The broker sets it to replay.window, the age a messageDate may have.
	MaxAge time.Duration
	// Require makes a signed Timestamp mandatory, and so refuses the enveloped placement, which
	// cannot sign one.
	Require bool
}

// Timestamp is a wsu:Timestamp as read from the Security header.
type Timestamp struct {
	Created, Expires time.Time // zero when absent
	// Signed reports that a Reference of the signature covers the Timestamp.
	Signed bool
}

// maxTimestampText bounds the text of Created and Expires; an xs:dateTime is about 30 characters.
const maxTimestampText = 64

// readTimestamp reads a wsu:Timestamp: at most one Created followed by at most one Expires, in
// that order (WS-Security 1.1, §10); other children are refused rather than ignored, since a
// Timestamp is what a Reference may sign.
func readTimestamp(el *etree.Element) (Timestamp, error) {
	var ts Timestamp
	seenExpires := false
	for _, c := range el.ChildElements() {
		var slot *time.Time
		switch {
		case is(c, nsWSU, "Created") && ts.Created.IsZero() && !seenExpires:
			slot = &ts.Created
		case is(c, nsWSU, "Expires") && !seenExpires:
			slot, seenExpires = &ts.Expires, true
		default:
			return ts, siobroker.Errorf(siobroker.CodeTimestamp, "wsu:Timestamp carries an unexpected %s; it holds at most one Created followed by at most one Expires", c.FullTag())
		}
		text, ok := textContent(c)
		if !ok || len(text) > maxTimestampText {
			return ts, siobroker.Errorf(siobroker.CodeTimestamp, "wsu:%s is not a date and time", c.Tag)
		}
		t, err := time.Parse(time.RFC3339Nano, stripSpace(text))
		if err != nil {
			return ts, siobroker.Wrap(siobroker.CodeTimestamp, err, "wsu:%s %q is not an xs:dateTime with a time zone", c.Tag, stripSpace(text))
		}
		*slot = t
	}
	if !ts.Created.IsZero() && !ts.Expires.IsZero() && !ts.Expires.After(ts.Created) {
		return ts, siobroker.Errorf(siobroker.CodeTimestamp, "wsu:Timestamp expires (%s) no later than it was created (%s)",
			siobroker.FormatTime(ts.Expires), siobroker.FormatTime(ts.Created))
	}
	return ts, nil
}

// check refuses a Timestamp created in the future or expired, beyond the tolerated skew.
func (p TimestampPolicy) check(ts Timestamp) error {
	if p.Clock == nil {
		return nil
	}
	now := p.Clock.Now()
	if !ts.Created.IsZero() && ts.Created.After(now.Add(p.Skew)) {
		return siobroker.Errorf(siobroker.CodeTimestamp, "wsu:Timestamp was created at %s, in the future of the broker's time %s (tolerance %s)",
			siobroker.FormatTime(ts.Created), siobroker.FormatTime(now), p.Skew)
	}
	if p.MaxAge > 0 && !ts.Created.IsZero() && ts.Created.Before(now.Add(-p.MaxAge-p.Skew)) {
		return siobroker.Errorf(siobroker.CodeTimestamp, "wsu:Timestamp was created at %s, more than %s before the broker's time %s",
			siobroker.FormatTime(ts.Created), p.MaxAge, siobroker.FormatTime(now))
	}
	if !ts.Expires.IsZero() && !ts.Expires.After(now.Add(-p.Skew)) {
		return siobroker.Errorf(siobroker.CodeTimestamp, "wsu:Timestamp expired at %s; the broker's time is %s (tolerance %s)",
			siobroker.FormatTime(ts.Expires), siobroker.FormatTime(now), p.Skew)
	}
	return nil
}

// isAddressingHeader reports whether el is a WS-Addressing header: a child of the SOAP Header in
// one of the WS-Addressing namespaces.
func isAddressingHeader(el, header *etree.Element) bool {
	if header == nil || el.Parent() != header {
		return false
	}
	ns := el.NamespaceURI()
	return ns == nsWSA || ns == nsWSA2004
}
