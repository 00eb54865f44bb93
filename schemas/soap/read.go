package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/xmltree"
	"github.com/sio-pso/siobroker/schemas"
)

// nsSOAP12 is recognised only to say clearly that SOAP 1.2 is not spoken here.
const nsSOAP12 = "http://www.w3.org/2003/05/soap-envelope"

// Limits bound the work an untrusted envelope can cause. They are checked as the tree is built,
// each token before it joins the tree, so that a document is refused at the token that breaks a
// limit: an oversized or pathological one costs at most the tree of a document within the limits.
//
// Besides the size, the nesting and the element count, they bound what one element can carry:
// its attributes, its namespace declarations (and those of the whole document), the length of a
// name, an attribute value and a text. Everything after the reading (the namespace look-ups
// that walk up through the ancestors' attributes, canonicalisation) is then linear in the
// envelope with a small factor; without them a 321 KB envelope of namespace declarations cost
// seconds of CPU before anyone was authenticated (issue 16).
type Limits struct {
	MaxBytes    int64 // default 1 MiB
	MaxDepth    int   // default 64
	MaxElements int   // default 20000

	MaxAttributes          int // per element, namespace declarations included; default 64
	MaxNamespaceDecls      int // per element; default 16
	MaxNamespaceDeclsTotal int // in the whole envelope; default 512
	MaxNameBytes           int // of an element's or attribute's local name or prefix; default 256
	MaxAttrValueBytes      int // of an attribute value, a namespace URI included; default 8 KiB
	// MaxTextBytes bounds one run of text (or a comment) between two tags. By default it is
	// MaxBytes: text costs only linear work, and a reply may carry a large document as one text.
	MaxTextBytes int
}

// Defaults of Limits. A SendMessage with 93 services and a signature has fewer than 200 elements
// and a depth of about 10; the defaults leave room for large WS-Security headers. The clients
// this broker interoperates with (xmlsec, node-soap, zeep, WSS4J) declare fewer than ten
// namespaces on an element and a few dozen in an envelope, with attributes to match.
const (
	DefaultMaxBytes               = 1 << 20
	DefaultMaxDepth               = 64
	DefaultMaxElements            = 20000
	DefaultMaxAttributes          = 64
	DefaultMaxNamespaceDecls      = 16
	DefaultMaxNamespaceDeclsTotal = 512
	DefaultMaxNameBytes           = 256
	DefaultMaxAttrValueBytes      = 8 << 10
)

// WithDefaults returns l with every unset (zero or negative) limit set to its default.
func (l Limits) WithDefaults() Limits {
	orDefault(&l.MaxBytes, DefaultMaxBytes)
	orDefault(&l.MaxDepth, DefaultMaxDepth)
	orDefault(&l.MaxElements, DefaultMaxElements)
	orDefault(&l.MaxAttributes, DefaultMaxAttributes)
	orDefault(&l.MaxNamespaceDecls, DefaultMaxNamespaceDecls)
	orDefault(&l.MaxNamespaceDeclsTotal, DefaultMaxNamespaceDeclsTotal)
	orDefault(&l.MaxNameBytes, DefaultMaxNameBytes)
	orDefault(&l.MaxAttrValueBytes, DefaultMaxAttrValueBytes)
	// Text is bounded by the body itself unless set lower.
	orDefault(&l.MaxTextBytes, int(min(l.MaxBytes, int64(^uint(0)>>1))))
	return l
}

// orDefault sets *v to def when it is unset (zero or negative).
func orDefault[T int | int64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// ReadEnvelope reads a SOAP 1.1 SendMessage envelope from r. It returns the parsed document and
// the exact bytes read (the signature is verified over those, not over a re-serialisation).
//
// The checks run in this order, and the first that fails decides the code: size (CodeOversize),
// declared charset in contentType (CodeEncoding), invalid UTF-8 (CodeEncoding), then one token scan
// that refuses a non-UTF-8 XML declaration (CodeEncoding), any DOCTYPE or other <! directive
// (CodeDoctype), any processing instruction but the XML declaration (CodeProcInst), depth or
// element count or a per-element limit exceeded (CodeTooDeep) and malformed XML (CodeMalformed). Only then is the
// etree document built and its shape checked (CodeNotSOAP).
func ReadEnvelope(r io.Reader, contentType string, lim Limits) (*etree.Document, []byte, error) {
	return readEnvelope(r, contentType, lim, OpSendMessage)
}

// Operation names an operation of the SyncChannel endpoint by the element its request's Body
// holds, and its response's.
type Operation struct {
	Space, Request, Response string // the namespace, the request's element, the response's element
}

// The operations of the SyncChannel endpoint: the gateway's SendMessage and the broker's own.
var (
	OpSendMessage           = Operation{schemas.NSSyncTypes, "SendMessage", "SendMessageResponse"}
	OpGetMaintenanceWindows = Operation{schemas.NSOperations, "GetMaintenanceWindows", "GetMaintenanceWindowsResponse"}
)

// prefix is how the operation's elements are written in a message the broker builds.
func (op Operation) prefix() string {
	if op.Space == schemas.NSSyncTypes {
		return prefixTyp
	}
	return prefixOp
}

// ReadOperationEnvelope is ReadEnvelope for a request of operation op, with the same defences
// and refusals.
func ReadOperationEnvelope(r io.Reader, contentType string, lim Limits, op Operation) (*etree.Document, []byte, error) {
	return readEnvelope(r, contentType, lim, op)
}

// ReadAsyncChannelEnvelope reads an envelope posted to /AsyncChannel/v10, with ReadEnvelope's
// defences: SyncChannel's SendMessage (the broker's own asynchronous variant, operation "") or
// an operation of the gateway's AsyncChannel v10 (ACSendMessage...).
func ReadAsyncChannelEnvelope(r io.Reader, contentType string, lim Limits) (doc *etree.Document, raw []byte, operation string, err error) {
	lim = lim.WithDefaults()
	if raw, err = readLimited(r, lim.MaxBytes); err != nil {
		return nil, nil, "", err
	}
	if err := checkContentTypeCharset(contentType); err != nil {
		return nil, nil, "", err
	}
	if doc, err = parseXML(raw, lim); err != nil {
		return nil, nil, "", err
	}
	body, err := envelopeBody(doc)
	if err != nil {
		return nil, nil, "", err
	}
	if op := ACOperation(body); op != "" {
		return doc, raw, op, nil
	}
	if err := checkEnvelope(doc, OpSendMessage.Space, OpSendMessage.Request); err != nil {
		return nil, nil, "", siobroker.Errorf(siobroker.CodeNotSOAP,
			"%s; this endpoint takes the gateway's AsyncChannel v10 operations (sendMessage, getMessageStatus, getMessages, sendDeliveryNotification) or SyncChannel's SendMessage", siobroker.ErrorMessage(err))
	}
	return doc, raw, "", nil
}

// ReadResponseEnvelope is ReadEnvelope for the other direction: a client reading a
// SendMessageResponse applies the same limits and refusals.
func ReadResponseEnvelope(r io.Reader, contentType string, lim Limits) (*etree.Document, []byte, error) {
	return readEnvelope(r, contentType, lim, Operation{Space: schemas.NSSyncTypes, Request: "SendMessageResponse"})
}

// ReadOperationResponseEnvelope is ReadResponseEnvelope for the response of operation op.
func ReadOperationResponseEnvelope(r io.Reader, contentType string, lim Limits, op Operation) (*etree.Document, []byte, error) {
	return readEnvelope(r, contentType, lim, Operation{Space: op.Space, Request: op.Response})
}

// readEnvelope reads an envelope whose Body holds op.Request.
func readEnvelope(r io.Reader, contentType string, lim Limits, op Operation) (*etree.Document, []byte, error) {
	lim = lim.WithDefaults()
	raw, err := readLimited(r, lim.MaxBytes)
	if err != nil {
		return nil, nil, err
	}
	if err := checkContentTypeCharset(contentType); err != nil {
		return nil, nil, err
	}
	doc, err := parseXML(raw, lim)
	if err != nil {
		return nil, nil, err
	}
	if err := checkEnvelope(doc, op.Space, op.Request); err != nil {
		return nil, nil, err
	}
	return doc, raw, nil
}

// readLimited reads at most max+1 bytes: one byte more than allowed is enough to know the body is
// too large, without reading the rest of it.
//
// The body is read into a pooled buffer and copied out at its size, which the caller keeps (the
// journal records it): io.ReadAll grew a fresh slice to about twice the body's size for every
// request (issue 20).
func readLimited(r io.Reader, max int64) ([]byte, error) {
	buf := serializeBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledSerializeBuffer {
			serializeBuffers.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(io.LimitReader(r, max+1)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, siobroker.Wrap(siobroker.CodeOversize, err, "the request body exceeds %d bytes", max)
		}
		return nil, siobroker.Wrap(siobroker.CodeMalformed, err, "the request body could not be read")
	}
	if int64(buf.Len()) > max {
		return nil, siobroker.Errorf(siobroker.CodeOversize, "the request body exceeds %d bytes", max)
	}
	// Never nil, as io.ReadAll's was not, even for an empty body.
	return append(make([]byte, 0, buf.Len()), buf.Bytes()...), nil
}

// BodyElementAmong returns the name of the element the SOAP Body holds, when it is one of among,
// with a reader that gives r whole again: an endpoint with several operations tells them apart by
// it before the request is parsed. It reads r whole first, and names no element, without running
// the decoder over the Envelope's start and Header, when none of among's local names occurs in the
// body's bytes; else the decoder reads as far as the start of the Body's element and names it
// (one not among too, which the caller then does not take for an operation). A body that does
// not get so far (not XML, no Body) names no element: the pipeline then refuses it under its
// limits, as it refuses anything. No entity is expanded: encoding/xml expands none but the
// predefined.
//
// A name in XML is written out as it is (no character reference can stand for a character of a
// name), so a Body holding one of among contains its local name; a body encoded otherwise than in
// UTF-8 is refused by whatever reads it next. The caller bounds r, and reads it whole next in any
// case: the main request, which names none of among, then costs no decoder (15 KB of allocations
// and 1.4% of the broker's CPU under load, issue 20).
func BodyElementAmong(r io.Reader, among []xml.Name) (xml.Name, io.Reader) {
	head := &headReader{r: r, buf: make([]byte, 0, headChunk)}
	for head.err == nil {
		head.fill()
	}
	if !slices.ContainsFunc(among, func(n xml.Name) bool { return n.Local != "" && bytes.Contains(head.buf, []byte(n.Local)) }) {
		return xml.Name{}, head
	}
	name := head.bodyElement()
	head.off = 0
	return name, head
}

// bodyElement runs the decoder over what h reads as far as the start of the element the SOAP
// Body holds, and returns that element's name; none when the body does not get so far.
func (h *headReader) bodyElement() xml.Name {
	dec := xml.NewDecoder(h)
	depth, inBody := 0, false
	for {
		tok, err := dec.Token()
		if err != nil {
			return xml.Name{}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 2 && t.Name == xml.Name{Space: schemas.NSSoapEnv, Local: "Body"}:
				inBody = true
			case depth == 3 && inBody:
				return t.Name
			}
		case xml.EndElement:
			depth--
			if depth < 2 && inBody {
				return xml.Name{}
			}
		}
	}
}

// headChunk is what headReader reads from its source at a time, and its first buffer: a
// one-service request (about 3 KB) fits in it.
const headChunk = 4096

// headReader keeps every byte it reads from r, so that BodyElementAmong can give back what it
// read. It reads r in chunks and is an io.ByteReader, so encoding/xml reads from it
// directly: a io.TeeReader into a bytes.Buffer, read by the decoder through a bufio.Reader of its
// own, held each byte twice more (issue 20).
type headReader struct {
	r   io.Reader
	buf []byte // everything read from r so far
	off int    // bytes of buf handed on
	err error  // r's error, given once buf is used up
}

// fill reads the next chunk of r into buf, growing it if it is full. As bufio does, a reader
// that keeps returning nothing and no error ends with io.ErrNoProgress.
func (h *headReader) fill() {
	if len(h.buf) == cap(h.buf) {
		h.buf = slices.Grow(h.buf, max(headChunk, cap(h.buf)))
	}
	for range 100 {
		n, err := h.r.Read(h.buf[len(h.buf):cap(h.buf)])
		h.buf = h.buf[:len(h.buf)+n]
		if err != nil {
			h.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	h.err = io.ErrNoProgress
}

// ReadByte implements io.ByteReader.
func (h *headReader) ReadByte() (byte, error) {
	for h.off == len(h.buf) {
		if h.err != nil {
			return 0, h.err
		}
		h.fill()
	}
	b := h.buf[h.off]
	h.off++
	return b, nil
}

// Read implements io.Reader.
func (h *headReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for h.off == len(h.buf) {
		if h.err != nil {
			return 0, h.err
		}
		h.fill()
	}
	n := copy(p, h.buf[h.off:])
	h.off += n
	return n, nil
}

// checkContentTypeCharset refuses a declared charset other than UTF-8. Whether the media type is
// text/xml is the HTTP layer's business (CodeContentType); an absent charset means UTF-8 here,
// because etree ignores declared charsets and reads the bytes as UTF-8 anyway.
func checkContentTypeCharset(contentType string) error {
	if strings.TrimSpace(contentType) == "" {
		return nil
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return siobroker.Wrap(siobroker.CodeContentType, err, "malformed Content-Type %q", contentType)
	}
	if cs, ok := params["charset"]; ok && !isUTF8Name(cs) {
		return siobroker.Errorf(siobroker.CodeEncoding, "charset %q is not accepted; send UTF-8", cs)
	}
	return nil
}

func isUTF8Name(cs string) bool {
	cs = strings.TrimSpace(cs)
	return strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8")
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// parseXML applies the safety checks to raw and builds the document. It does not look at the
// SOAP shape, so that faults and replies can be read with the same defences.
func parseXML(raw []byte, lim Limits) (*etree.Document, error) {
	lim = lim.WithDefaults() // a caller may set some limits only
	if !utf8.Valid(raw) {
		return nil, siobroker.Errorf(siobroker.CodeEncoding, "the body is not valid UTF-8")
	}
	// encoding/xml reports a UTF-8 byte order mark as character data before the declaration;
	// it is legal XML, so it is skipped for parsing. raw keeps it.
	body := bytes.TrimPrefix(raw, utf8BOM)
	// One pass of the decoder applies the limits and builds the tree (xmltree).
	dec, decodeError := strictDecoder(body)
	check := limitCheck{lim: lim}
	doc, err := xmltree.Parse(dec, check.token)
	var refusal *siobroker.Error
	switch {
	case errors.As(err, &refusal):
		return nil, err
	case err != nil:
		return nil, decodeError(err)
	}
	if err := check.end(); err != nil {
		return nil, err
	}
	return doc, nil
}

// errCharset marks a refused charset seen by the decoder's CharsetReader hook.
type errCharset struct{ charset string }

func (e errCharset) Error() string { return "charset " + e.charset }

// limitCheck applies the limits to a document's tokens, as they are read, refusing besides what
// etree would silently accept: etree keeps DOCTYPEs and processing instructions as tokens and
// ignores the declared encoding (see STYLE.md), and encoding/xml accepts several root elements and
// text after the root. It takes the tokens of Decoder.Token and of RawToken alike: a name's
// space is then a namespace or a prefix, each bounded.
type limitCheck struct {
	lim                    Limits
	depth, elements, roots int
	decls, text            int // namespace declarations so far; bytes of the current run of text
}

// token checks one token, which begins at offset start.
func (c *limitCheck) token(tok xml.Token, start int64) error {
	lim := c.lim
	switch t := tok.(type) {
	case xml.StartElement:
		c.depth++
		c.elements++
		if c.depth == 1 {
			c.roots++
			if c.roots > 1 {
				return siobroker.Errorf(siobroker.CodeMalformed, "the body is not well-formed XML: more than one root element")
			}
		}
		if c.depth > lim.MaxDepth {
			return siobroker.Errorf(siobroker.CodeTooDeep, "elements are nested deeper than %d", lim.MaxDepth)
		}
		if c.elements > lim.MaxElements {
			return siobroker.Errorf(siobroker.CodeTooDeep, "the body has more than %d elements", lim.MaxElements)
		}
		c.text = 0
		return checkElement(t, lim, &c.decls)
	case xml.EndElement:
		c.depth--
		c.text = 0
	case xml.CharData:
		if c.depth == 0 && len(bytes.TrimSpace(t)) > 0 {
			return siobroker.Errorf(siobroker.CodeMalformed, "the body is not well-formed XML: text outside the root element")
		}
		// The decoder may hand one run of text over in pieces (CDATA sections apart).
		if c.text += len(t); c.text > lim.MaxTextBytes {
			return siobroker.Errorf(siobroker.CodeTooDeep, "a text is longer than %d bytes", lim.MaxTextBytes)
		}
	case xml.Comment:
		if len(t) > lim.MaxTextBytes {
			return siobroker.Errorf(siobroker.CodeTooDeep, "a comment is longer than %d bytes", lim.MaxTextBytes)
		}
	case xml.Directive:
		// A DOCTYPE can define entities (billion laughs) or external references; there is
		// no legitimate use for one in a SOAP message (SOAP 1.1 §3 forbids it).
		return siobroker.Errorf(siobroker.CodeDoctype, "a DOCTYPE or other <! declaration is not accepted")
	case xml.ProcInst:
		if t.Target != "xml" {
			return siobroker.Errorf(siobroker.CodeProcInst, "processing instruction <?%s?> is not accepted", t.Target)
		}
		if start != 0 {
			return siobroker.Errorf(siobroker.CodeMalformed, "the body is not well-formed XML: the XML declaration is not at the start")
		}
	}
	return nil
}

// end checks the document once it has been read whole.
func (c *limitCheck) end() error {
	if c.roots == 0 {
		return siobroker.Errorf(siobroker.CodeMalformed, "the body is not well-formed XML: no root element")
	}
	return nil
}

// strictDecoder returns a strict decoder of body that refuses a declared encoding other than
// UTF-8; decodeError turns its errors into the fault they deserve.
func strictDecoder(body []byte) (dec *xml.Decoder, decodeError func(error) error) {
	dec = xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	var refused string
	dec.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		if isUTF8Name(charset) {
			return input, nil
		}
		refused = charset
		return nil, errCharset{charset}
	}
	return dec, func(err error) error {
		if refused != "" {
			return siobroker.Errorf(siobroker.CodeEncoding, "encoding %q is not accepted; send UTF-8", refused)
		}
		return siobroker.Wrap(siobroker.CodeMalformed, err, "the body is not well-formed XML: %s", xmlErrText(err))
	}
}

// scanTokens tokenises body once, applying the limits (limitCheck), and hands every start and end
// element it accepts to visit with the offsets in body where the element's tag begins and ends. An
// end element of an empty-element tag (<a/>) begins and ends where its start element ended. The
// names are those Decoder.Token resolves.
func scanTokens(body []byte, lim Limits, visit func(tok xml.Token, start, end int64)) error {
	dec, decodeError := strictDecoder(body)
	check := limitCheck{lim: lim}
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			return check.end()
		}
		if err != nil {
			return decodeError(err)
		}
		if err := check.token(tok, start); err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement, xml.EndElement:
			visit(tok, start, dec.InputOffset())
		}
	}
}

// checkElement applies the per-element limits to a start tag; decls counts the namespace
// declarations of the document so far.
func checkElement(t xml.StartElement, lim Limits, decls *int) error {
	if len(t.Name.Local) > lim.MaxNameBytes {
		return siobroker.Errorf(siobroker.CodeTooDeep, "an element name (%s) is longer than %d bytes", cut(t.Name.Local), lim.MaxNameBytes)
	}
	here := 0
	for _, a := range t.Attr {
		if len(a.Name.Local) > lim.MaxNameBytes {
			return siobroker.Errorf(siobroker.CodeTooDeep, "an attribute name (%s) of element %s is longer than %d bytes", cut(a.Name.Local), cut(t.Name.Local), lim.MaxNameBytes)
		}
		if len(a.Value) > lim.MaxAttrValueBytes {
			return siobroker.Errorf(siobroker.CodeTooDeep, "the value of attribute %s of element %s is longer than %d bytes", cut(a.Name.Local), cut(t.Name.Local), lim.MaxAttrValueBytes)
		}
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			if here++; here > lim.MaxNamespaceDecls {
				return siobroker.Errorf(siobroker.CodeTooDeep, "element %s declares more than %d namespaces", cut(t.Name.Local), lim.MaxNamespaceDecls)
			}
			*decls++
		}
	}
	// The spaces of the names after every attribute's value: a space is the namespace URI with
	// Decoder.Token and the prefix with RawToken, and a URI the element declares is an attribute's
	// value, so that once the values are bounded only an undeclared prefix (the same with both)
	// can be too long, and both readings refuse a document in the same words.
	if len(t.Name.Space) > lim.MaxAttrValueBytes {
		return siobroker.Errorf(siobroker.CodeTooDeep, "the namespace of element %s is longer than %d bytes", cut(t.Name.Local), lim.MaxAttrValueBytes)
	}
	for _, a := range t.Attr {
		if len(a.Name.Space) > lim.MaxAttrValueBytes {
			return siobroker.Errorf(siobroker.CodeTooDeep, "the namespace of attribute %s of element %s is longer than %d bytes", cut(a.Name.Local), cut(t.Name.Local), lim.MaxAttrValueBytes)
		}
	}
	// After the declarations, so that an element of many declarations is refused for them.
	if len(t.Attr) > lim.MaxAttributes {
		return siobroker.Errorf(siobroker.CodeTooDeep, "element %s has more than %d attributes", cut(t.Name.Local), lim.MaxAttributes)
	}
	if *decls > lim.MaxNamespaceDeclsTotal {
		return siobroker.Errorf(siobroker.CodeTooDeep, "the body declares more than %d namespaces", lim.MaxNamespaceDeclsTotal)
	}
	return nil
}

// cut shortens a name for a message: the name that broke a length limit is not repeated whole.
func cut(name string) string {
	const keep = 32
	if len(name) <= keep {
		return name
	}
	i := keep
	for i > 0 && !utf8.RuneStart(name[i]) {
		i--
	}
	return name[:i] + "…"
}

// xmlErrText keeps the decoder's line number and reason but not its Go-specific prefix.
func xmlErrText(err error) string {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("line %d: %s", se.Line, se.Msg)
	}
	return "unexpected end of input"
}

// checkEnvelope requires Envelope{Header?, Body{typ:<operation>}} in SOAP 1.1.
func checkEnvelope(doc *etree.Document, ns, element string) error {
	body, err := envelopeBody(doc)
	if err != nil {
		return err
	}
	child, err := singleChild(body)
	if err != nil {
		return err
	}
	if child.NamespaceURI() != ns || child.Tag != element {
		return siobroker.Errorf(siobroker.CodeNotSOAP, "the Body must hold %s, found %s", qname(ns, element), describe(child))
	}
	return nil
}

// qname writes an element of the endpoint's namespaces with the prefix the WSDL gives it.
func qname(ns, element string) string {
	switch ns {
	case schemas.NSSyncTypes:
		return "typ:" + element
	case schemas.NSOperations:
		return "op:" + element
	}
	return fmt.Sprintf("{%s}%s", ns, element)
}

// envelopeBody checks the Envelope and returns its Body, whatever the Body holds.
func envelopeBody(doc *etree.Document) (*etree.Element, error) {
	root := doc.Root()
	if root == nil {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "not a SOAP envelope: no root element")
	}
	if root.Tag == "Envelope" && root.NamespaceURI() == nsSOAP12 {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "SOAP 1.2 is not supported; send a SOAP 1.1 envelope")
	}
	if root.Tag != "Envelope" || root.NamespaceURI() != schemas.NSSoapEnv {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "not a SOAP 1.1 envelope: the root is %s", describe(root))
	}
	if hasText(root) {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "the Envelope holds text")
	}
	var body *etree.Element
	for i, c := range root.ChildElements() {
		switch {
		case c.NamespaceURI() == schemas.NSSoapEnv && c.Tag == "Header" && i == 0:
		case c.NamespaceURI() == schemas.NSSoapEnv && c.Tag == "Body" && body == nil:
			body = c
		default:
			return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "the Envelope must hold Header? and Body only, found %s", describe(c))
		}
	}
	if body == nil {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "the Envelope has no Body")
	}
	return body, nil
}

// singleChild returns the one element child of body.
func singleChild(body *etree.Element) (*etree.Element, error) {
	if hasText(body) {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "the Body holds text")
	}
	kids := body.ChildElements()
	if len(kids) != 1 {
		return nil, siobroker.Errorf(siobroker.CodeNotSOAP, "the Body must hold exactly one element, found %d", len(kids))
	}
	return kids[0], nil
}

// Header returns the SOAP 1.1 Header of doc, or nil if it has none or doc is not an envelope.
func Header(doc *etree.Document) *etree.Element {
	if doc == nil || doc.Root() == nil || Body(doc) == nil {
		return nil
	}
	for _, c := range doc.Root().ChildElements() {
		if c.Tag == "Header" && c.NamespaceURI() == schemas.NSSoapEnv {
			return c
		}
	}
	return nil
}

// Body returns the SOAP 1.1 Body of doc, or nil if doc is not an envelope.
func Body(doc *etree.Document) *etree.Element {
	if doc == nil {
		return nil
	}
	body, err := envelopeBody(doc)
	if err != nil {
		return nil
	}
	return body
}

// SendMessageParts returns requestInfo and the single element of requestData/data from a Body. The
// Body is either the document's (Body) or the element a WS-Security signature verifier returned;
// in the latter case it is detached, so it must carry its namespace declarations, as a
// canonicalised element does. The parts are only located here; ParseRequestInfo and ParseQuery
// validate them.
func SendMessageParts(body *etree.Element) (requestInfo *etree.Element, data *etree.Element, err error) {
	return RequestParts(body, OpSendMessage)
}

// RequestParts is SendMessageParts for the request of operation op, whose element holds the same
// request as SendMessage.
func RequestParts(body *etree.Element, op Operation) (requestInfo *etree.Element, data *etree.Element, err error) {
	if !isBody(body) {
		return nil, nil, siobroker.Errorf(siobroker.CodeNotSOAP, "not a SOAP 1.1 Body")
	}
	sm, err := singleChild(body)
	if err != nil {
		return nil, nil, err
	}
	if sm.NamespaceURI() != op.Space || sm.Tag != op.Request {
		return nil, nil, siobroker.Errorf(siobroker.CodeNotSOAP, "the Body must hold %s, found %s", qname(op.Space, op.Request), describe(sm))
	}
	s, err := newSeq(sm, op.Request, "", "request")
	if err != nil {
		return nil, nil, err
	}
	req, err := s.req("request")
	if err != nil {
		return nil, nil, err
	}
	if err := s.end(); err != nil {
		return nil, nil, err
	}
	rs, err := newSeq(req, "", "", "requestInfo", "requestData")
	if err != nil {
		return nil, nil, err
	}
	if requestInfo, err = rs.req("requestInfo"); err != nil {
		return nil, nil, err
	}
	rd, err := rs.req("requestData")
	if err != nil {
		return nil, nil, err
	}
	if err := rs.end(); err != nil {
		return nil, nil, err
	}
	if data, err = dataChild(rd, "requestData"); err != nil {
		return nil, nil, err
	}
	return requestInfo, data, nil
}

// isBody reports whether e is a SOAP 1.1 Body. A Body detached from its Envelope (a copy a
// verifier returned without canonicalisation) may have lost the declaration of its own prefix; it
// is accepted by name then, since what makes it trustworthy is the signature, not the namespace.
// Its content still has to resolve: SendMessage is checked by namespace.
func isBody(e *etree.Element) bool {
	if e == nil || e.Tag != "Body" {
		return false
	}
	ns := e.NamespaceURI()
	return ns == schemas.NSSoapEnv || (ns == "" && e.Space != "" && e.Parent() == nil)
}

// dataChild returns the one element in parent/data (parent is requestData or responseData).
func dataChild(parent *etree.Element, path string) (*etree.Element, error) {
	s, err := newSeq(parent, path, "", "data")
	if err != nil {
		return nil, err
	}
	d, err := s.req("data")
	if err != nil {
		return nil, err
	}
	if err := s.end(); err != nil {
		return nil, err
	}
	dpath := path + "/data"
	if err := checkAttrs(d, dpath); err != nil {
		return nil, err
	}
	if hasText(d) {
		return nil, siobroker.FieldError(dpath, "must hold one element and no text")
	}
	kids := d.ChildElements()
	if len(kids) != 1 {
		return nil, siobroker.FieldError(dpath, "must hold exactly one element, found %d", len(kids))
	}
	return kids[0], nil
}

// Serialize writes doc as UTF-8 with an XML declaration and without indentation: a signature is
// computed over the canonical form of exactly these bytes' tree, and indentation would add text
// nodes. Text and attribute values are escaped canonically, so a carriage return survives as
// &#xD; instead of being normalised away by the reader.
func Serialize(doc *etree.Document) ([]byte, error) {
	if doc == nil || doc.Root() == nil {
		return nil, siobroker.Errorf(siobroker.CodeInternal, "serialize: empty document")
	}
	ws := etree.WriteSettings{CanonicalText: true, CanonicalAttrVal: true}
	// The document is written into a pooled buffer and copied out at its exact size: growing a
	// fresh buffer by doubling allocated about twice the reply's size for every reply (issue 20).
	buf := serializeBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	for _, tok := range doc.Child {
		if pi, ok := tok.(*etree.ProcInst); ok && pi.Target == "xml" {
			continue // replaced by the declaration above
		}
		tok.WriteTo(buf, &ws)
	}
	out := bytes.Clone(buf.Bytes())
	if buf.Cap() <= maxPooledSerializeBuffer {
		serializeBuffers.Put(buf)
	}
	return out, nil
}

// serializeBuffers holds the buffers of Serialize and readLimited; maxPooledSerializeBuffer is
// the largest kept, so that one large export, report or request does not keep its buffer alive
// for good.
var serializeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledSerializeBuffer = 256 << 10

// CheckMediaType accepts the media types of SOAP 1.1 (text/xml, application/xml) for every
// endpoint that takes a SendMessage: the channels, reports and the dashboard login. The charset,
// if any, is ReadEnvelope's to judge. application/soap+xml is SOAP 1.2, which is not spoken here.
func CheckMediaType(contentType string) error {
	if contentType == "" {
		return siobroker.Errorf(siobroker.CodeContentType, "Content-Type is missing; send text/xml (SOAP 1.1)")
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return siobroker.Errorf(siobroker.CodeContentType, "Content-Type %q cannot be parsed; send text/xml (SOAP 1.1)", contentType)
	}
	switch mediaType {
	case "text/xml", "application/xml":
		return nil
	}
	return siobroker.Errorf(siobroker.CodeContentType, "Content-Type %s is not accepted; send text/xml (SOAP 1.1)", mediaType)
}
