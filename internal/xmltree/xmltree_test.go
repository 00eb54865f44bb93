package xmltree

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker/internal/repofiles"
)

// documents are inputs that could tell the two readers apart.
var documents = map[string]string{
	"plain":                `<a><b x="1">text</b></a>`,
	"declaration":          `<?xml version="1.0" encoding="UTF-8"?>` + "\n<a/>\n",
	"prefixes":             `<p:a xmlns:p="urn:p" xmlns="urn:d"><p:b p:x="1" y="2"/><c/></p:a>`,
	"attribute twice":      `<a x="1" y="2" x="3"/>`,
	"prefixed twice":       `<a xmlns:p="urn:p" p:x="1" xmlns:p="urn:q" p:x="2"/>`,
	"colon at the ends":    `<a :x="1" y:="2"><:b/><c:/></a>`,
	"whitespace and text":  "<a>\n  <b/>\t\n <c> x </c>  </a>",
	"cdata":                `<a>x<![CDATA[<y>]]>z<![CDATA[   ]]></a>`,
	"comments":             `<!--before--><a><!-- in --></a><!--after-->`,
	"processing":           `<?xml version="1.0"?><?pi data?><a><?q?></a>`,
	"directive":            `<!DOCTYPE a><a/>`,
	"entities":             `<a x="&lt;&amp;&#65;">&gt;&#x41;&quot;</a>`,
	"deep":                 strings.Repeat("<d>", 50) + strings.Repeat("</d>", 50),
	"unicode":              `<а б="в">Қазақстан</а>`,
	"mismatched":           `<a><b></c></a>`,
	"mismatched prefix":    `<p:a xmlns:p="u" xmlns:q="u"></q:a>`,
	"prefix against none":  `<p:a xmlns:p="u"></a>`,
	"unclosed":             `<a><b>`,
	"end before start":     `</a>`,
	"end after the root":   `<a/></b>`,
	"not XML":              `hello`,
	"empty":                ``,
	"bad attribute":        `<a x=1/>`,
	"two roots":            `<a/><b/>`,
	"text after the root":  `<a/>text`,
	"undeclared entity":    `<a>&nbsp;</a>`,
	"ampersand alone":      `<a>&</a>`,
	"control character":    "<a>\x01</a>",
	"three colons":         `<a:b:c/>`,
	"comment with dashes":  `<a><!-- a -- b --></a>`,
	"unterminated comment": `<a><!-- x</a>`,
}

// etreeDecoder is the decoder etree's own reader uses with its default settings: strict, the
// declared encoding ignored.
func etreeDecoder(b []byte) *xml.Decoder {
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	dec.CharsetReader = func(_ string, input io.Reader) (io.Reader, error) { return input, nil }
	return dec
}

// sameAsEtree fails t unless Parse builds from b the tree etree's reader builds, or refuses b
// when etree does (and then in Decoder.Token's words when Token refuses it too).
func sameAsEtree(t testing.TB, name string, b []byte) {
	t.Helper()
	want := etree.NewDocument()
	wantErr := want.ReadFromBytes(b)
	if errors.Is(wantErr, etree.ErrMaxDepth) {
		return // etree's own depth bound; the caller's check bounds it here
	}
	got, err := Parse(etreeDecoder(b), nil)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%s: Parse error %v, etree's %v\ndocument: %q", name, err, wantErr, b)
	}
	if err != nil {
		if tokErr := tokenError(b); tokErr != nil && err.Error() != tokErr.Error() {
			t.Errorf("%s: Parse refuses with %q, Decoder.Token with %q", name, err, tokErr)
		}
		return
	}
	if diff := compare(&got.Element, &want.Element, "document"); diff != "" {
		t.Fatalf("%s: the trees differ: %s\ndocument: %q", name, diff, b)
	}
	gotOut, _ := got.WriteToBytes()
	wantOut, _ := want.WriteToBytes()
	if !bytes.Equal(gotOut, wantOut) {
		t.Fatalf("%s: written out\n%s\netree's\n%s", name, gotOut, wantOut)
	}
}

// tokenError is the first error Decoder.Token returns reading b, nil if it reads b to its end.
func tokenError(b []byte) error {
	dec := etreeDecoder(b)
	for {
		if _, err := dec.Token(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// compare describes the first difference between the trees under got and want, "" if none: every
// token's kind, name, attributes (with the namespace each resolves to), data and flags, and the
// links to its parent.
func compare(got, want *etree.Element, path string) string {
	if got.Space != want.Space || got.Tag != want.Tag {
		return fmt.Sprintf("%s: element %s:%s, want %s:%s", path, got.Space, got.Tag, want.Space, want.Tag)
	}
	if got.NamespaceURI() != want.NamespaceURI() {
		return fmt.Sprintf("%s: namespace %q, want %q", path, got.NamespaceURI(), want.NamespaceURI())
	}
	if len(got.Attr) != len(want.Attr) {
		return fmt.Sprintf("%s: %d attributes, want %d", path, len(got.Attr), len(want.Attr))
	}
	for i := range got.Attr {
		g, w := got.Attr[i], want.Attr[i]
		if g.Space != w.Space || g.Key != w.Key || g.Value != w.Value || g.Element() != got || g.NamespaceURI() != w.NamespaceURI() {
			return fmt.Sprintf("%s: attribute %d is %+v (%q), want %+v (%q)", path, i, g, g.NamespaceURI(), w, w.NamespaceURI())
		}
	}
	if len(got.Child) != len(want.Child) {
		return fmt.Sprintf("%s: %d children, want %d", path, len(got.Child), len(want.Child))
	}
	for i := range got.Child {
		where := fmt.Sprintf("%s/%d", path, i)
		if got.Child[i].Parent() != got || got.Child[i].Index() != i {
			return where + ": not linked to its parent"
		}
		switch w := want.Child[i].(type) {
		case *etree.Element:
			g, ok := got.Child[i].(*etree.Element)
			if !ok {
				return fmt.Sprintf("%s: %T, want an element", where, got.Child[i])
			}
			if d := compare(g, w, where); d != "" {
				return d
			}
		case *etree.CharData:
			g, ok := got.Child[i].(*etree.CharData)
			if !ok || g.Data != w.Data || g.IsWhitespace() != w.IsWhitespace() || g.IsCData() != w.IsCData() {
				return fmt.Sprintf("%s: %#v, want %#v", where, got.Child[i], w)
			}
		case *etree.Comment:
			if g, ok := got.Child[i].(*etree.Comment); !ok || g.Data != w.Data {
				return fmt.Sprintf("%s: %#v, want %#v", where, got.Child[i], w)
			}
		case *etree.ProcInst:
			if g, ok := got.Child[i].(*etree.ProcInst); !ok || g.Target != w.Target || g.Inst != w.Inst {
				return fmt.Sprintf("%s: %#v, want %#v", where, got.Child[i], w)
			}
		case *etree.Directive:
			if g, ok := got.Child[i].(*etree.Directive); !ok || g.Data != w.Data {
				return fmt.Sprintf("%s: %#v, want %#v", where, got.Child[i], w)
			}
		default:
			return fmt.Sprintf("%s: etree built a %T", where, w)
		}
	}
	return ""
}

// TestParseAsEtree: the tree of every document above and of every XML file of the repository (the
// envelopes of the interop and golden tests among them) is etree's, and what etree refuses is
// refused, in Decoder.Token's words where Token refuses it too.
func TestParseAsEtree(t *testing.T) {
	for name, doc := range documents {
		sameAsEtree(t, name, []byte(doc))
	}
	repofiles.Each(t, "../..", ".xml", 10, func(path string, raw []byte) { sameAsEtree(t, path, raw) })
}

// TestParseRefusals: what the document does wrong is said as Decoder.Token says it.
func TestParseRefusals(t *testing.T) {
	for doc, want := range map[string]string{
		`<a><b></c></a>`:                      "XML syntax error on line 1: element <b> closed by </c>",
		"<p:a xmlns:p=\"u\">\n</q:a>":         "XML syntax error on line 2: element <a> in space p closed by </a> in space q",
		`<p:a xmlns:p="u"></a>`:               `XML syntax error on line 1: element <a> in space p closed by </a> in space ""`,
		"<a>\n<b>":                            "XML syntax error on line 2: unexpected EOF",
		`</a>`:                                "XML syntax error on line 1: unexpected end element </a>",
		`<a x=1/>`:                            "XML syntax error on line 1: unquoted or missing attribute value in element",
		`<a/></b>`:                            "XML syntax error on line 1: unexpected end element </b>",
		`<a:b:c/>`:                            "XML syntax error on line 1: expected element name after <",
		`<a><!-- x</a>`:                       "XML syntax error on line 1: unexpected EOF",
		`<a><![CDATA[x</a>`:                   "XML syntax error on line 1: unexpected EOF in CDATA section",
		"<a>\n\n<b></b></a>\n<c>\n</c></d>\n": "XML syntax error on line 5: unexpected end element </d>",
	} {
		_, err := Parse(etreeDecoder([]byte(doc)), nil)
		var se *xml.SyntaxError
		if !errors.As(err, &se) || err.Error() != want {
			t.Errorf("%q: %v (%T), want %q", doc, err, err, want)
		}
	}
}

// TestParseCheck: check sees every token before the tree takes it, with the offset where it
// begins, and its error stops the parse as it is.
func TestParseCheck(t *testing.T) {
	doc := `<?xml version="1.0"?><a x="1"><!--c--><b>t</b></a>`
	type seen struct {
		kind  string
		start int64
	}
	var got []seen
	_, err := Parse(etreeDecoder([]byte(doc)), func(tok xml.Token, start int64) error {
		got = append(got, seen{fmt.Sprintf("%T", tok), start})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []seen{{"xml.ProcInst", 0}, {"xml.StartElement", 21}, {"xml.Comment", 30}, {"xml.StartElement", 38},
		{"xml.CharData", 41}, {"xml.EndElement", 42}, {"xml.EndElement", 46}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("check saw %v, want %v", got, want)
	}
	stop := errors.New("stop here")
	calls := 0
	doc2, err := Parse(etreeDecoder([]byte(doc)), func(tok xml.Token, _ int64) error {
		calls++
		if _, ok := tok.(xml.Comment); ok {
			return stop
		}
		return nil
	})
	if err != stop || doc2 != nil || calls != 3 {
		t.Fatalf("Parse = %v, %v after %d calls; want the check's own error after 3", doc2, err, calls)
	}
}

// FuzzParseAsEtree compares the two readers on any document.
func FuzzParseAsEtree(f *testing.F) {
	for _, doc := range documents {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsEtree(t, "fuzzed", b)
	})
}
