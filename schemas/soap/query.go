package soap

import (
	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// ParseQuery validates a q:query element against sio-query-v1.xsd and returns it. The element is
// the one a signature verifier returned (or the one SendMessageParts found, when the signature is
// in the header). Beyond the XSD, a service number may appear only once. The IIN/BIN check digit
// is not checked here: it is a business rule with its own code (CodeSubject).
func ParseQuery(el *etree.Element) (siobroker.Query, error) {
	var q siobroker.Query
	const p = "query"
	if el == nil {
		return q, siobroker.FieldError(p, "is required")
	}
	if el.Tag != "query" || el.NamespaceURI() != schemas.NSQuery {
		return q, siobroker.FieldError(p, "expected <query xmlns=%q>, found %s", schemas.NSQuery, describe(el))
	}
	if err := checkAttrs(el, p, "Id"); err != nil {
		return q, err
	}
	if err := idAttr(el, p); err != nil {
		return q, err
	}
	s, err := querySeq(el, p, "basis", "case", "article", "subject", "services", "purpose")
	if err != nil {
		return q, err
	}
	if q.Basis, err = basisField(s); err != nil {
		return q, err
	}
	ce, err := s.req("case")
	if err != nil {
		return q, err
	}
	if q.Case, err = parseCase(ce, p+"/case"); err != nil {
		return q, err
	}
	if ae := s.opt("article"); ae != nil {
		if q.Article, err = text(ae, p+"/article"); err != nil {
			return q, err
		}
		if !reArticle.MatchString(q.Article) {
			return q, siobroker.FieldError(p+"/article", "must be an article number such as 190 or 190-2, got %q", q.Article)
		}
	}
	if q.Subject, err = subjectField(s); err != nil {
		return q, err
	}
	se, err := s.req("services")
	if err != nil {
		return q, err
	}
	if q.Services, err = parseServices(se, p+"/services"); err != nil {
		return q, err
	}
	pe, err := s.req("purpose")
	if err != nil {
		return q, err
	}
	if q.Purpose, err = text(pe, p+"/purpose"); err != nil {
		return q, err
	}
	if err := lengthIn(p+"/purpose", q.Purpose, 1, 1000); err != nil {
		return q, err
	}
	return q, s.end()
}

// querySeq starts the sequence of q:query or q:result, whose first child may be an enveloped
// ds:Signature (skipped: the verifier has dealt with it). Attributes were checked by the caller.
func querySeq(el *etree.Element, path string, order ...string) (*seq, error) {
	if hasText(el) {
		return nil, siobroker.FieldError(path, "must hold elements only, found text")
	}
	s := &seq{path: path, ns: schemas.NSQuery, order: order, kids: el.ChildElements()}
	if s.i < len(s.kids) && s.kids[0].Tag == "Signature" && s.kids[0].NamespaceURI() == schemas.NSDSig {
		s.i++
	}
	return s, nil
}

func basisField(s *seq) (siobroker.Basis, error) {
	e, err := s.req("basis")
	if err != nil {
		return 0, err
	}
	v, err := text(e, s.child("basis"))
	if err != nil {
		return 0, err
	}
	// The Law's bases of §1 (7–9) are parsed like the others; whether anyone may use them is the
	// rights' decision, not the message format's.
	n, err := xsInt(s.child("basis"), v, int(siobroker.FirstBasis), int(siobroker.LastLawBasis))
	return siobroker.Basis(n), err
}

func parseCase(el *etree.Element, p string) (siobroker.CaseRef, error) {
	var c siobroker.CaseRef
	s, err := newSeq(el, p, schemas.NSQuery, "number", "instructionNo", "requestingBody", "coveringLetterNo", "year", "court")
	if err != nil {
		return c, err
	}
	// Each field: its element name, where it goes, and its type's check.
	fields := []struct {
		name     string
		dst      *string
		required bool
		check    func(path, v string) error
	}{
		{"number", &c.Number, true, token64},
		{"instructionNo", &c.InstructionNo, false, token64},
		{"requestingBody", &c.RequestingBody, false, text256},
		{"coveringLetterNo", &c.CoveringLetterNo, false, token64},
		{"year", &c.Year, false, year},
		{"court", &c.Court, false, text256},
	}
	for _, f := range fields {
		var e *etree.Element
		if f.required {
			if e, err = s.req(f.name); err != nil {
				return c, err
			}
		} else if e = s.opt(f.name); e == nil {
			continue
		}
		fp := p + "/" + f.name
		if *f.dst, err = text(e, fp); err != nil {
			return c, err
		}
		if err := f.check(fp, *f.dst); err != nil {
			return c, err
		}
	}
	return c, s.end()
}

func text256(path, s string) error { return lengthIn(path, s, 1, 256) }

func year(path, s string) error {
	if !reYear.MatchString(s) {
		return siobroker.FieldError(path, "must be 4 digits, got %q", s)
	}
	return nil
}

// subjectField reads tns:Subject, a choice of iin or bin.
func subjectField(s *seq) (siobroker.Subject, error) {
	var sub siobroker.Subject
	e, err := s.req("subject")
	if err != nil {
		return sub, err
	}
	p := s.child("subject")
	ss, err := newSeq(e, p, schemas.NSQuery, "iin", "bin")
	if err != nil {
		return sub, err
	}
	dst, name := &sub.IIN, "iin"
	ie := ss.opt("iin")
	if ie == nil {
		dst, name = &sub.BIN, "bin"
		if ie = ss.opt("bin"); ie == nil {
			if ss.i < len(ss.kids) {
				return sub, ss.misplaced(ss.kids[ss.i], "iin")
			}
			return sub, siobroker.FieldError(p, "must hold iin or bin")
		}
	}
	if *dst, err = text(ie, p+"/"+name); err != nil {
		return sub, err
	}
	if err := twelveDigits(p+"/"+name, *dst); err != nil {
		return sub, err
	}
	if ss.i < len(ss.kids) {
		return sub, siobroker.FieldError(p, "must hold exactly one of iin or bin, found %s after <%s>", describe(ss.kids[ss.i]), name)
	}
	return sub, nil
}

func parseServices(el *etree.Element, p string) ([]int, error) {
	s, err := newSeq(el, p, schemas.NSQuery, "service")
	if err != nil {
		return nil, err
	}
	es, err := s.many("service", 1, siobroker.MaxServicesPerQuery)
	if err != nil {
		return nil, err
	}
	if err := s.end(); err != nil {
		return nil, err
	}
	out := make([]int, 0, len(es))
	seen := make(map[int]bool, len(es))
	for _, e := range es {
		sp := p + "/service"
		v, err := text(e, sp)
		if err != nil {
			return nil, err
		}
		n, err := xsInt(sp, v, siobroker.FirstService, siobroker.LastService)
		if err != nil {
			return nil, err
		}
		if seen[n] {
			return nil, siobroker.FieldError(sp, "service %d is listed more than once", n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}
