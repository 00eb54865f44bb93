// Package xmltree builds an etree document in one pass of encoding/xml's tokenizer, showing each
// token to the caller's check before it joins the tree.
//
// The broker used to read each request twice: a scan with encoding/xml applied its limits, and
// etree then parsed the same bytes again, through a reader wrapper that made encoding/xml buffer
// them once more (4 KB for each parse, three parses a request). Here one decoder, reading the
// bytes directly, serves both (issue 20). The tree is the one etree's own reader builds: prefixes
// kept as written, character data and comments where they stand, the whitespace flag of etree's
// CharData set the same way, an attribute written twice on an element kept once, where it was
// first written, with the value it was last given. The document's own errors (an end tag that
// does not match its start tag, an element left open) are reported as Decoder.Token reports them,
// so that a reader of the same bytes with Token refuses them in the same words.
package xmltree

import (
	"encoding/xml"
	"errors"
	"io"

	"github.com/beevik/etree"
)

// Parse reads dec to its end and returns the document. dec must be strict and is read with
// RawToken: the tree keeps names as written, as etree's does. check, when not nil, sees each
// token first, with the offset in the input where it begins; its error stops the parse and is
// returned as it is. The decoder's errors, and the document's own (an end tag that does not match,
// an element left open), are returned as *xml.SyntaxError.
func Parse(dec *xml.Decoder, check func(tok xml.Token, start int64) error) (*etree.Document, error) {
	doc := etree.NewDocument()
	open := []*etree.Element{&doc.Element}
	for {
		start := dec.InputOffset()
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			if len(open) != 1 {
				return nil, syntaxError(dec, "unexpected EOF")
			}
			return doc, nil
		}
		if err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(tok, start); err != nil {
				return nil, err
			}
		}
		top := open[len(open)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			open = append(open, element(top, t))
		case xml.EndElement:
			if len(open) == 1 {
				return nil, syntaxError(dec, "unexpected end element </"+t.Name.Local+">")
			}
			if err := closes(dec, top, t); err != nil {
				return nil, err
			}
			open = open[:len(open)-1]
		case xml.CharData:
			// SetData marks whitespace-only data as etree's reader does.
			top.CreateText("").SetData(string(t))
		case xml.Comment:
			top.CreateComment(string(t))
		case xml.ProcInst:
			top.CreateProcInst(t.Target, string(t.Inst))
		case xml.Directive:
			top.AddChild(etree.NewDirective(string(t)))
		}
	}
}

// element adds the element t starts to parent, with its attributes, names as written.
func element(parent *etree.Element, t xml.StartElement) *etree.Element {
	// Created without a name and named after: CreateElement and CreateAttr would split a name at
	// its first colon, where the decoder has already split it.
	el := parent.CreateElement("")
	el.Space, el.Tag = t.Name.Space, t.Name.Local
	if len(t.Attr) > 0 {
		el.Attr = make([]etree.Attr, 0, len(t.Attr))
	}
next:
	for _, a := range t.Attr {
		for i := range el.Attr {
			if el.Attr[i].Space == a.Name.Space && el.Attr[i].Key == a.Name.Local {
				el.Attr[i].Value = a.Value
				continue next
			}
		}
		// No attribute of el has an empty name, so CreateAttr adds one, which is then named.
		at := el.CreateAttr("", a.Value)
		at.Space, at.Key = a.Name.Space, a.Name.Local
	}
	return el
}

// closes checks that the end tag t closes the open element top, in Decoder.Token's words.
func closes(dec *xml.Decoder, top *etree.Element, t xml.EndElement) error {
	switch {
	case top.Tag != t.Name.Local:
		return syntaxError(dec, "element <"+top.Tag+"> closed by </"+t.Name.Local+">")
	case top.Space != t.Name.Space:
		space := t.Name.Space
		if space == "" {
			space = `""`
		}
		return syntaxError(dec, "element <"+top.Tag+"> in space "+top.Space+" closed by </"+t.Name.Local+"> in space "+space)
	}
	return nil
}

// syntaxError is an error of the document at the decoder's line.
func syntaxError(dec *xml.Decoder, msg string) error {
	line, _ := dec.InputPos()
	return &xml.SyntaxError{Msg: msg, Line: line}
}
