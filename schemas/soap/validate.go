package soap

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
)

// The XSDs are checked by hand rather than by a validator: there is no XSD validator in pure Go,
// and hand checks give each error a field path and a message a caller can act on. The XSD
// agreement test (xsd_test.go) keeps the two in step with xmllint.

// seq walks the element children of one element against an xs:sequence. Comments are skipped;
// text in element-only content is refused when the seq is made.
type seq struct {
	path  string // path of the parent, "" for none
	ns    string // namespace of the children
	order []string
	kids  []*etree.Element
	i     int
}

// newSeq checks parent's attributes and text and prepares to walk its children in order.
func newSeq(parent *etree.Element, path, ns string, order ...string) (*seq, error) {
	if err := checkAttrs(parent, path); err != nil {
		return nil, err
	}
	if hasText(parent) {
		return nil, siobroker.FieldError(orRoot(path), "must hold elements only, found text")
	}
	return &seq{path: path, ns: ns, order: order, kids: parent.ChildElements()}, nil
}

func orRoot(path string) string {
	if path == "" {
		return "."
	}
	return path
}

func (s *seq) child(name string) string {
	if s.path == "" {
		return name
	}
	return s.path + "/" + name
}

func (s *seq) is(e *etree.Element, name string) bool {
	return e.Tag == name && e.NamespaceURI() == s.ns
}

// peekIs reports whether the next child is name.
func (s *seq) peekIs(name string) bool {
	return s.i < len(s.kids) && s.is(s.kids[s.i], name)
}

// opt consumes the next child if it is name.
func (s *seq) opt(name string) *etree.Element {
	if s.peekIs(name) {
		s.i++
		return s.kids[s.i-1]
	}
	return nil
}

// req consumes the next child, which must be name.
func (s *seq) req(name string) (*etree.Element, error) {
	if e := s.opt(name); e != nil {
		return e, nil
	}
	if s.i >= len(s.kids) {
		return nil, siobroker.FieldError(s.child(name), "is required")
	}
	return nil, s.misplaced(s.kids[s.i], name)
}

// many consumes up to max children named name (max <= 0: unbounded); at least min.
func (s *seq) many(name string, min, max int) ([]*etree.Element, error) {
	var out []*etree.Element
	for s.peekIs(name) {
		if max > 0 && len(out) == max {
			return nil, siobroker.FieldError(s.child(name), "may occur at most %d times", max)
		}
		out = append(out, s.kids[s.i])
		s.i++
	}
	if len(out) < min {
		if _, err := s.req(name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// end refuses any child left over.
func (s *seq) end() error {
	if s.i < len(s.kids) {
		return s.misplaced(s.kids[s.i], "")
	}
	return nil
}

// misplaced explains why e is not acceptable where want was expected: an unknown element, or a
// known one out of order or repeated.
func (s *seq) misplaced(e *etree.Element, want string) error {
	if !contains(s.order, e.Tag) {
		return siobroker.FieldError(s.child(e.Tag), "unexpected element %s", describe(e))
	}
	if e.NamespaceURI() != s.ns {
		// The commonest mistake with the gateway's types: qualifying the unqualified children.
		if s.ns == "" {
			return siobroker.FieldError(s.child(e.Tag), "unexpected element %s: it must be unqualified (no namespace)", describe(e))
		}
		return siobroker.FieldError(s.child(e.Tag), "unexpected element %s: it must be in namespace %q", describe(e), s.ns)
	}
	order := strings.Join(s.order, ", ")
	if want != "" {
		return siobroker.FieldError(s.child(want), "is required here, found %s (the order is %s)", describe(e), order)
	}
	return siobroker.FieldError(s.child(e.Tag), "unexpected element %s: repeated or out of order (the order is %s)", describe(e), order)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// describe names an element for a message: <name>, with its namespace when it has one.
func describe(e *etree.Element) string {
	if ns := e.NamespaceURI(); ns != "" {
		return fmt.Sprintf("<%s xmlns=%q>", e.Tag, ns)
	}
	return "<" + e.Tag + ">"
}

// isNSDecl reports whether a is a namespace declaration rather than an attribute.
func isNSDecl(a etree.Attr) bool {
	return a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns")
}

// checkAttrs refuses attributes other than namespace declarations and the allowed unprefixed ones.
func checkAttrs(e *etree.Element, path string, allowed ...string) error {
	for _, a := range e.Attr {
		if isNSDecl(a) || (a.Space == "" && contains(allowed, a.Key)) {
			continue
		}
		return siobroker.FieldError(orRoot(path)+"/@"+a.Key, "unexpected attribute %s", a.FullKey())
	}
	return nil
}

// hasText reports whether e holds non-whitespace character data directly.
func hasText(e *etree.Element) bool {
	for _, t := range e.Child {
		if cd, ok := t.(*etree.CharData); ok && strings.Trim(cd.Data, " \t\r\n") != "" {
			return true
		}
	}
	return false
}

// text returns the character content of a simple-content element: all its character data, with
// comments between them dropped. Child elements are refused.
func text(e *etree.Element, path string, attrs ...string) (string, error) {
	if err := checkAttrs(e, path, attrs...); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, t := range e.Child {
		switch t := t.(type) {
		case *etree.CharData:
			b.WriteString(t.Data)
		case *etree.Element:
			return "", siobroker.FieldError(path, "must hold text only, found element %s", describe(t))
		}
	}
	return b.String(), nil
}

// collapse applies the XSD whiteSpace="collapse" facet, which xs:int and xs:dateTime have.
func collapse(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}), " ")
}

var reInt = regexp.MustCompile(`^[+-]?[0-9]+$`)

// xsInt parses an xs:int restricted to [min, max].
func xsInt(path, raw string, min, max int) (int, error) {
	s := collapse(raw)
	if reInt.MatchString(s) {
		if n, err := strconv.ParseInt(s, 10, 32); err == nil && int(n) >= min && int(n) <= max {
			return int(n), nil
		}
	}
	return 0, siobroker.FieldError(path, "must be an integer from %d to %d, got %q", min, max, raw)
}

// reDateTime is xs:dateTime with the time zone made mandatory: a time without an offset is
// ambiguous, and replay checks compare instants. Hour 24 (legal in XSD) is refused as well.
var reDateTime = regexp.MustCompile(`^-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`)

func xsDateTime(path, raw string) (time.Time, error) {
	s := collapse(raw)
	if reDateTime.MatchString(s) {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, siobroker.FieldError(path, "must be an xs:dateTime with a time zone offset, e.g. 2026-11-23T17:00:00.000+05:00, got %q", raw)
}

// lengthIn checks an XSD length facet, which counts characters, not bytes.
func lengthIn(path, s string, min, max int) error {
	n := utf8.RuneCountInString(s)
	if n < min || n > max {
		if min == 1 && n == 0 {
			return siobroker.FieldError(path, "must not be empty")
		}
		return siobroker.FieldError(path, "must be %d to %d characters long, got %d", min, max, n)
	}
	return nil
}

// token64 is tns:Token64: 1 to 64 characters matching [^\s].* (XSD patterns are anchored, and "."
// excludes line breaks).
func token64(path, s string) error {
	if err := lengthIn(path, s, 1, 64); err != nil {
		return err
	}
	if strings.ContainsAny(s[:1], " \t\r\n") || strings.ContainsAny(s, "\r\n") {
		return siobroker.FieldError(path, "must not start with whitespace or contain line breaks, got %q", s)
	}
	return nil
}

var (
	reTwelve  = regexp.MustCompile(`^[0-9]{12}$`)
	reArticle = regexp.MustCompile(`^[0-9]{1,3}(-[0-9]{1,2})?$`)
	reYear    = regexp.MustCompile(`^[0-9]{4}$`)
	// reNCName approximates the NCName production of xs:ID; enough to refuse what a
	// signature reference could not name.
	reNCName = regexp.MustCompile(`^[\p{L}_][\p{L}\p{N}\p{M}._\-]*$`)
)

func twelveDigits(path, s string) error {
	if !reTwelve.MatchString(s) {
		return siobroker.FieldError(path, "must be 12 digits, got %q", s)
	}
	return nil
}

// nonEmpty refuses an empty or blank value of a required element. The gateway's
// xs:string allows empty values; the broker needs these to identify and route a message.
func nonEmpty(path, s string) error {
	if strings.TrimSpace(s) == "" {
		return siobroker.FieldError(path, "must not be empty")
	}
	return nil
}

// idAttr checks the optional Id attribute (xs:ID) of query and result.
func idAttr(e *etree.Element, path string) error {
	if a := e.SelectAttr("Id"); a != nil && a.Space == "" && !reNCName.MatchString(a.Value) {
		return siobroker.FieldError(path+"/@Id", "must be an XML name (xs:ID), got %q", a.Value)
	}
	return nil
}
