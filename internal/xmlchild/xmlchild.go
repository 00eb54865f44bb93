// Package xmlchild finds child elements by local name, whatever their namespace prefix: the
// envelopes the broker reads (its clients' SendMessage, a source's SOAP answers) qualify their
// elements in ways that vary from sender to sender.
package xmlchild

import "github.com/beevik/etree"

// All returns el's child elements of the local name local, in document order.
func All(el *etree.Element, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			out = append(out, c)
		}
	}
	return out
}

// First returns el's first child element of the local name local, or nil.
func First(el *etree.Element, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			return c
		}
	}
	return nil
}
