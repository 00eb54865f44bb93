package signing

import (
	"strings"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/xmlchild"
	"github.com/sio-pso/siobroker/schemas"
)

// is reports whether el has the namespace ns and the local name local.
func is(el *etree.Element, ns, local string) bool {
	return el != nil && el.Tag == local && el.NamespaceURI() == ns
}

// children returns the child elements of el named {ns}local.
func children(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// firstChildElement returns the first element child of el, or nil.
func firstChildElement(el *etree.Element) *etree.Element {
	for _, t := range el.Child {
		if e, ok := t.(*etree.Element); ok {
			return e
		}
	}
	return nil
}

// textContent returns the character data directly inside el. Element children are not expected in
// the elements it is used on (DigestValue, SignatureValue, X509Certificate) and make it fail.
func textContent(el *etree.Element) (string, bool) {
	var b strings.Builder
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.CharData:
			b.WriteString(t.Data)
		case *etree.Element:
			return "", false
		}
	}
	return b.String(), true
}

// stripSpace removes the white space that base64 values may be wrapped with.
func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, s)
}

// envelopeParts returns the Envelope's Header (nil if absent) and Body.
func envelopeParts(doc *etree.Document) (header, body *etree.Element, err error) {
	root := doc.Root()
	if !is(root, schemas.NSSoapEnv, "Envelope") {
		return nil, nil, siobroker.Errorf(siobroker.CodeNotSOAP, "the document is not a SOAP 1.1 Envelope")
	}
	headers := children(root, schemas.NSSoapEnv, "Header")
	bodies := children(root, schemas.NSSoapEnv, "Body")
	if len(headers) > 1 {
		return nil, nil, siobroker.Errorf(siobroker.CodeNotSOAP, "the Envelope has %d Header elements", len(headers))
	}
	if len(bodies) != 1 {
		return nil, nil, siobroker.Errorf(siobroker.CodeNotSOAP, "the Envelope has %d Body elements, expected one", len(bodies))
	}
	if len(headers) == 1 {
		header = headers[0]
	}
	return header, bodies[0], nil
}

// dataElement locates the element carried in Body/*/*/requestData|responseData/data: the one
// element an enveloped signature signs.
func dataElement(body *etree.Element) (*etree.Element, error) {
	notFound := func(format string, args ...any) error {
		return siobroker.Errorf(siobroker.CodeNotSOAP, format, args...)
	}
	ops := body.ChildElements()
	if len(ops) != 1 {
		return nil, notFound("the Body has %d child elements, expected one", len(ops))
	}
	msgs := ops[0].ChildElements()
	if len(msgs) != 1 {
		return nil, notFound("%s has %d child elements, expected one", ops[0].Tag, len(msgs))
	}
	holders := append(xmlchild.All(msgs[0], "requestData"), xmlchild.All(msgs[0], "responseData")...)
	if len(holders) != 1 {
		return nil, notFound("%s has %d requestData/responseData elements, expected one", msgs[0].Tag, len(holders))
	}
	datas := xmlchild.All(holders[0], "data")
	if len(datas) != 1 {
		return nil, notFound("%s has %d data elements, expected one", holders[0].Tag, len(datas))
	}
	content := datas[0].ChildElements()
	if len(content) != 1 {
		return nil, notFound("%s/data has %d child elements, expected one", holders[0].Tag, len(content))
	}
	return content[0], nil
}

// idAttrNames are the attribute local names treated as identifiers when looking for duplicates:
// the ones XML-DSig implementations commonly resolve references by, in whatever namespace.
var idAttrNames = map[string]bool{"Id": true, "ID": true, "id": true}

// idTarget is the element an identifier names, and which attribute carries it.
type idTarget struct {
	el    *etree.Element
	wsu   bool // wsu:Id
	plain bool // an unqualified Id
}

// idIndex maps identifiers to their elements. Only a document without duplicate identifiers is
// ever resolved through it, so each identifier names one element whatever attribute carries it.
type idIndex map[string]idTarget

// docScan is what one pass over the document finds.
type docScan struct {
	signatures []*etree.Element
	ids        idIndex
	// duplicateID is an identifier value carried by more than one attribute, if any.
	duplicateID string
}

// scanDocument walks the whole document once to find every ds:Signature, and every identifier
// with its element. The namespace of an element or attribute is looked up (through its
// ancestors) only where it matters: for elements named Signature and attributes named Id.
func scanDocument(root *etree.Element) docScan {
	s := docScan{ids: idIndex{}}
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		if el.Tag == "Signature" && el.NamespaceURI() == nsDSig {
			s.signatures = append(s.signatures, el)
		}
		for i := range el.Attr {
			a := &el.Attr[i]
			if isNamespaceDecl(*a) || !(idAttrNames[a.Key] || (a.Space == "xml" && a.Key == "id")) {
				continue
			}
			if _, seen := s.ids[a.Value]; seen {
				if s.duplicateID == "" {
					s.duplicateID = a.Value
				}
				continue
			}
			t := idTarget{el: el}
			if a.Key == "Id" {
				t.plain = a.Space == ""
				t.wsu = a.Space != "" && a.NamespaceURI() == nsWSU
			}
			s.ids[a.Value] = t
		}
		for _, c := range el.ChildElements() {
			walk(c)
		}
	}
	walk(root)
	return s
}

const nsDSig = schemas.NSDSig
