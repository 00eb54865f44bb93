// Package dashboard is the operator's web dashboard, served by the broker under /dashboard/: charts
// of the requests, latency (p50/p99) and errors and timeouts of every service and in total over
// the last hour and day, from the history the dispatcher keeps (Config.History), the state of
// every service's route (the busy ones by default), the open and recent incidents and emergencies (§39–41, App. 7)
// with the actions past their maximum time, the dead-letter queue and the maintenance windows
// (§36, 42). The operator opens an emergency of Appendix 7 and records its actions' starts and
// ends, annotates and closes incidents, prints the journal of emergencies in the form of Appendix
// 7 (RegisterPath), replays dead letters and announces or cancels maintenance from it.
//
// It reads what the command line reads (the operations snapshot, the incident store, the
// dead-letter queue, the maintenance schedule), through the small interfaces of Config, so that
// the page and the CLI never disagree.
//
// Access is the operator's: an active user of the registry with the operator right
// (siobroker.User.OperatorRight). When Config.Reports is set, a user with the reports right (§10)
// gets a session too, in which the page shows the reports form and nothing of the operator's:
// every operator's endpoint refuses such a session, and the reports form refuses a session
// without the right (reports journals each use as the other channels do). A user is identified either
//
//   - by the TLS client certificate the connection was verified with (as a report by form at
//     /reports), or
//   - by a signed login: POST /dashboard/login takes a SendMessage signed by the operator whose
//     data is q:dashboardLogin (soap.NewDashboardLoginRequest), checked as every signed request is
//     (messageDate window, signature and chain, replay, the user registry), and answers a signed
//     q:dashboardTicket: the link of a one-time ticket, valid for TicketTTL. The replay marks of
//     logins are kept in Config.Replay, the store the journal uses, so a captured login is
//     refused after a restart and by every broker sharing that store.
//
// No GET changes anything. Opening the ticket link, or the page with a client certificate and no
// session, answers a form; its POST to SessionPath, carrying the form's CSRF token (matched
// against a cookie set with the form) from the dashboard's own origin, spends the ticket and sets
// a session cookie (HttpOnly, SameSite=Strict, Secure over TLS, Path=/dashboard) valid for
// SessionTTL. Sessions and tickets live in memory: a restart logs everyone out.
//
// The user is looked up in the registry again on every request, so a block or a withdrawn right
// takes effect at once. Actions are POSTs that carry the session's CSRF token; every login and
// every action, allowed or refused, is appended to the journal as a siobroker.JournalOperator
// record naming who did it. Refusals carry stable codes (SIO-DASHBOARD-*).
//
// The page is plain HTML, CSS and JavaScript embedded in the binary: no CDN, no web fonts, and a
// Content-Security-Policy of default-src 'self'. It polls the JSON endpoints under
// /dashboard/api/ every few seconds and shows every time in Astana time with its offset. Its
// charts are SVG the broker draws (ChartsPath), images of the page's own origin: no script
// draws them, and no charting library is shipped.
package dashboard

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/operator/replayguard"
	"github.com/sio-pso/siobroker/operator/reports"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// Paths of the dashboard. Mount the handler with mux.Handle(dashboard.Path, h).
const (
	Path      = "/dashboard/"
	LoginPath = "/dashboard/login"
	// SessionPath takes the POST of the form that opens a session (the ticket link, or a client
	// certificate, answers that form).
	SessionPath = "/dashboard/session"
	// ReportsPath takes the POST of the reports form of the page (§10), for holders of the
	// reports right: the report is the answer, streamed (reports.WriteReport).
	ReportsPath = "/dashboard/reports"

	// RegisterPath is the journal of emergencies in the form of Appendix 7, for the browser's
	// print (?format=csv: CSV; ?from= and ?to= bound the onsets).
	RegisterPath = "/dashboard/register"
)

// Defaults of Config.
const (
	DefaultTicketTTL         = 2 * time.Minute
	DefaultSessionTTL        = 8 * time.Hour
	DefaultMessageDateWindow = 5 * time.Minute
	// RecentIncidents is how long a closed incident, or an ended or cancelled maintenance window,
	// stays on the page.
	RecentIncidents = 7 * 24 * time.Hour
	// MaxDeadLetters is how many dead letters the page lists, and the most one replay sends.
	MaxDeadLetters = 100
)

// Incidents is the journal of emergencies: the store lists them, the tracker acts on them (so
// that it forgets a closed incident at once) and records who acted.
type Incidents interface {
	// Incidents returns the open incidents, or all of them when all is true.
	Incidents(ctx context.Context, all bool) ([]siobroker.Incident, error)
	AnnotateBy(ctx context.Context, by string, number int64, measures, responsible string) (siobroker.Incident, error)
	CloseBy(ctx context.Context, by string, number int64, note string) (siobroker.Incident, error)
	// RecordEmergencyBy opens an emergency of Appendix 7 with the actions of plan
	// (incidents.Service.RecordEmergency).
	RecordEmergencyBy(ctx context.Context, by string, e incidents.Emergency, plan []siobroker.IncidentAction) (siobroker.Incident, error)
	// RecordActionBy records the start (end false) or the end of action no of emergency number at
	// at (zero: now) (incidents.Service.RecordAction).
	RecordActionBy(ctx context.Context, by string, number int64, no int, end bool, at time.Time) (siobroker.Incident, error)
}

// DeadLetter is one message of the dead-letter queue.
type DeadLetter struct {
	MessageID   string
	Queue       string // the queue it died in, where a replay sends it back
	Reason      string // rejected, expired, delivery_limit, ...
	Count       int64  // how many times it died in that queue
	DiedAt      time.Time
	PayloadSize int
}

// DeadLetters is the transport's dead-letter queue.
type DeadLetters interface {
	// List returns up to max dead letters without removing them.
	List(ctx context.Context, max int) ([]DeadLetter, error)
	// Replay sends up to max dead letters back to the queues they died in and returns how many.
	Replay(ctx context.Context, max int) (int, error)
}

// Maintenance is the schedule of maintenance windows (§36, 42 of the Rules).
type Maintenance interface {
	Windows(ctx context.Context, includeEnded bool) ([]siobroker.MaintenanceWindow, error)
	Announce(ctx context.Context, w siobroker.MaintenanceWindow) (siobroker.MaintenanceWindow, error)
	Cancel(ctx context.Context, id int64, by string) error
}

// Applications reads the applications submitted to the operator (sqlite.DB).
type Applications interface {
	SubmittedApplications(ctx context.Context, pendingOnly bool) ([]siobroker.SubmittedApplication, error)
}

// Users is the user registry: whether the holder of an IIN may act now, and with which rights.
type Users interface {
	Authorize(ctx context.Context, iin string) (siobroker.User, error)
}

// Config holds the dashboard's data sources and settings. Services, Incidents, Users, Journal,
// Replay, Verify, Sign and Clock are required; zero durations take the defaults, negative ones are
// refused.
type Config struct {
	// Services returns the state of every service's route.
	Services  func(ctx context.Context) ([]health.ServiceState, error)
	Incidents Incidents
	// Plans are the action plans of the six kinds of emergency; nil when none are configured: the
	// page then says so and refuses to open an emergency.
	Plans *incidents.Plans
	// DeadLetters is nil when the transport has no dead-letter queue (the in-process GoChannel).
	DeadLetters DeadLetters
	// Maintenance is nil when no schedule of maintenance windows is available.
	Maintenance Maintenance
	// Applications are the applications submitted to the operator (§12–15); nil: none are shown.
	Applications Applications
	// ServiceInfo names each service (Appendix 2) and the adapter its route names, for the table;
	// nil: the table shows numbers only. It is called on every read, so it follows reloads.
	ServiceInfo func(service int) (name, adapter string)
	// History returns what the broker counted for service (0: every service together) over the
	// last hour in per-minute buckets, or over the last day in ten-minute buckets when day is
	// true, oldest first, ending with the bucket of now (routing.Dispatcher.History); the charts
	// draw it. Nil: the page has no charts.
	History func(service int, day bool) []Bucket
	// Traffic returns, for every service with any traffic in the last hour (or day), how much
	// (routing.Dispatcher.Traffic): the services table shows the busy services by default.
	Traffic func(day bool) map[int]uint64
	// QueuePrefix is the deployment's amqp.prefix, put before each queue's name so that the page
	// names the queue as RabbitMQ does.
	QueuePrefix string
	// IncidentThreshold is the delay of delivery that opens an incident (incidents.threshold; §39:
	// an hour), which the page names; zero: the Rules' hour.
	IncidentThreshold time.Duration
	// Reports, when set, gives the holders of the reports right (§10) a session of their own, in
	// which they run reports and nothing else (POST ReportsPath); nil: the dashboard is the
	// operator's alone.
	Reports *reports.Service
	Users   Users
	Journal siobroker.JournalWriter
	// Replay holds the replay marks of signed logins: the store the journal uses, so that a
	// captured login is refused after a restart and by every broker of the deployment.
	Replay siobroker.ReplayMarks

	// Verify checks the signature of a login (signing.Verifier.Verify); Sign signs the ticket
	// reply in the login's placement (signing.Signer.Sign).
	Verify func(ctx context.Context, doc *etree.Document, at time.Time) (*signing.Verified, error)
	Sign   func(doc *etree.Document, p signing.Placement) error
	// VerifyClientCert, when set, is applied to a TLS client certificate after the handshake
	// verified it: give it signing.TrustStore.VerifyChain so that the CRLs apply.
	VerifyClientCert func(cert *x509.Certificate, intermediates []*x509.Certificate, at time.Time) error
	// Limits bound the login envelope.
	Limits soap.Limits

	MessageDateWindow time.Duration // a login's messageDate and issuedAt within ± this; default 5 min
	TicketTTL         time.Duration // default 2 min
	SessionTTL        time.Duration // default 8 h

	Clock  siobroker.Clock
	Logger *slog.Logger // nil discards
}

func (c *Config) setDefaults() {
	if c.MessageDateWindow == 0 {
		c.MessageDateWindow = DefaultMessageDateWindow
	}
	if c.TicketTTL == 0 {
		c.TicketTTL = DefaultTicketTTL
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Limits = c.Limits.WithDefaults()
}

// Validate reports what is wrong with c once its defaults are applied: every required field
// that is missing, and every negative duration.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"Services", c.Services != nil},
		{"Incidents", c.Incidents != nil},
		{"Users", c.Users != nil},
		{"Journal", c.Journal != nil},
		{"Replay", c.Replay != nil},
		{"Verify", c.Verify != nil},
		{"Sign", c.Sign != nil},
		{"Clock", c.Clock != nil},
	} {
		if !f.set {
			errs = append(errs, fmt.Errorf("dashboard: Config.%s is required", f.name))
		}
	}
	for _, d := range []struct {
		name string
		val  time.Duration
	}{
		{"MessageDateWindow", c.MessageDateWindow},
		{"TicketTTL", c.TicketTTL},
		{"SessionTTL", c.SessionTTL},
	} {
		if d.val < 0 {
			errs = append(errs, fmt.Errorf("dashboard: Config.%s must not be negative, got %s", d.name, d.val))
		}
	}
	return errors.Join(errs...)
}

// New returns the dashboard's handler. It applies the defaults of cfg and returns an error
// naming every field of cfg that is missing or invalid.
func New(cfg Config) (http.Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &handler{
		cfg:      cfg,
		log:      cfg.Logger,
		sessions: newSessions(),
		replay:   replayguard.New(cfg.Replay, "dashboard-login"),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+LoginPath, h.login)
	mux.HandleFunc("POST "+SessionPath, h.openPost)
	mux.HandleFunc("GET "+Path+"{$}", h.page)
	mux.HandleFunc("GET "+Path+"static/{name}", h.static)
	mux.HandleFunc("POST "+Path+"logout", h.action("logout", h.logout))
	mux.HandleFunc("GET "+Path+"api/session", h.read(h.apiSession))
	mux.HandleFunc("GET "+Path+"api/services", h.read(operatorOnly(h.apiServices)))
	mux.HandleFunc("GET "+ChartsPath+"{name}", h.chart)
	mux.HandleFunc("GET "+Path+"api/incidents", h.read(operatorOnly(h.apiIncidents)))
	mux.HandleFunc("POST "+Path+"api/incidents/{number}/annotate", h.action("annotate", operatorAction(h.annotate)))
	mux.HandleFunc("POST "+Path+"api/incidents/{number}/close", h.action("close", operatorAction(h.closeIncident)))
	mux.HandleFunc("POST "+Path+"api/emergencies", h.action("open", operatorAction(h.openEmergency)))
	mux.HandleFunc("POST "+Path+"api/incidents/{number}/actions/{no}/{phase}", h.action("action", operatorAction(h.recordAction)))
	mux.HandleFunc("GET "+RegisterPath, h.register)
	mux.HandleFunc("GET "+Path+"api/deadletters", h.read(operatorOnly(h.apiDeadLetters)))
	mux.HandleFunc("POST "+Path+"api/deadletters/replay", h.action("replay", operatorAction(h.replayDeadLetters)))
	mux.HandleFunc("GET "+Path+"api/maintenance", h.read(operatorOnly(h.apiMaintenance)))
	mux.HandleFunc("GET "+Path+"api/applications", h.read(operatorOnly(h.apiApplications)))
	mux.HandleFunc("POST "+Path+"api/maintenance", h.action("announce", operatorAction(h.announce)))
	mux.HandleFunc("POST "+Path+"api/maintenance/{id}/cancel", h.action("cancel", operatorAction(h.cancel)))
	mux.HandleFunc("POST "+ReportsPath, h.report)
	mux.HandleFunc(Path, h.notFound)
	return securityHeaders(mux), nil
}

type handler struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessions
	replay   *replayguard.Guard
}

// securityHeaders sets the headers every answer of the dashboard carries: nothing from another
// origin runs or is framed, no answer is cached, and no Referer carries a ticket away.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("X-Frame-Options", "DENY")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// IncidentsOf is the Incidents of a tracker over its store: the store lists the incidents, and
// the tracker acts on them, so that it forgets a closed incident at once.
func IncidentsOf(t *incidents.Tracker, s incidents.Store) Incidents {
	return trackerIncidents{tracker: t, store: s}
}

type trackerIncidents struct {
	tracker *incidents.Tracker
	store   incidents.Store
}

func (ti trackerIncidents) Incidents(ctx context.Context, all bool) ([]siobroker.Incident, error) {
	return ti.store.Incidents(ctx, all)
}

func (ti trackerIncidents) AnnotateBy(ctx context.Context, by string, number int64, measures, responsible string) (siobroker.Incident, error) {
	return ti.tracker.AnnotateBy(ctx, by, number, measures, responsible)
}

func (ti trackerIncidents) CloseBy(ctx context.Context, by string, number int64, note string) (siobroker.Incident, error) {
	return ti.tracker.CloseBy(ctx, by, number, note)
}

func (ti trackerIncidents) RecordEmergencyBy(ctx context.Context, by string, e incidents.Emergency, plan []siobroker.IncidentAction) (siobroker.Incident, error) {
	return ti.tracker.RecordEmergencyBy(ctx, by, e, plan)
}

func (ti trackerIncidents) RecordActionBy(ctx context.Context, by string, number int64, no int, end bool, at time.Time) (siobroker.Incident, error) {
	return ti.tracker.RecordActionBy(ctx, by, number, no, end, at)
}
