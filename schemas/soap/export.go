package soap

import (
	"encoding/base64"
	"strings"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// The prosecutor's export is a workflow (§51–53): q:exportQuery asks for it under a resolution and
// is answered with q:exportStatus "pending"; the operator approves or refuses it; q:exportFetch,
// signed by the same prosecutor, then gets the export itself as a q:report once it is approved,
// or q:exportStatus while it is not.

// The states of an export request, as q:exportStatus/@status carries them.
const (
	ExportPending  = "pending"  // waiting for the operator
	ExportApproved = "approved" // the operator approved it: q:exportFetch delivers it
	ExportRefused  = "refused"  // the operator refused it, with a reason
)

var exportStates = []string{ExportPending, ExportApproved, ExportRefused}

// Document is a file carried in a request: the resolution an export is ordered under.
type Document struct {
	FileName  string
	MediaType string
	Content   []byte
}

// ExportFetch is a q:exportFetch: the prosecutor asks for the export request ExportID.
type ExportFetch struct {
	ExportID string
}

// ExportStatus is a q:exportStatus: where the export request ExportID stands.
type ExportStatus struct {
	RequestMessageID string // the messageId of the request it answers
	ExportID         string
	Status           string // ExportPending, ExportApproved or ExportRefused
	Reason           string // the operator's, with a refusal
}

// parseDocument reads a tns:Document: base64 content, and its fileName and mediaType attributes.
func parseDocument(e *etree.Element, path string) (Document, error) {
	var d Document
	raw, err := text(e, path, "fileName", "mediaType")
	if err != nil {
		return d, err
	}
	for _, a := range []struct {
		name  string
		dst   *string
		check func(string, string) error
	}{{"fileName", &d.FileName, text256}, {"mediaType", &d.MediaType, token64}} {
		at := e.SelectAttr(a.name)
		if at == nil {
			return d, siobroker.FieldError(path+"/@"+a.name, "is required")
		}
		if err := a.check(path+"/@"+a.name, at.Value); err != nil {
			return d, err
		}
		*a.dst = at.Value
	}
	// xs:base64Binary allows white space between the characters (line-wrapped base64).
	b64 := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, raw)
	if d.Content, err = base64.StdEncoding.DecodeString(b64); err != nil {
		return d, siobroker.FieldError(path, "must be base64: %v", err)
	}
	if len(d.Content) == 0 {
		return d, siobroker.FieldError(path, "must not be empty: attach the resolution")
	}
	return d, nil
}

// NewExportFetchRequest builds an unsigned SendMessage envelope carrying q:exportFetch.
func NewExportFetchRequest(info siobroker.RequestInfo, q ExportFetch) *etree.Document {
	doc, data := newRequestData(info)
	qe := data.CreateElement(prefixQ + ":exportFetch")
	qe.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	qe.CreateAttr("Id", "id-ef-"+idPart(info.MessageID))
	leaf(qe, prefixQ+":exportId", q.ExportID)
	return doc
}

// ParseExportFetch validates a q:exportFetch element against sio-query-v1.xsd and returns it.
func ParseExportFetch(el *etree.Element) (ExportFetch, error) {
	var q ExportFetch
	const p = "exportFetch"
	if err := rootElement(el, p); err != nil {
		return q, err
	}
	s, err := querySeq(el, p, "exportId")
	if err != nil {
		return q, err
	}
	e, err := s.req("exportId")
	if err != nil {
		return q, err
	}
	if q.ExportID, err = text(e, p+"/exportId"); err != nil {
		return q, err
	}
	if err := token64(p+"/exportId", q.ExportID); err != nil {
		return q, err
	}
	return q, s.end()
}

// NewExportStatusResponse builds an unsigned SendMessageResponse envelope around q:exportStatus.
// Its requestMessageId is info.CorrelationID, as q:report's.
func NewExportStatusResponse(info ResponseInfo, st ExportStatus) *etree.Document {
	doc, data := newResponseData(info)
	se := data.CreateElement(prefixQ + ":exportStatus")
	se.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	se.CreateAttr("Id", "id-es-"+idPart(info.MessageID))
	se.CreateAttr("requestMessageId", info.CorrelationID)
	se.CreateAttr("exportId", st.ExportID)
	se.CreateAttr("status", st.Status)
	optLeaf(se, prefixQ+":reason", st.Reason)
	return doc
}

// ParseExportStatus validates and reads a q:exportStatus element on its own: the content an
// enveloped reply signature covers.
func ParseExportStatus(el *etree.Element) (ExportStatus, error) {
	var st ExportStatus
	const p = "exportStatus"
	if err := rootElement(el, p, "requestMessageId", "exportId", "status"); err != nil {
		return st, err
	}
	for _, a := range []struct {
		name string
		dst  *string
	}{{"requestMessageId", &st.RequestMessageID}, {"exportId", &st.ExportID}, {"status", &st.Status}} {
		at := el.SelectAttr(a.name)
		if at == nil {
			return st, siobroker.FieldError(p+"/@"+a.name, "is required")
		}
		*a.dst = at.Value
	}
	if !contains(exportStates, st.Status) {
		return st, siobroker.FieldError(p+"/@status", "must be pending, approved or refused, got %q", st.Status)
	}
	s, err := querySeq(el, p, "reason")
	if err != nil {
		return st, err
	}
	if e := s.opt("reason"); e != nil {
		if st.Reason, err = text(e, p+"/reason"); err != nil {
			return st, err
		}
	}
	return st, s.end()
}

// ParseResponseInfoOf reads and validates the responseInfo of a SendMessageResponse Body, whatever
// its data holds (q:report or q:exportStatus); a Body holding a soapenv:Fault gives the fault's
// error.
func ParseResponseInfoOf(body *etree.Element) (ResponseInfo, error) {
	info, _, err := responseParts(body)
	return info, err
}
