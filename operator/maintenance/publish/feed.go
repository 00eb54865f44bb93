package publish

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// The feed's paths, on the broker's public listener.
const (
	FeedPrefix = "/maintenance/"               // mount Handler here
	JSONPath   = FeedPrefix + "windows.json"   // the schedule as JSON
	AtomPath   = FeedPrefix + "windows.atom"   // the schedule as an Atom feed (RFC 4287)
	atomNS     = "http://www.w3.org/2005/Atom" // the Atom namespace
	atomType   = "application/atom+xml; charset=utf-8"
)

// Handler serves the feed: GET JSONPath and GET AtomPath, each to the holder of a TLS client
// certificate of a registered user (see participant). A refusal is plain text "CODE: message"
// with its HTTP status and the code in X-SIO-Error-Code; a request without a certificate is
// refused before anything is read or written, and logged at debug level only, so that a flood of
// them makes neither the log nor the store its sink. Mount it with mux.Handle(FeedPrefix, h).
func (p *Publisher) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+JSONPath, func(w http.ResponseWriter, r *http.Request) { p.feed(w, r, p.writeJSON) })
	mux.HandleFunc("GET "+AtomPath, func(w http.ResponseWriter, r *http.Request) { p.feed(w, r, p.writeAtom) })
	mux.HandleFunc(JSONPath, p.method)
	mux.HandleFunc(AtomPath, p.method)
	mux.HandleFunc(FeedPrefix, func(w http.ResponseWriter, _ *http.Request) {
		plainError(w, siobroker.Errorf(siobroker.CodeMethod, "the schedule of maintenance windows is at %s and %s", JSONPath, AtomPath))
	})
	return mux
}

func (p *Publisher) method(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD")
	plainError(w, siobroker.Errorf(siobroker.CodeMethod, "method %s is not allowed; GET the schedule", r.Method))
}

// feed authenticates r and writes the schedule with write.
func (p *Publisher) feed(w http.ResponseWriter, r *http.Request, write func(http.ResponseWriter, []published, time.Time)) {
	ctx := r.Context()
	now := p.cfg.Clock.Now().In(siobroker.Astana)
	u, err := p.participant(r, now)
	if err != nil {
		if siobroker.ErrorCode(err) == siobroker.CodeWindowsDenied {
			p.log.DebugContext(ctx, "maintenance feed refused: no client certificate", "client", r.RemoteAddr)
		} else {
			p.log.InfoContext(ctx, "maintenance feed refused", "code", string(siobroker.ErrorCode(err)), "reason", siobroker.ErrorMessage(err))
		}
		plainError(w, err)
		return
	}
	list, err := p.schedule(ctx, now)
	if err != nil {
		p.log.ErrorContext(ctx, "maintenance feed failed", "error", err)
		plainError(w, err)
		return
	}
	p.log.DebugContext(ctx, "maintenance feed served", "signer_iin", u.IIN, "windows", len(list), "path", r.URL.Path)
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	// Each reader sees what its certificate lets it: no shared cache keeps a copy.
	hdr.Set("Cache-Control", "private, no-cache")
	write(w, list, now)
}

// jsonFeed is the JSON form of the schedule. It only ever gains fields.
type jsonFeed struct {
	AsOf string `json:"asOf"` // the broker's time of the answer
	// MinNotice is the least notice of a planned window, as an xs:duration (PT24H) and in seconds.
	MinNotice        string       `json:"minNotice"`
	MinNoticeSeconds int64        `json:"minNoticeSeconds"`
	Windows          []jsonWindow `json:"windows"`
}

type jsonWindow struct {
	ID          string `json:"id"`               // the stable identifier, as the Atom entry's
	Number      int64  `json:"number,omitempty"` // an announced window's; absent for the file's
	Source      string `json:"source"`           // announced or file
	Services    []int  `json:"services"`         // empty: every service
	Start       string `json:"start"`
	End         string `json:"end"`
	Reason      string `json:"reason"`
	AnnouncedAt string `json:"announcedAt"`
	Emergency   bool   `json:"emergency"`
	Cancelled   string `json:"cancelled,omitempty"`
	State       string `json:"state"` // announced, in force, ended or cancelled
}

func (p *Publisher) writeJSON(w http.ResponseWriter, list []published, now time.Time) {
	minNotice := p.cfg.Schedule.MinNotice()
	f := jsonFeed{AsOf: siobroker.FormatTime(now), MinNotice: soap.XSDuration(minNotice), MinNoticeSeconds: int64(minNotice / time.Second),
		Windows: []jsonWindow{}}
	for _, pw := range list {
		e := pw.entry
		jw := jsonWindow{ID: p.windowID(pw.window), Number: e.Number, Source: pw.window.Source, Services: e.Services,
			Start: siobroker.FormatTime(e.Start), End: siobroker.FormatTime(e.End), Reason: e.Reason,
			AnnouncedAt: siobroker.FormatTime(e.AnnouncedAt), Emergency: e.Emergency, State: e.State}
		if jw.Services == nil {
			jw.Services = []int{}
		}
		if !e.Cancelled.IsZero() {
			jw.Cancelled = siobroker.FormatTime(e.Cancelled)
		}
		f.Windows = append(f.Windows, jw)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(f) // the client went away: nothing to do
}

// The Atom feed (RFC 4287): the elements it requires (feed: id, title, updated, and an author
// where the entries have none; entry: id, title, updated) and the links it recommends.
type atomFeed struct {
	XMLName  xml.Name    `xml:"feed"`
	NS       string      `xml:"xmlns,attr"`
	Lang     string      `xml:"xml:lang,attr"`
	ID       string      `xml:"id"`
	Title    atomText    `xml:"title"`
	Subtitle atomText    `xml:"subtitle"`
	Updated  string      `xml:"updated"`
	Author   atomPerson  `xml:"author"`
	Links    []atomLink  `xml:"link"`
	Entries  []atomEntry `xml:"entry"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomCategory struct {
	Term   string `xml:"term,attr"`
	Scheme string `xml:"scheme,attr"`
}

type atomEntry struct {
	ID         string         `xml:"id"`
	Title      atomText       `xml:"title"`
	Updated    string         `xml:"updated"`
	Published  string         `xml:"published"`
	Categories []atomCategory `xml:"category"`
	Summary    atomText       `xml:"summary"`
}

// categoryScheme names the categories of an entry: its kind (planned or emergency) and its state.
const categoryScheme = "urn:kz:sio-pso:broker:maintenance"

func (p *Publisher) writeAtom(w http.ResponseWriter, list []published, now time.Time) {
	self := p.cfg.PublicURL + AtomPath
	f := atomFeed{NS: atomNS, Lang: "ru", ID: self,
		Title: atomText{Type: "text", Text: "СИО ПСО: maintenance windows (§36, 42)"},
		Subtitle: atomText{Type: "text", Text: fmt.Sprintf("Planned works are announced at least %s ahead; a window with less notice, or begun, is an emergency, recorded in the journal of emergencies (§39–41). Times are Astana time (UTC+05:00).",
			p.cfg.Schedule.MinNotice())},
		Author: atomPerson{Name: "СИО ПСО operator (КПСиСУ)"},
		Links: []atomLink{{Rel: "self", Type: "application/atom+xml", Href: self},
			{Rel: "alternate", Type: "application/json", Href: p.cfg.PublicURL + JSONPath}},
	}
	var updated time.Time
	for _, pw := range list {
		e := pw.entry
		changed := e.AnnouncedAt
		if !e.Cancelled.IsZero() {
			changed = e.Cancelled
		}
		updated = later(updated, changed)
		kind := "planned"
		if e.Emergency {
			kind = "emergency"
		}
		f.Entries = append(f.Entries, atomEntry{
			ID:        p.windowID(pw.window),
			Title:     atomText{Type: "text", Text: entryTitle(pw.window, e)},
			Updated:   siobroker.FormatTime(changed),
			Published: siobroker.FormatTime(e.AnnouncedAt),
			Categories: []atomCategory{{Term: kind, Scheme: categoryScheme + ":kind"},
				{Term: e.State, Scheme: categoryScheme + ":state"}},
			Summary: atomText{Type: "text", Text: entrySummary(pw.window, e)},
		})
	}
	if updated.IsZero() {
		// An empty schedule changes when it is read: nothing older can be said of it.
		updated = now
	}
	f.Updated = siobroker.FormatTime(updated)
	w.Header().Set("Content-Type", atomType)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(f) // the client went away: nothing to do
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// entryTitle names a window in a line: whether it is cancelled, its kind and number, period,
// reason and services.
func entryTitle(w siobroker.MaintenanceWindow, e soap.WindowEntry) string {
	d := w.Describe()
	t := strings.ToUpper(d[:1]) + d[1:] + ", " + servicesText(e.Services)
	if e.State == soap.WindowCancelled {
		return "Cancelled: " + t
	}
	return t
}

// entrySummary says what a participant needs: the period, the services, the reason, when it was
// announced, whether it is an emergency, and where it stands.
func entrySummary(w siobroker.MaintenanceWindow, e soap.WindowEntry) string {
	s := fmt.Sprintf("%s; %s; announced %s; %s.", w.Describe(), servicesText(e.Services), e.AnnouncedAt.Format(time.RFC3339), e.State)
	if !e.Cancelled.IsZero() {
		s += " Cancelled " + e.Cancelled.Format(time.RFC3339) + "."
	}
	if e.Emergency {
		s += " An emergency: announced with less than the minimum notice, or after it began (§39–41)."
	}
	return s
}

func servicesText(services []int) string {
	if len(services) == 0 {
		return "every service"
	}
	return "services " + strings.ReplaceAll(siobroker.MaintenanceWindow{Services: services}.ServiceList(), ",", ", ")
}

// plainError answers "CODE: message" as plain text, with the code's HTTP status.
func plainError(w http.ResponseWriter, err error) {
	code := siobroker.ErrorCode(err)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-SIO-Error-Code", string(code))
	w.WriteHeader(siobroker.HTTPStatus(code))
	_, _ = fmt.Fprintf(w, "%s: %s\n", code, siobroker.ErrorMessage(err))
}
