package soap

import (
	"errors"
	"fmt"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// ErrNoQuery is wrapped by JournaledQuery's error when the envelope holds no q:query: a request
// of another kind (a status or fetch query of the asynchronous channel, a report request).
var ErrNoQuery = errors.New("the envelope holds no q:query")

// JournaledQuery reads the query of a request as the journal keeps it: the raw envelope the
// broker received, whose signature was verified when it came in. The envelope is read with the
// defences of ReadEnvelope (lim, raised to the envelope's own size: the broker took it under its
// limits of the day); then the query is the one q:query element of the whole document, wherever
// the placement put it (SendMessage's data, or the gateway's AsyncChannel messageData).
//
// The signature is not verified again (its certificate may have expired since; the journal's
// chain vouches for the bytes). Instead a document holding more than one q:query is refused:
// the broker acted on the element its verifier returned, and with a single q:query in the
// document that is the one read here, while a second one, which only a signature-wrapping
// attempt would carry, could make a report show another query than the one served.
func JournaledQuery(raw []byte, lim Limits) (siobroker.Query, error) {
	lim = lim.WithDefaults()
	lim.MaxBytes = max(lim.MaxBytes, int64(len(raw)))
	lim.MaxTextBytes = max(lim.MaxTextBytes, len(raw))
	doc, err := parseXML(raw, lim)
	if err != nil {
		return siobroker.Query{}, fmt.Errorf("read the journaled request: %s: %w", siobroker.ErrorMessage(err), err)
	}
	var found []*etree.Element
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		if e.Tag == "query" && e.NamespaceURI() == schemas.NSQuery {
			found = append(found, e)
		}
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	if root := doc.Root(); root != nil {
		walk(root)
	}
	switch len(found) {
	case 0:
		return siobroker.Query{}, ErrNoQuery
	case 1:
	default:
		return siobroker.Query{}, fmt.Errorf("the journaled request holds %d q:query elements; none is read, since only one was signed", len(found))
	}
	q, err := ParseQuery(found[0])
	if err != nil {
		return q, fmt.Errorf("the journaled request's q:query: %s: %w", siobroker.ErrorMessage(err), err)
	}
	return q, nil
}
