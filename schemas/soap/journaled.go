package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

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
//
// It is read in one pass of the decoder over the whole document, which applies those defences
// and finds the q:query elements, and a tree of the one q:query alone (JournaledQueryByTree
// builds the tree of the whole document, and reads the same query, or refuses alike).
func JournaledQuery(raw []byte, lim Limits) (siobroker.Query, error) {
	lim = journaledLimits(raw, lim)
	el, n, err := findQuery(raw, lim)
	if errors.Is(err, errUnsure) {
		return JournaledQueryByTree(raw, lim)
	}
	return journaledQuery(el, n, err)
}

// JournaledQueryByTree is JournaledQuery reading the tree of the whole document: the reference
// the one-pass reading is tested against.
func JournaledQueryByTree(raw []byte, lim Limits) (siobroker.Query, error) {
	lim = journaledLimits(raw, lim)
	doc, err := parseXML(raw, lim)
	if err != nil {
		return journaledQuery(nil, 0, err)
	}
	return JournaledQueryOfTree(doc)
}

// JournaledQueryOfTree is JournaledQueryByTree of a document the broker's reader has parsed
// already (ReadEnvelope and its kin, under limits no looser than those JournaledQuery reads the
// journal with): what JournaledQuery reads from the same bytes once they are journaled. The
// broker hands it to the request index, so that the index need not read the bytes again.
func JournaledQueryOfTree(doc *etree.Document) (siobroker.Query, error) {
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
	var first *etree.Element
	if len(found) > 0 {
		first = found[0]
	}
	return journaledQuery(first, len(found), nil)
}

// journaledLimits are lim with the size and the text raised to the envelope's own.
func journaledLimits(raw []byte, lim Limits) Limits {
	lim = lim.WithDefaults()
	lim.MaxBytes = max(lim.MaxBytes, int64(len(raw)))
	lim.MaxTextBytes = max(lim.MaxTextBytes, len(raw))
	return lim
}

// journaledQuery is the query of a document that was read with error err and holds n q:query
// elements, the first of them el.
func journaledQuery(el *etree.Element, n int, err error) (siobroker.Query, error) {
	if err != nil {
		return siobroker.Query{}, fmt.Errorf("read the journaled request: %s: %w", siobroker.ErrorMessage(err), err)
	}
	switch n {
	case 0:
		return siobroker.Query{}, ErrNoQuery
	case 1:
	default:
		return siobroker.Query{}, fmt.Errorf("the journaled request holds %d q:query elements; none is read, since only one was signed", n)
	}
	q, err := ParseQuery(el)
	if err != nil {
		return q, fmt.Errorf("the journaled request's q:query: %s: %w", siobroker.ErrorMessage(err), err)
	}
	return q, nil
}

// nsXML is the namespace the prefix xml is bound to by definition.
const nsXML = "http://www.w3.org/XML/1998/namespace"

// errUnsure is findQuery's when its reading might differ from the tree's: JournaledQuery then
// reads the tree.
var errUnsure = errors.New("the one-pass reading of the journaled request is not sure to agree with the tree")

// findQuery reads raw as parseXML does, with the same checks and refusals, and returns the
// number of q:query elements in it and, when there is one, that element. The element is read
// from a document of its own: the start tags of its ancestors as raw holds them, the element's
// own bytes, and the ancestors' end tags. So it has the same attributes, children and text as in
// the whole tree, and resolves every prefix through the same declarations.
//
// The elements are found by the names the decoder resolves. The tree resolves the same
// declarations the same way, except for the prefixes xml and xmlns, which the decoder resolves
// by the rule of XML namespaces and the tree by what the document declares for them: an element
// named query with either prefix, which only a forged document would hold, makes it errUnsure.
// So does anything else it does not expect.
func findQuery(raw []byte, lim Limits) (*etree.Element, int, error) {
	if !utf8.Valid(raw) {
		return nil, 0, siobroker.Errorf(siobroker.CodeEncoding, "the body is not valid UTF-8")
	}
	body := bytes.TrimPrefix(raw, utf8BOM)
	type span struct{ start, end int64 }
	var (
		open    []span // the start tags of the open elements
		n       int    // q:query elements found
		unsure  bool
		inQuery int    // depth inside the first q:query; 0 when outside it
		around  []span // the first q:query's ancestors' start tags
		query   span   // the first q:query's bytes
	)
	err := scanTokens(body, lim, func(tok xml.Token, start, end int64) {
		switch t := tok.(type) {
		case xml.StartElement:
			first := false
			if t.Name.Local == "query" {
				switch t.Name.Space {
				case schemas.NSQuery:
					if n++; n == 1 {
						first = true
						around = slices.Clone(open)
						query.start = start
					}
				case nsXML, "xmlns":
					unsure = true
				}
			}
			open = append(open, span{start, end})
			if first || inQuery > 0 {
				inQuery++
			}
		case xml.EndElement:
			open = open[:len(open)-1]
			if inQuery > 0 {
				if inQuery--; inQuery == 0 {
					query.end = end
				}
			}
		}
	})
	switch {
	case err != nil:
		return nil, 0, err
	case unsure:
		return nil, 0, errUnsure
	case n != 1:
		return nil, n, nil
	}
	var doc bytes.Buffer
	for _, a := range around {
		doc.Write(body[a.start:a.end])
	}
	doc.Write(body[query.start:query.end])
	for i := len(around) - 1; i >= 0; i-- {
		// The name ends where the tag's first space, or its end, begins.
		tag := body[around[i].start+1 : around[i].end]
		end := bytes.IndexAny(tag, " \t\r\n/>")
		if end <= 0 {
			return nil, 0, errUnsure
		}
		doc.WriteString("</")
		doc.Write(tag[:end])
		doc.WriteString(">")
	}
	tree := etree.NewDocument()
	tree.ReadSettings = etree.ReadSettings{MaxDepth: lim.MaxDepth}
	if err := tree.ReadFromBytes(doc.Bytes()); err != nil {
		return nil, 0, errUnsure
	}
	el := tree.Root()
	for range around {
		if el == nil || len(el.ChildElements()) != 1 {
			return nil, 0, errUnsure
		}
		el = el.ChildElements()[0]
	}
	if el == nil || el.Tag != "query" || el.NamespaceURI() != schemas.NSQuery {
		return nil, 0, errUnsure
	}
	return el, 1, nil
}
