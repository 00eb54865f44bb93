package signing

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/beevik/etree"
)

// This file implements Canonical XML 1.0 and Exclusive XML Canonicalization 1.0 over an etree
// subtree. goxmldsig's canonicalisers sort prefixed attributes by prefix rather than by namespace
// URI, need a parent chain for inclusive C14N and cap traversals at 1000 elements; owning the
// serialiser keeps the digested bytes exactly what this package says they are.

const (
	nsXML   = "http://www.w3.org/XML/1998/namespace"
	nsExcCN = "http://www.w3.org/2001/10/xml-exc-c14n#" // namespace of ec:InclusiveNamespaces
)

// maxC14NDepth bounds recursion. etree refuses to parse deeper than 1024 levels by default, so a
// parsed document never reaches it; a tree built in memory might.
const maxC14NDepth = 1100

var errC14NDepth = errors.New("element nesting too deep to canonicalise")

// canonicalizer serialises one element (the apex) in canonical form.
type canonicalizer struct {
	method c14nMethod
	// inclusivePrefixes is the InclusiveNamespaces PrefixList of exclusive C14N; "" stands for
	// "#default".
	inclusivePrefixes map[string]bool
	// exclude is omitted with its subtree: the enveloped-signature transform.
	exclude *etree.Element
	buf     *bytes.Buffer
	// steps counts namespace bindings pushed and prefixes considered: the work beyond writing
	// bytes out, which the tests hold linear in the document.
	steps int
}

// canonicalize returns the canonical form of el as it sits in its document: namespaces declared
// on its ancestors are taken into account (and, for inclusive C14N, inherited xml:* attributes).
// exclude, if not nil, is left out. prefixList is the exclusive C14N InclusiveNamespaces list.
func canonicalize(el *etree.Element, method c14nMethod, prefixList string, exclude *etree.Element) ([]byte, error) {
	out, _, err := canonicalizeCounting(el, method, prefixList, exclude)
	return out, err
}

// canonicalizeCounting is canonicalize, also returning the canonicalizer's steps.
func canonicalizeCounting(el *etree.Element, method c14nMethod, prefixList string, exclude *etree.Element) ([]byte, int, error) {
	var buf bytes.Buffer
	steps, err := canonicalizeInto(&buf, el, method, prefixList, exclude)
	if err != nil {
		return nil, steps, err
	}
	return buf.Bytes(), steps, nil
}

// c14nBuffers holds the buffers of canonical forms that are only hashed, or parsed, and then
// dropped: the Body of every request and reply is canonicalised at least once, and growing a
// fresh buffer to its size each time was among the largest allocations of a request (issue 20).
var c14nBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledC14N is the largest buffer given back to c14nBuffers: one canonical form of a large
// message is not kept alive for the requests of ordinary size that follow it.
const maxPooledC14N = 256 << 10

// pooledC14N is a canonical form in a buffer of c14nBuffers. Bytes is valid until release.
type pooledC14N struct{ buf *bytes.Buffer }

// canonicalizePooled is canonicalize into a pooled buffer. The caller must call release once it
// no longer reads Bytes, and must not keep Bytes (or a slice of it) beyond that.
func canonicalizePooled(el *etree.Element, method c14nMethod, prefixList string, exclude *etree.Element) (pooledC14N, error) {
	buf := c14nBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	if _, err := canonicalizeInto(buf, el, method, prefixList, exclude); err != nil {
		pooledC14N{buf}.release()
		return pooledC14N{}, err
	}
	return pooledC14N{buf}, nil
}

// Bytes returns the canonical form; nil after release or for the zero value.
func (p pooledC14N) Bytes() []byte {
	if p.buf == nil {
		return nil
	}
	return p.buf.Bytes()
}

// release gives the buffer back to the pool. It is a no-op for the zero value.
func (p pooledC14N) release() {
	if p.buf == nil || p.buf.Cap() > maxPooledC14N {
		return
	}
	p.buf.Reset()
	c14nBuffers.Put(p.buf)
}

// canonicalizeInto writes the canonical form of el to buf (see canonicalize) and returns the
// canonicalizer's steps.
func canonicalizeInto(buf *bytes.Buffer, el *etree.Element, method c14nMethod, prefixList string, exclude *etree.Element) (int, error) {
	c := &canonicalizer{method: method, exclude: exclude, buf: buf}
	if method.exclusive {
		c.inclusivePrefixes = map[string]bool{}
		for p := range strings.FieldsSeq(prefixList) {
			if p == "#default" {
				p = ""
			}
			c.inclusivePrefixes[p] = true
		}
	}
	var inherited []etree.Attr
	if !method.exclusive {
		inherited = inheritedXMLAttrs(el)
	}
	scope, rendered := namespacesInScope(el.Parent()), newNSScope()
	if err := c.element(el, scope, rendered, inherited, 0); err != nil {
		return c.steps, err
	}
	return c.steps + scope.pushes + rendered.pushes, nil
}

// nsScope is the set of prefix -> namespace bindings in force while the tree is walked, kept as
// one stack of bindings per prefix: entering an element pushes only what it declares and leaving
// it pops the same, so the walk costs what the document holds. Copying the whole map for each
// declaring element (as this file once did) made 5,000 declaring children under 10,000
// declarations cost 50 million map entries (issue 16).
type nsScope struct {
	bindings map[string][]string // "" is the default namespace
	pushes   int
}

func newNSScope() *nsScope { return &nsScope{bindings: map[string][]string{}} }

// lookup returns the binding of prefix in force.
func (s *nsScope) lookup(prefix string) (string, bool) {
	b := s.bindings[prefix]
	if len(b) == 0 {
		return "", false
	}
	return b[len(b)-1], true
}

// bound returns the binding of prefix in force, "" if there is none.
func (s *nsScope) bound(prefix string) string {
	uri, _ := s.lookup(prefix)
	return uri
}

func (s *nsScope) push(prefix, uri string) {
	s.pushes++
	s.bindings[prefix] = append(s.bindings[prefix], uri)
}

// pop undoes the latest push of each of prefixes.
func (s *nsScope) pop(prefixes []string) {
	for _, p := range prefixes {
		b := s.bindings[p]
		if len(b) == 1 {
			delete(s.bindings, p) // so that ranging over bindings sees only prefixes in scope
			continue
		}
		s.bindings[p] = b[:len(b)-1]
	}
}

// declare pushes the namespace declarations of el and returns their prefixes, for pop.
func (s *nsScope) declare(el *etree.Element) []string {
	var pushed []string
	for _, a := range el.Attr {
		if p, ok := declaredPrefix(a); ok {
			s.push(p, a.Value)
			pushed = append(pushed, p)
		}
	}
	return pushed
}

// namespacesInScope returns the bindings in force at el (declarations on el included). A nil el
// has no bindings.
func namespacesInScope(el *etree.Element) *nsScope {
	var chain []*etree.Element
	for e := el; e != nil; e = e.Parent() {
		chain = append(chain, e)
	}
	scope := newNSScope()
	for i := len(chain) - 1; i >= 0; i-- {
		scope.declare(chain[i])
	}
	return scope
}

// declaredPrefix returns the prefix a declares ("" for the default namespace), if a is a
// namespace declaration. xmlns:xml is not one: the xml prefix is bound by definition.
func declaredPrefix(a etree.Attr) (string, bool) {
	switch {
	case a.Space == "xmlns" && a.Key != "xml":
		return a.Key, true
	case a.Space == "" && a.Key == "xmlns":
		return "", true
	}
	return "", false
}

func isNamespaceDecl(a etree.Attr) bool {
	return a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns")
}

// inheritedXMLAttrs returns the xml:* attributes of el's ancestors that el does not override.
// Inclusive C14N of a document subset carries them onto the apex.
func inheritedXMLAttrs(el *etree.Element) []etree.Attr {
	found := map[string]etree.Attr{}
	for e := el.Parent(); e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if a.Space == "xml" {
				if _, nearer := found[a.Key]; !nearer {
					found[a.Key] = a
				}
			}
		}
	}
	for _, a := range el.Attr {
		if a.Space == "xml" {
			delete(found, a.Key)
		}
	}
	keys := slices.Sorted(maps.Keys(found))
	out := make([]etree.Attr, 0, len(keys))
	for _, k := range keys {
		out = append(out, etree.Attr{Space: "xml", Key: k, Value: found[k].Value})
	}
	return out
}

type nsDecl struct{ prefix, uri string }

type canonicalAttr struct {
	uri, space, local, value string // space is the attribute's prefix, "" for none
}

// element writes el and its subtree in canonical form. scope holds the namespace bindings in
// force at el's parent, rendered those already written out by an output ancestor, and extra the
// attributes carried onto the apex (inherited xml:* attributes of inclusive C14N). Both are
// pushed to for el and popped again before it returns.
func (c *canonicalizer) element(el *etree.Element, scope, rendered *nsScope, extra []etree.Attr, depth int) error {
	if depth > maxC14NDepth {
		return errC14NDepth
	}
	declared := scope.declare(el)
	defer scope.pop(declared)
	if el.Space != "" && el.Space != "xml" {
		if _, ok := scope.lookup(el.Space); !ok {
			return fmt.Errorf("element %s: undeclared namespace prefix %q", el.FullTag(), el.Space)
		}
	}

	decls := c.namespaceDecls(el, depth == 0, declared, scope, rendered)
	renderedHere := make([]string, 0, len(decls))
	for _, d := range decls {
		rendered.push(d.prefix, d.uri)
		renderedHere = append(renderedHere, d.prefix)
	}
	defer rendered.pop(renderedHere)
	attrs, err := canonicalAttrs(el, scope, extra)
	if err != nil {
		return err
	}

	c.startTag(el, decls, attrs)
	if err := c.content(el, scope, rendered, depth); err != nil {
		return err
	}
	c.buf.WriteString("</")
	c.writeName(el.Space, el.Tag)
	c.buf.WriteByte('>')
	return nil
}

// namespaceDecls returns the namespace declarations el must render, sorted by prefix: those in
// scope (exclusive C14N: only the visibly utilised ones and the InclusiveNamespaces prefixes)
// whose binding differs from what an output ancestor already rendered. declared are the prefixes
// el itself declares.
//
// Below the apex only those can differ for inclusive C14N (and for the InclusiveNamespaces
// prefixes of exclusive C14N): the parent rendered every binding in its scope that needed it, and
// el's scope is its parent's but for what el declares. So the apex looks at the whole scope and
// every other element only at its own declarations, and the work stays linear in the document.
func (c *canonicalizer) namespaceDecls(el *etree.Element, apex bool, declared []string, scope, rendered *nsScope) []nsDecl {
	var decls []nsDecl
	considered := map[string]bool{}
	consider := func(prefix string) {
		// The xml prefix is bound by definition and never declared.
		if prefix == "xml" || considered[prefix] {
			return
		}
		considered[prefix] = true
		c.steps++
		uri, _ := scope.lookup(prefix)
		prev, wasRendered := rendered.lookup(prefix)
		if prefix == "" && uri == "" {
			// xmlns="" is needed only to undo a default namespace rendered above.
			if wasRendered && prev != "" {
				decls = append(decls, nsDecl{"", ""})
			}
			return
		}
		if !wasRendered || prev != uri {
			decls = append(decls, nsDecl{prefix, uri})
		}
	}
	if c.method.exclusive {
		consider(el.Space)
		for _, a := range el.Attr {
			if !isNamespaceDecl(a) && a.Space != "" {
				consider(a.Space)
			}
		}
		inScope := func(p string) bool { _, ok := scope.lookup(p); return ok && c.inclusivePrefixes[p] }
		if apex {
			for p := range c.inclusivePrefixes {
				if inScope(p) {
					consider(p)
				}
			}
		} else {
			for _, p := range declared {
				if inScope(p) {
					consider(p)
				}
			}
		}
	} else {
		if apex {
			for p := range scope.bindings {
				consider(p)
			}
		} else {
			for _, p := range declared {
				consider(p)
			}
		}
		consider("")
	}
	slices.SortFunc(decls, func(a, b nsDecl) int { return strings.Compare(a.prefix, b.prefix) })
	return decls
}

// canonicalAttrs returns el's attributes followed by extra, namespace declarations left out,
// sorted by namespace URI then local name.
func canonicalAttrs(el *etree.Element, scope *nsScope, extra []etree.Attr) ([]canonicalAttr, error) {
	attrs := make([]canonicalAttr, 0, len(el.Attr)+len(extra))
	// el.Attr then extra, without a slice of both for every element.
	for i := range len(el.Attr) + len(extra) {
		a := extraAttr(el.Attr, extra, i)
		if isNamespaceDecl(a) {
			continue
		}
		ca := canonicalAttr{space: a.Space, local: a.Key, value: a.Value}
		switch a.Space {
		case "":
		case "xml":
			ca.uri = nsXML
		default:
			uri, ok := scope.lookup(a.Space)
			if !ok {
				return nil, fmt.Errorf("attribute %s of %s: undeclared namespace prefix %q", a.FullKey(), el.FullTag(), a.Space)
			}
			ca.uri = uri
		}
		attrs = append(attrs, ca)
	}
	slices.SortFunc(attrs, func(a, b canonicalAttr) int {
		if n := strings.Compare(a.uri, b.uri); n != 0 {
			return n
		}
		return strings.Compare(a.local, b.local)
	})
	return attrs, nil
}

// extraAttr is the i-th attribute of attrs followed by extra.
func extraAttr(attrs, extra []etree.Attr, i int) etree.Attr {
	if i < len(attrs) {
		return attrs[i]
	}
	return extra[i-len(attrs)]
}

// writeName writes a qualified name, prefix:local or local alone, without building the string.
func (c *canonicalizer) writeName(prefix, local string) {
	if prefix != "" {
		c.buf.WriteString(prefix)
		c.buf.WriteByte(':')
	}
	c.buf.WriteString(local)
}

// startTag writes el's start tag: namespace declarations first, then attributes, each in the
// order given.
func (c *canonicalizer) startTag(el *etree.Element, decls []nsDecl, attrs []canonicalAttr) {
	c.buf.WriteByte('<')
	c.writeName(el.Space, el.Tag)
	for _, d := range decls {
		if d.prefix == "" {
			c.buf.WriteString(` xmlns="`)
		} else {
			c.buf.WriteString(` xmlns:`)
			c.buf.WriteString(d.prefix)
			c.buf.WriteString(`="`)
		}
		escapeAttr(c.buf, d.uri)
		c.buf.WriteByte('"')
	}
	for _, a := range attrs {
		c.buf.WriteByte(' ')
		c.writeName(a.space, a.local)
		c.buf.WriteString(`="`)
		escapeAttr(c.buf, a.value)
		c.buf.WriteByte('"')
	}
	c.buf.WriteByte('>')
}

// content writes el's children: elements (the excluded one left out), text, comments when the
// method keeps them, and processing instructions.
func (c *canonicalizer) content(el *etree.Element, scope, rendered *nsScope, depth int) error {
	for _, tok := range el.Child {
		switch t := tok.(type) {
		case *etree.Element:
			if t == c.exclude {
				continue
			}
			if err := c.element(t, scope, rendered, nil, depth+1); err != nil {
				return err
			}
		case *etree.CharData:
			escapeText(c.buf, t.Data)
		case *etree.Comment:
			if c.method.comments {
				c.buf.WriteString("<!--" + t.Data + "-->")
			}
		case *etree.ProcInst:
			c.buf.WriteString("<?" + t.Target)
			if t.Inst != "" {
				c.buf.WriteString(" " + t.Inst)
			}
			c.buf.WriteString("?>")
		default:
			return fmt.Errorf("element %s: unexpected %T inside an element", el.FullTag(), tok)
		}
	}
	return nil
}

func escapeText(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\r':
			b.WriteString("&#xD;")
		default:
			b.WriteRune(r)
		}
	}
}

func escapeAttr(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '"':
			b.WriteString("&quot;")
		case '\t':
			b.WriteString("&#x9;")
		case '\n':
			b.WriteString("&#xA;")
		case '\r':
			b.WriteString("&#xD;")
		default:
			b.WriteRune(r)
		}
	}
}
