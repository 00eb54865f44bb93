package soap

import (
	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// ParseResponse reads a SendMessageResponse from a Body, validating responseInfo against the
// gateway XSD and q:result against sio-query-v1.xsd. A Body holding a soapenv:Fault gives the
// fault's error, as ParseFault does. The client calls it after verifying the reply's signature.
func ParseResponse(body *etree.Element) (ResponseInfo, Result, error) {
	info, data, err := responseParts(body)
	if err != nil {
		return info, Result{}, err
	}
	res, err := parseResult(data)
	return info, res, err
}

// responseParts validates the SendMessageResponse of a Body and returns its responseInfo and the
// single element of responseData/data, whatever that element is: a result, a report or an
// asynchronous status. A Body holding a soapenv:Fault gives the fault's error.
func responseParts(body *etree.Element) (ResponseInfo, *etree.Element, error) {
	return operationResponseParts(body, OpSendMessage)
}

// operationResponseParts is responseParts for the response of operation op.
func operationResponseParts(body *etree.Element, op Operation) (ResponseInfo, *etree.Element, error) {
	var info ResponseInfo
	if !isBody(body) {
		return info, nil, siobroker.Errorf(siobroker.CodeNotSOAP, "not a SOAP 1.1 Body")
	}
	sm, err := singleChild(body)
	if err != nil {
		return info, nil, err
	}
	if sm.Tag == "Fault" && sm.NamespaceURI() == schemas.NSSoapEnv {
		return info, nil, faultError(sm)
	}
	if sm.Tag != op.Response || sm.NamespaceURI() != op.Space {
		return info, nil, siobroker.Errorf(siobroker.CodeNotSOAP, "the Body must hold %s, found %s", qname(op.Space, op.Response), describe(sm))
	}
	s, err := newSeq(sm, op.Response, "", "response")
	if err != nil {
		return info, nil, err
	}
	resp, err := s.req("response")
	if err != nil {
		return info, nil, err
	}
	if err := s.end(); err != nil {
		return info, nil, err
	}
	rs, err := newSeq(resp, "", "", "responseInfo", "responseData")
	if err != nil {
		return info, nil, err
	}
	rie, err := rs.req("responseInfo")
	if err != nil {
		return info, nil, err
	}
	if info, err = parseResponseInfo(rie); err != nil {
		return info, nil, err
	}
	rd, err := rs.req("responseData")
	if err != nil {
		return info, nil, err
	}
	if err := rs.end(); err != nil {
		return info, nil, err
	}
	data, err := dataChild(rd, "responseData")
	return info, data, err
}

func parseResponseInfo(el *etree.Element) (ResponseInfo, error) {
	var ri ResponseInfo
	const p = "responseInfo"
	s, err := newSeq(el, p, "", "messageId", "correlationId", "responseDate", "status", "sessionId")
	if err != nil {
		return ri, err
	}
	if ri.MessageID, err = reqString(s, "messageId", false); err != nil {
		return ri, err
	}
	if ri.CorrelationID, err = optString(s, "correlationId"); err != nil {
		return ri, err
	}
	d, err := reqString(s, "responseDate", false)
	if err != nil {
		return ri, err
	}
	if ri.ResponseDate, err = xsDateTime(p+"/responseDate", d); err != nil {
		return ri, err
	}
	st, err := s.req("status")
	if err != nil {
		return ri, err
	}
	ss, err := newSeq(st, p+"/status", "", "code", "message")
	if err != nil {
		return ri, err
	}
	if ri.StatusCode, err = reqString(ss, "code", false); err != nil {
		return ri, err
	}
	if ri.StatusMessage, err = reqString(ss, "message", false); err != nil {
		return ri, err
	}
	if err := ss.end(); err != nil {
		return ri, err
	}
	if ri.SessionID, err = optString(s, "sessionId"); err != nil {
		return ri, err
	}
	return ri, s.end()
}

func parseResult(el *etree.Element) (Result, error) {
	var r Result
	const p = "result"
	if el.Tag != "result" || el.NamespaceURI() != schemas.NSQuery {
		return r, siobroker.FieldError(p, "expected <result xmlns=%q>, found %s", schemas.NSQuery, describe(el))
	}
	if err := checkAttrs(el, p, "Id"); err != nil {
		return r, err
	}
	if err := idAttr(el, p); err != nil {
		return r, err
	}
	s, err := querySeq(el, p, "requestMessageId", "signerIin", "basis", "subject", "service")
	if err != nil {
		return r, err
	}
	e, err := s.req("requestMessageId")
	if err != nil {
		return r, err
	}
	if r.RequestMessageID, err = text(e, p+"/requestMessageId"); err != nil {
		return r, err
	}
	if e, err = s.req("signerIin"); err != nil {
		return r, err
	}
	if r.SignerIIN, err = text(e, p+"/signerIin"); err != nil {
		return r, err
	}
	if err := twelveDigits(p+"/signerIin", r.SignerIIN); err != nil {
		return r, err
	}
	if r.Basis, err = basisField(s); err != nil {
		return r, err
	}
	if r.Subject, err = subjectField(s); err != nil {
		return r, err
	}
	ses, err := s.many("service", 1, siobroker.MaxServicesPerQuery)
	if err != nil {
		return r, err
	}
	if err := s.end(); err != nil {
		return r, err
	}
	seen := make(map[int]bool, len(ses))
	for _, se := range ses {
		sr, err := parseServiceResult(se, p+"/service")
		if err != nil {
			return r, err
		}
		if seen[sr.Service] {
			return r, siobroker.FieldError(p+"/service/@no", "service %d is listed more than once", sr.Service)
		}
		seen[sr.Service] = true
		r.Services = append(r.Services, sr)
	}
	return r, nil
}

var resultStatuses = []string{
	string(siobroker.StatusOK), string(siobroker.StatusDenied), string(siobroker.StatusError), string(siobroker.StatusTimeout),
}

func parseServiceResult(el *etree.Element, p string) (siobroker.ServiceResult, error) {
	var sr siobroker.ServiceResult
	if err := checkAttrs(el, p, "no", "status", "reason"); err != nil {
		return sr, err
	}
	var err error
	attr := func(name string) (string, error) {
		a := el.SelectAttr(name)
		if a == nil {
			return "", siobroker.FieldError(p+"/@"+name, "is required")
		}
		return a.Value, nil
	}
	no, err := attr("no")
	if err != nil {
		return sr, err
	}
	if sr.Service, err = xsInt(p+"/@no", no, siobroker.FirstService, siobroker.LastService); err != nil {
		return sr, err
	}
	st, err := attr("status")
	if err != nil {
		return sr, err
	}
	if !contains(resultStatuses, st) {
		return sr, siobroker.FieldError(p+"/@status", "must be one of ok, denied, error, timeout, got %q", st)
	}
	sr.Status = siobroker.ResultStatus(st)
	if sr.Reason, err = attr("reason"); err != nil {
		return sr, err
	}
	if hasText(el) {
		return sr, siobroker.FieldError(p, "must hold elements only, found text")
	}
	s := &seq{path: p, ns: schemas.NSQuery, order: []string{"message", "record"}, kids: el.ChildElements()}
	if me := s.opt("message"); me != nil {
		if sr.Message, err = text(me, p+"/message"); err != nil {
			return sr, err
		}
	}
	recs, err := s.many("record", 0, 0)
	if err != nil {
		return sr, err
	}
	if err := s.end(); err != nil {
		return sr, err
	}
	for _, re := range recs {
		rec, err := parseRecord(re, p+"/record")
		if err != nil {
			return sr, err
		}
		sr.Records = append(sr.Records, rec)
	}
	return sr, nil
}

func parseRecord(el *etree.Element, p string) (siobroker.Record, error) {
	var rec siobroker.Record
	if err := checkAttrs(el, p, "type"); err != nil {
		return rec, err
	}
	a := el.SelectAttr("type")
	if a == nil {
		return rec, siobroker.FieldError(p+"/@type", "is required")
	}
	rec.Type = a.Value
	s := &seq{path: p, ns: schemas.NSQuery, order: []string{"field"}, kids: el.ChildElements()}
	if hasText(el) {
		return rec, siobroker.FieldError(p, "must hold elements only, found text")
	}
	fes, err := s.many("field", 0, 0)
	if err != nil {
		return rec, err
	}
	if err := s.end(); err != nil {
		return rec, err
	}
	for _, fe := range fes {
		fp := p + "/field"
		v, err := text(fe, fp, "name")
		if err != nil {
			return rec, err
		}
		na := fe.SelectAttr("name")
		if na == nil {
			return rec, siobroker.FieldError(fp+"/@name", "is required")
		}
		rec.Fields = append(rec.Fields, siobroker.Field{Name: na.Value, Value: v})
	}
	return rec, nil
}

// ParseResult validates and reads a q:result element on its own: the content an enveloped reply
// signature covers, which is all a client may trust in that placement.
func ParseResult(el *etree.Element) (Result, error) {
	return parseResult(el)
}
