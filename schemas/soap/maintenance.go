package soap

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// The schedule of maintenance windows (§36, 42 of the Rules) is asked with the operation
// GetMaintenanceWindows of the SyncChannel endpoint (OpGetMaintenanceWindows): the same request
// as SendMessage, signed in either placement, in op:GetMaintenanceWindows, whose requestData/data
// holds q:maintenanceQuery; the reply, op:GetMaintenanceWindowsResponse, holds
// q:maintenanceWindows. The types are in sio-operations-v1.xsd and sio-query-v1.xsd.
//
// q:maintenanceQuery carries its own issuedAt, as q:dashboardLogin does: in the enveloped
// placement requestInfo (and with it messageDate) is outside the signature.

// MaintenanceQuery is a q:maintenanceQuery.
type MaintenanceQuery struct {
	IssuedAt time.Time // when the query was signed; the broker accepts it only within its window
}

// MaintenanceWindows is the q:maintenanceWindows of a reply.
type MaintenanceWindows struct {
	RequestMessageID string        // the messageId of the query it answers
	AsOf             time.Time     // the broker's time of the answer
	MinNotice        time.Duration // the least notice of a planned window (maintenance_min_notice)
	Windows          []WindowEntry
}

// WindowEntry is one q:window.
type WindowEntry struct {
	Number      int64 // of an announced window; 0 for one of the configuration file
	Services    []int // none: every service
	Start, End  time.Time
	Reason      string
	AnnouncedAt time.Time
	Emergency   bool
	Cancelled   time.Time // zero while in force
	State       string    // WindowAnnounced, WindowInForce, WindowEnded or WindowCancelled
}

// The states of a window.
const (
	WindowAnnounced = "announced"
	WindowInForce   = "in force"
	WindowEnded     = "ended"
	WindowCancelled = "cancelled"
)

// NewMaintenanceQueryRequest builds an unsigned op:GetMaintenanceWindows envelope carrying
// q:maintenanceQuery, issued at info.MessageDate.
func NewMaintenanceQueryRequest(info siobroker.RequestInfo) *etree.Document {
	doc, data := newOperationRequestData(info, OpGetMaintenanceWindows)
	qe := data.CreateElement(prefixQ + ":maintenanceQuery")
	qe.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	qe.CreateAttr("Id", "id-mq-"+idPart(info.MessageID))
	leaf(qe, prefixQ+":issuedAt", siobroker.FormatTime(info.MessageDate))
	return doc
}

// ParseMaintenanceQuery validates a q:maintenanceQuery element (the one the signature verifier
// returned, or the one in the signed Body) against sio-query-v1.xsd and returns it.
func ParseMaintenanceQuery(el *etree.Element) (MaintenanceQuery, error) {
	var q MaintenanceQuery
	const p = "maintenanceQuery"
	if err := rootElement(el, p); err != nil {
		return q, err
	}
	s, err := querySeq(el, p, "issuedAt")
	if err != nil {
		return q, err
	}
	if q.IssuedAt, err = reqDateTime(s, "issuedAt"); err != nil {
		return q, err
	}
	return q, s.end()
}

// NewMaintenanceWindowsResponse builds an unsigned op:GetMaintenanceWindowsResponse envelope
// around q:maintenanceWindows.
func NewMaintenanceWindowsResponse(info ResponseInfo, m MaintenanceWindows) *etree.Document {
	doc, data := newOperationResponseData(info, OpGetMaintenanceWindows)
	me := data.CreateElement(prefixQ + ":maintenanceWindows")
	me.CreateAttr("xmlns:"+prefixQ, schemas.NSQuery)
	me.CreateAttr("Id", "id-mw-"+idPart(info.MessageID))
	leaf(me, prefixQ+":requestMessageId", m.RequestMessageID)
	leaf(me, prefixQ+":asOf", siobroker.FormatTime(m.AsOf))
	leaf(me, prefixQ+":minNotice", XSDuration(m.MinNotice))
	for _, w := range m.Windows {
		we := me.CreateElement(prefixQ + ":window")
		if w.Number > 0 {
			leaf(we, prefixQ+":number", strconv.FormatInt(w.Number, 10))
		}
		for _, n := range w.Services {
			leaf(we, prefixQ+":service", strconv.Itoa(n))
		}
		leaf(we, prefixQ+":start", siobroker.FormatTime(w.Start))
		leaf(we, prefixQ+":end", siobroker.FormatTime(w.End))
		leaf(we, prefixQ+":reason", w.Reason)
		leaf(we, prefixQ+":announcedAt", siobroker.FormatTime(w.AnnouncedAt))
		leaf(we, prefixQ+":emergency", strconv.FormatBool(w.Emergency))
		if !w.Cancelled.IsZero() {
			leaf(we, prefixQ+":cancelled", siobroker.FormatTime(w.Cancelled))
		}
		leaf(we, prefixQ+":state", w.State)
	}
	return doc
}

// ParseMaintenanceWindowsResponse reads an op:GetMaintenanceWindowsResponse from a Body. A Body
// holding a soapenv:Fault gives the fault's error. In the enveloped placement only
// q:maintenanceWindows is signed; the client reads that with ParseMaintenanceWindows.
func ParseMaintenanceWindowsResponse(body *etree.Element) (ResponseInfo, MaintenanceWindows, error) {
	info, data, err := operationResponseParts(body, OpGetMaintenanceWindows)
	if err != nil {
		return info, MaintenanceWindows{}, err
	}
	m, err := ParseMaintenanceWindows(data)
	return info, m, err
}

// ParseMaintenanceWindows validates and reads a q:maintenanceWindows element on its own.
func ParseMaintenanceWindows(el *etree.Element) (MaintenanceWindows, error) {
	var m MaintenanceWindows
	const p = "maintenanceWindows"
	if err := rootElement(el, p); err != nil {
		return m, err
	}
	s, err := querySeq(el, p, "requestMessageId", "asOf", "minNotice", "window")
	if err != nil {
		return m, err
	}
	if m.RequestMessageID, err = reqText(s, "requestMessageId"); err != nil {
		return m, err
	}
	if m.AsOf, err = reqDateTime(s, "asOf"); err != nil {
		return m, err
	}
	d, err := reqText(s, "minNotice")
	if err != nil {
		return m, err
	}
	if m.MinNotice, err = parseXSDuration(s.child("minNotice"), d); err != nil {
		return m, err
	}
	windows, err := s.many("window", 0, 0)
	if err != nil {
		return m, err
	}
	for i, we := range windows {
		w, err := parseWindowEntry(we, fmt.Sprintf("%s/window[%d]", p, i+1))
		if err != nil {
			return m, err
		}
		m.Windows = append(m.Windows, w)
	}
	return m, s.end()
}

func parseWindowEntry(el *etree.Element, p string) (WindowEntry, error) {
	var w WindowEntry
	s, err := newSeq(el, p, schemas.NSQuery, "number", "service", "start", "end", "reason", "announcedAt", "emergency", "cancelled", "state")
	if err != nil {
		return w, err
	}
	if e := s.opt("number"); e != nil {
		v, err := text(e, s.child("number"))
		if err != nil {
			return w, err
		}
		if w.Number, err = strconv.ParseInt(v, 10, 64); err != nil || w.Number < 1 {
			return w, siobroker.FieldError(s.child("number"), "must be a positive integer, got %q", v)
		}
	}
	services, err := s.many("service", 0, siobroker.LastService)
	if err != nil {
		return w, err
	}
	for _, e := range services {
		v, err := text(e, s.child("service"))
		if err != nil {
			return w, err
		}
		n, err := xsInt(s.child("service"), v, siobroker.FirstService, siobroker.LastService)
		if err != nil {
			return w, err
		}
		w.Services = append(w.Services, n)
	}
	if w.Start, err = reqDateTime(s, "start"); err != nil {
		return w, err
	}
	if w.End, err = reqDateTime(s, "end"); err != nil {
		return w, err
	}
	if w.Reason, err = reqText(s, "reason"); err != nil {
		return w, err
	}
	if w.AnnouncedAt, err = reqDateTime(s, "announcedAt"); err != nil {
		return w, err
	}
	b, err := reqText(s, "emergency")
	if err != nil {
		return w, err
	}
	switch b {
	case "true", "1":
		w.Emergency = true
	case "false", "0":
	default:
		return w, siobroker.FieldError(s.child("emergency"), "must be true or false, got %q", b)
	}
	if s.peekIs("cancelled") {
		if w.Cancelled, err = reqDateTime(s, "cancelled"); err != nil {
			return w, err
		}
	}
	if w.State, err = reqText(s, "state"); err != nil {
		return w, err
	}
	if !contains([]string{WindowAnnounced, WindowInForce, WindowEnded, WindowCancelled}, w.State) {
		return w, siobroker.FieldError(s.child("state"), "must be announced, in force, ended or cancelled, got %q", w.State)
	}
	return w, s.end()
}

// reqText reads the text of the required child name of s.
func reqText(s *seq, name string) (string, error) {
	e, err := s.req(name)
	if err != nil {
		return "", err
	}
	return text(e, s.child(name))
}

// reqDateTime reads the required child name of s as an xs:dateTime with its offset.
func reqDateTime(s *seq, name string) (time.Time, error) {
	v, err := reqText(s, name)
	if err != nil {
		return time.Time{}, err
	}
	return xsDateTime(s.child(name), v)
}

// XSDuration writes d as an xs:duration of hours, minutes and seconds, e.g. PT24H; the broker
// writes only whole seconds.
func XSDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d <= 0 {
		return "PT0S"
	}
	h, m, sec := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	var b strings.Builder
	b.WriteString("PT")
	for _, part := range []struct {
		n    int64
		unit string
	}{{h, "H"}, {m, "M"}, {sec, "S"}} {
		if part.n > 0 {
			b.WriteString(strconv.FormatInt(part.n, 10) + part.unit)
		}
	}
	return b.String()
}

// reDuration is the xs:duration XSDuration writes, with days allowed: years and months have no
// fixed length and are not.
var reDuration = regexp.MustCompile(`^P(?:(\d{1,6})D)?(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9})S)?)?$`)

func parseXSDuration(path, raw string) (time.Duration, error) {
	m := reDuration.FindStringSubmatch(raw)
	if m == nil || raw == "P" || strings.HasSuffix(raw, "T") {
		return 0, siobroker.FieldError(path, "must be an xs:duration of days, hours, minutes and seconds, e.g. PT24H, got %q", raw)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			n, _ := strconv.ParseInt(m[i+1], 10, 64) // the pattern allows digits only
			d += time.Duration(n) * unit
		}
	}
	return d, nil
}
