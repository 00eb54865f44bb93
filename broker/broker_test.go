package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/cases"
	"github.com/sio-pso/siobroker/access/rights"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/internal/ratelimit"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

// The development PKI and the rights table are built once for the package.
var (
	pkiNow       time.Time
	manifest     *devpki.Manifest // the demo users, their roles and cases
	userSigner   *signing.Signer  // a valid RSA user
	ecdsaSigner  *signing.Signer  // a valid ECDSA user
	brokerSigner *signing.Signer
	trust        *signing.TrustStore
	table        *rights.Table
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "broker-test-pki-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	pkiNow = time.Now()
	man, err := devpki.Generate(dir, pkiNow)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devpki:", err)
		return 1
	}
	manifest = man
	for _, u := range man.Users {
		if u.Status != devpki.StatusValid {
			continue
		}
		s, err := signing.LoadSigner(filepath.Join(dir, u.Cert), filepath.Join(dir, u.Key))
		if err != nil {
			fmt.Fprintln(os.Stderr, "user signer:", err)
			return 1
		}
		switch {
		case u.KeyType == devpki.KeyRSA && userSigner == nil:
			userSigner = s
		case u.KeyType == devpki.KeyECDSA && ecdsaSigner == nil:
			ecdsaSigner = s
		}
	}
	if userSigner == nil || ecdsaSigner == nil {
		fmt.Fprintln(os.Stderr, "devpki has no valid RSA and ECDSA users")
		return 1
	}
	if brokerSigner, err = signing.LoadSigner(filepath.Join(dir, man.BrokerCert), filepath.Join(dir, man.BrokerKey)); err != nil {
		fmt.Fprintln(os.Stderr, "broker signer:", err)
		return 1
	}
	if trust, err = signing.LoadTrustStore(signing.TrustConfig{
		RootFiles: []string{filepath.Join(dir, man.CA)},
		CRLFiles:  []string{filepath.Join(dir, man.CRL)},
	}); err != nil {
		fmt.Fprintln(os.Stderr, "trust store:", err)
		return 1
	}
	if table, err = rights.Load("../configs/rights.yaml"); err != nil {
		fmt.Fprintln(os.Stderr, "rights:", err)
		return 1
	}
	return m.Run()
}

type failingReplay struct{}

func (failingReplay) MarkRequest(context.Context, siobroker.ReplayMark) (bool, bool, error) {
	return false, false, errors.New("sqlite: database is locked (/srv/data/broker.db)")
}

func (failingReplay) Release(context.Context, string, string) error { return nil }

func (failingReplay) Admissions(context.Context, time.Time) ([]siobroker.ReplayMark, error) {
	return nil, nil
}

func (failingReplay) EndAdmission(context.Context, string) error { return nil }

// userOf returns the demo user of the manifest whom signer's certificate names.
func userOf(t *testing.T, signer *signing.Signer) devpki.User {
	t.Helper()
	for _, u := range manifest.Users {
		if u.IIN == signer.IIN() {
			return u
		}
	}
	t.Fatalf("no demo user with IIN %s", signer.IIN())
	return devpki.User{}
}

// caseFor returns the first demo case of user under basis b: a case in the user's proceedings,
// which the demo case registry confirms.
func caseFor(t *testing.T, user devpki.User, b siobroker.Basis) siobroker.CaseRef {
	t.Helper()
	for _, c := range user.Cases {
		if c.Basis == b {
			return c.Ref()
		}
	}
	t.Fatalf("demo user %s (role %d) has no case under basis %d", user.IIN, user.Role, b)
	return siobroker.CaseRef{}
}

// countingRegistry counts the case checks that reach a case registry.
type countingRegistry struct {
	inner adapters.CaseRegistry
	n     *atomic.Int32
}

func (c countingRegistry) Check(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
	c.n.Add(1)
	return c.inner.Check(ctx, req)
}

// silentRegistry never answers: it waits until the check's deadline, and the runtime then sends
// nothing back.
type silentRegistry struct{}

func (silentRegistry) Check(ctx context.Context, _ schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
	<-ctx.Done()
	return schemas.CaseCheckResponse{}, ctx.Err()
}

const (
	validIIN    = "820605401173" // the subject asked about
	slowService = 12             // blocks until the end of the test; its timeout is 50ms
	failService = 13             // the source system fails
	noDataFor   = 14             // the source finds nothing (NO_DATA)
)

type harness struct {
	stop       func() // closes the transport and the store; also run at the end of the test
	broker     *Broker
	dispatcher *routing.Dispatcher
	clock      *testclock.Clock
	calls      map[int]*atomic.Int32
	db         *sqlite.DB
	users      *users.Registry
	checks     map[string]*atomic.Int32 // case checks per case registry name
}

// called returns how many times the backend of service n was asked.
func (h *harness) called(n int) int32 { return h.calls[n].Load() }

// checked returns how many case checks reached every case registry together.
func (h *harness) checked() int32 {
	var n int32
	for _, c := range h.checks {
		n += c.Load()
	}
	return n
}

// user returns the registry's record of the user with the IIN.
func (h *harness) user(t *testing.T, iin string) siobroker.User {
	t.Helper()
	u, ok, err := h.db.User(context.Background(), iin)
	if err != nil || !ok {
		t.Fatalf("user %s: ok %v, err %v", iin, ok, err)
	}
	return u
}

// apply applies an operator's application to the registry.
func (h *harness) apply(t *testing.T, a siobroker.Application) siobroker.User {
	t.Helper()
	if a.Reason == "" {
		a.Reason = "unit test"
	}
	if a.By == "" {
		a.By = "operator"
	}
	u, err := h.users.Apply(context.Background(), a)
	if err != nil {
		t.Fatalf("apply %s %s: %v", a.Kind, a.IIN, err)
	}
	return u
}

// harnessOpts vary the real collaborators of newHarnessWith.
type harnessOpts struct {
	replay       ReplayGuard                             // nil: the store
	seed         func(devpki.User) bool                  // which demo users to register; nil: all
	checkTimeout time.Duration                           // cases.check_timeout; 0: the default
	caseRegistry func(name string) adapters.CaseRegistry // nil: the demo registry of the manifest's cases
	dir          string                                  // the store's data directory; "": a new one
	idPrefix     string                                  // the broker's ids; "": "broker"
	asyncTimeout time.Duration                           // Config.AsyncTimeout; 0: no waiting for late services
	slowAnswers  bool                                    // slowService answers after 300ms instead of never
	journalLate  bool                                    // journal late answers, as serve does
	observeStage func(Stage, time.Duration)              // Deps.ObserveStage
	// journal wraps the store's journal as Deps.Journal (a journal that fails on demand); nil:
	// the store's.
	journal func(siobroker.Journal) siobroker.Journal
	// wrapReplay wraps the store's replay guard (one that fails on demand); nil: the store's.
	wrapReplay func(ReplayGuard) ReplayGuard
	// transportReady is Deps.TransportReady; nil: always ready.
	transportReady func() error
	// store are the store's options (its write timeout); zero: the defaults.
	store sqlite.Options
	// unauthenticated is Config.Unauthenticated; zero: the defaults.
	unauthenticated UnauthenticatedLimits
	// observeUnauthenticated is Deps.ObserveUnauthenticated.
	observeUnauthenticated func(siobroker.Code, bool)
	// perSigner is Config.PerSigner; zero: no limit.
	perSigner ratelimit.Limits
	// serviceTimeout is every service's time limit but slowService's; 0: 2 s.
	serviceTimeout time.Duration
	// observeSignerLimited is Deps.ObserveSignerLimited.
	observeSignerLimited func(ratelimit.Scope)
	// answers wraps the store as the dispatcher's AnswerStore; nil: the store.
	answers func(routing.AnswerStore) routing.AnswerStore
	// wrapDispatcher wraps the dispatcher as Deps.Dispatcher (one that holds requests in flight
	// on demand); nil: the dispatcher itself.
	wrapDispatcher func(Dispatcher) Dispatcher
	// maintenance is Deps.Maintenance; nil: none.
	maintenance Maintenance
	// separateCommits leaves Deps.Together unset: each write commits alone, as with a
	// PostgreSQL journal. Otherwise, where the replay marks are the store's, the store commits
	// a request's consecutive writes together, as serve wires the embedded store.
	separateCommits bool
}

// backendServices are the services with a test backend: the others have no adapter, so a request
// for them would time out.
var backendServices = []int{1, 2, 5, 11, slowService, failService, noDataFor, 37, 38, 93}

func newHarness(t *testing.T, replay ReplayGuard) *harness {
	t.Helper()
	return newHarnessWith(t, harnessOpts{replay: replay})
}

// newHarnessWith wires the broker as serve does: the user registry over the store, seeded with the
// demo users; the case rules of the default configuration; a demo case registry per configured
// registry name on the same transport as the adapters.
func newHarnessWith(t *testing.T, opts harnessOpts) *harness {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := testclock.New(time.Now().In(siobroker.Astana).Truncate(time.Millisecond))
	h := &harness{clock: clock, calls: map[int]*atomic.Int32{}, checks: map[string]*atomic.Int32{}}

	dir := opts.dir
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := sqlite.OpenWith(context.Background(), dir, opts.store)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	h.db = db
	replay := opts.replay
	if replay == nil {
		replay = db
	}
	if opts.wrapReplay != nil {
		replay = opts.wrapReplay(replay)
	}
	h.users = users.New(db, clock, logger)
	seeded := *manifest
	seeded.Users = slices.DeleteFunc(slices.Clone(manifest.Users), func(u devpki.User) bool {
		return opts.seed != nil && !opts.seed(u)
	})
	if err := h.users.RegisterMissing(context.Background(), seeded.Registrations(clock.Now())); err != nil {
		t.Fatalf("RegisterMissing: %v", err)
	}
	casesCfg := cases.DefaultConfig()
	if opts.checkTimeout > 0 {
		casesCfg.CheckTimeout = opts.checkTimeout
	}
	caseRules, err := cases.NewRules(casesCfg, clock)
	if err != nil {
		t.Fatalf("cases.NewRules: %v", err)
	}

	release := make(chan struct{})
	backends := map[int]adapters.Backend{}
	for _, n := range backendServices {
		counter := &atomic.Int32{}
		h.calls[n] = counter
		backends[n] = adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			counter.Add(1)
			switch n {
			case slowService:
				if !opts.slowAnswers {
					<-release
					return siobroker.ServiceResult{}, nil
				}
				select {
				case <-time.After(300 * time.Millisecond):
				case <-release:
					return siobroker.ServiceResult{}, nil
				}
			case failService:
				return siobroker.ServiceResult{}, errors.New("ORA-12541: no listener at gcvp-db.internal")
			case noDataFor:
				return siobroker.ServiceResult{}, nil
			}
			fields := []siobroker.Field{
				{Name: "service", Value: fmt.Sprint(req.Service)},
				{Name: "iin", Value: req.Subject.IIN},
			}
			if n == 11 {
				fields = append(fields, siobroker.Field{Name: "employer", Value: "ТОО Пример"}, siobroker.Field{Name: "amount", Value: "125000"})
			}
			return siobroker.ServiceResult{Records: []siobroker.Record{
				{Type: "row", Fields: fields},
				{Type: "row", Fields: slices.Clone(fields)},
			}}, nil
		})
	}

	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 64}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 2 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	// The dispatcher uses the wall clock: the deadline it sends is enforced with context.WithDeadline
	// on the wall clock (see the report on Dispatch's deadline); the broker itself uses the movable one.
	// As serve wires it: every answer is kept in the store before it is acknowledged.
	var journal siobroker.Journal = db.Journal()
	if opts.journal != nil {
		journal = opts.journal(journal)
	}
	dcfg := routing.DispatcherConfig{Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter), RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter), Publisher: pubsub, ReplyTopic: routing.ReplyTopicPrefix + watermill.NewUUID(),
		Clock: siobroker.SystemClock{}, Logger: logger, Answers: db}
	if opts.answers != nil {
		dcfg.Answers = opts.answers(db)
	}
	var late *LateAnswers
	if opts.journalLate {
		late, err = NewLateAnswers(LateConfig{}, LateDeps{Journal: journal, Answers: db, Jobs: db, Requests: journal, Rights: table, Clock: clock, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		dcfg.OnLateAnswer = late.Record
	}
	dispatcher, err := routing.NewDispatcher(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	dispatcher.AddHandlers(router, pubsub)
	h.dispatcher = dispatcher
	rt, err := routing.NewAdapterRuntime(routing.AdapterConfig{Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter), Name: "test", Backends: backends, Publisher: pubsub,
		Clock: siobroker.SystemClock{}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	rt.AddHandlers(router, pubsub)
	// One case registry per configured name, as serve starts them; basis 3 names none.
	for b := siobroker.FirstBasis; b <= siobroker.LastBasis; b++ {
		name, ok := caseRules.Registry(b)
		if !ok {
			if !cases.Exempt(b) {
				t.Fatalf("basis %d has no case registry in the default configuration", b)
			}
			continue
		}
		if h.checks[name] != nil {
			continue
		}
		var reg adapters.CaseRegistry = demo.NewCaseRegistry(name, demo.CasesOf(manifest.Users))
		if opts.caseRegistry != nil {
			reg = opts.caseRegistry(name)
		}
		h.checks[name] = &atomic.Int32{}
		rr, err := routing.NewRegistryRuntime(routing.RegistryConfig{Name: name, Registry: countingRegistry{reg, h.checks[name]},
			Publisher: pubsub, Clock: siobroker.SystemClock{}, Logger: logger, Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter)})
		if err != nil {
			t.Fatal(err)
		}
		rr.AddHandlers(router, pubsub)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = router.Run(ctx)
	}()
	var stopOnce sync.Once
	h.stop = func() {
		stopOnce.Do(func() {
			if h.broker != nil {
				h.broker.Shutdown() // its background waits and retries end before the store closes
			}
			close(release)
			cancel()
			_ = router.Close()
			_ = pubsub.Close()
			<-done
			_ = db.Close()
		})
	}
	t.Cleanup(h.stop)
	select {
	case <-router.Running():
	case <-time.After(5 * time.Second):
		t.Fatal("router did not start")
	}

	var ids atomic.Int64
	idPrefix := opts.idPrefix
	if idPrefix == "" {
		idPrefix = "broker"
	}
	deps := Deps{
		Verifier:       mustVerifier(t, signing.VerifierConfig{Trust: trust}),
		Signer:         brokerSigner.WithClock(clock),
		Replay:         replay,
		Dispatcher:     dispatcher,
		Rights:         table,
		Users:          h.users,
		Cases:          caseRules,
		Registry:       dispatcher,
		Journal:        journal,
		Clock:          clock,
		Logger:         logger,
		NewID:          func() string { return fmt.Sprintf("%s-%d", idPrefix, ids.Add(1)) },
		Async:          db,
		Answers:        db,
		ObserveStage:   opts.observeStage,
		TransportReady: opts.transportReady,

		ObserveUnauthenticated: opts.observeUnauthenticated,
		ObserveSignerLimited:   opts.observeSignerLimited,
		Maintenance:            opts.maintenance,
	}
	if late != nil {
		deps.Late = late.Record
	}
	if opts.replay == nil && !opts.separateCommits {
		deps.Together = db
	}
	if opts.wrapDispatcher != nil {
		deps.Dispatcher = opts.wrapDispatcher(deps.Dispatcher)
	}
	b, err := New(Config{
		ReplayWindow: 5 * time.Minute,
		Timeout: func(n int) time.Duration {
			if n == slowService {
				return 50 * time.Millisecond
			}
			if opts.serviceTimeout > 0 {
				return opts.serviceTimeout
			}
			return 2 * time.Second
		},
		AsyncTimeout:    opts.asyncTimeout,
		Unauthenticated: opts.unauthenticated,
		PerSigner:       opts.perSigner,
	}, deps)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	// As serve starts a broker: what a broker before this one left on the store's delivery is
	// its worker's to complete (a new store has nothing).
	if _, err := b.ResumeEarlierRun(context.Background()); err != nil {
		t.Fatalf("ResumeEarlierRun: %v", err)
	}
	h.broker = b
	return h
}

type reqSpec struct {
	messageID string
	skew      time.Duration // messageDate = clock + skew
	placement signing.Placement
	signer    *signing.Signer
	basis     siobroker.Basis
	caseRef   siobroker.CaseRef // zero: caseFor the signer under basis
	article   string
	subject   siobroker.Subject
	services  []int
}

var msgSeq atomic.Int64

func (h *harness) build(t *testing.T, s reqSpec) ([]byte, siobroker.RequestInfo) {
	t.Helper()
	if s.messageID == "" {
		s.messageID = fmt.Sprintf("msg-%d-%d", time.Now().UnixNano(), msgSeq.Add(1))
	}
	if s.placement == "" {
		s.placement = signing.PlacementWSSE
	}
	if s.signer == nil {
		s.signer = userSigner
	}
	if s.basis == 0 {
		s.basis = siobroker.BasisCriminal
	}
	if s.subject == (siobroker.Subject{}) {
		s.subject = siobroker.Subject{IIN: validIIN}
	}
	if s.caseRef == (siobroker.CaseRef{}) {
		s.caseRef = caseFor(t, userOf(t, s.signer), s.basis)
	}
	info := siobroker.RequestInfo{
		MessageID:   s.messageID,
		ServiceID:   "SIO_PSO_QUERY",
		MessageDate: h.clock.Now().Add(s.skew),
		SenderID:    "MVD_IS_ERDR",
	}
	q := siobroker.Query{
		Basis:    s.basis,
		Case:     s.caseRef,
		Article:  s.article,
		Subject:  s.subject,
		Services: s.services,
		Purpose:  "unit test",
	}
	doc := soap.NewRequest(info, q)
	if err := s.signer.Sign(doc, s.placement); err != nil {
		t.Fatalf("sign request: %v", err)
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		t.Fatalf("serialize request: %v", err)
	}
	return raw, info
}

func (h *harness) handle(raw []byte) (*Reply, Request, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.broker.Handle(ctx, bytes.NewReader(raw), "text/xml; charset=utf-8")
}

// parseReply reads a reply the way a client does: verify the broker's signature, then read only
// what it covers.
func (h *harness) parseReply(t *testing.T, reply *Reply, want signing.Placement) (soap.ResponseInfo, soap.Result) {
	t.Helper()
	doc, _, err := soap.ReadResponseEnvelope(bytes.NewReader(reply.Bytes), "text/xml; charset=utf-8", soap.Limits{})
	if err != nil {
		t.Fatalf("ReadResponseEnvelope: %v\n%s", err, reply.Bytes)
	}
	v, err := mustVerifier(t, signing.VerifierConfig{Trust: trust, AnySigner: true}).Verify(context.Background(), doc, h.clock.Now())
	if err != nil {
		t.Fatalf("reply signature: %v", err)
	}
	if v.Placement != want {
		t.Fatalf("reply placement %s, want %s", v.Placement, want)
	}
	if v.Certificate.Subject.CommonName != brokerSigner.Certificate().Subject.CommonName {
		t.Fatalf("reply signed by %q", v.Certificate.Subject.CommonName)
	}
	body := v.Signed
	if v.Placement == signing.PlacementEnveloped {
		body = soap.Body(doc)
	}
	info, res, err := soap.ParseResponse(body)
	if err != nil {
		t.Fatalf("ParseResponse: %v", err)
	}
	if v.Placement == signing.PlacementEnveloped {
		if res, err = soap.ParseResult(v.Signed); err != nil {
			t.Fatalf("ParseResult: %v", err)
		}
	}
	return info, res
}

func wantCode(t *testing.T, err error, code siobroker.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("Handle succeeded, want %s", code)
	}
	if got := siobroker.ErrorCode(err); got != code {
		t.Fatalf("Handle error %v (code %s), want %s", err, got, code)
	}
}

func fieldNames(r siobroker.Record) []string {
	var out []string
	for _, f := range r.Fields {
		out = append(out, f.Name)
	}
	return out
}

func TestHappyPath(t *testing.T) {
	tests := []struct {
		name      string
		placement signing.Placement
		signer    *signing.Signer
	}{
		{"wsse rsa", signing.PlacementWSSE, nil},
		{"enveloped rsa", signing.PlacementEnveloped, nil},
		{"wsse ecdsa", signing.PlacementWSSE, ecdsaSigner},
		{"enveloped ecdsa", signing.PlacementEnveloped, ecdsaSigner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			services := []int{93, 11, 1, 5} // not in numeric order: the reply keeps this order
			raw, info := h.build(t, reqSpec{placement: tt.placement, signer: tt.signer, services: services})
			reply, seen, err := h.handle(raw)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			signer := tt.signer
			if signer == nil {
				signer = userSigner
			}
			if seen.MessageID != info.MessageID || seen.SignerIIN != signer.IIN() || seen.Placement != tt.placement {
				t.Errorf("Request = %+v", seen)
			}
			if reply.RequestID != info.MessageID || reply.SignerIIN != signer.IIN() || reply.MessageID == "" {
				t.Errorf("Reply ids: %+v", reply)
			}
			ri, res := h.parseReply(t, reply, tt.placement)
			if ri.StatusCode != StatusProcessed || ri.CorrelationID != info.MessageID || ri.MessageID != reply.MessageID {
				t.Errorf("responseInfo = %+v", ri)
			}
			if res.RequestMessageID != info.MessageID || res.SignerIIN != signer.IIN() ||
				res.Basis != siobroker.BasisCriminal || res.Subject.IIN != validIIN {
				t.Errorf("result header = %+v", res)
			}
			if len(res.Services) != len(services) {
				t.Fatalf("%d services in the reply, want %d", len(res.Services), len(services))
			}
			for i, s := range services {
				r := res.Services[i]
				if r.Service != s || r.Status != siobroker.StatusOK || r.Reason != siobroker.ReasonOK || len(r.Records) != 2 {
					t.Errorf("slot %d: %+v, want service %d ok", i, r, s)
					continue
				}
				for _, f := range r.Records[0].Fields {
					if f.Name == "service" && f.Value != fmt.Sprint(s) {
						t.Errorf("slot %d carries the answer of service %s", i, f.Value)
					}
				}
				if s == 11 && !slices.Contains(fieldNames(r.Records[0]), "amount") {
					t.Errorf("service 11 under basis 1 lost amount: %v", fieldNames(r.Records[0]))
				}
			}
			if !slices.EqualFunc(reply.Services, res.Services, func(a, b siobroker.ServiceResult) bool {
				return a.Service == b.Service && a.Status == b.Status && a.Reason == b.Reason
			}) {
				t.Errorf("Reply.Services %+v differ from the signed result %+v", reply.Services, res.Services)
			}
		})
	}
}

func TestMessageDateWindow(t *testing.T) {
	tests := []struct {
		name string
		skew time.Duration
		ok   bool
	}{
		{"6 minutes old", -6 * time.Minute, false},
		{"6 minutes ahead", 6 * time.Minute, false},
		{"just over the window", -(5*time.Minute + time.Second), false},
		{"4 minutes old", -4 * time.Minute, true},
		{"4 minutes ahead", 4 * time.Minute, true},
		{"exactly the window", -5 * time.Minute, true},
		{"now", 0, true},
	}
	h := newHarness(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, _ := h.build(t, reqSpec{skew: tt.skew, services: []int{1}})
			_, _, err := h.handle(raw)
			if !tt.ok {
				wantCode(t, err, siobroker.CodeReplayDate)
				return
			}
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
		})
	}

	// The clock, not the wall time, decides: move it and an old message becomes current.
	raw, _ := h.build(t, reqSpec{skew: -10 * time.Minute, services: []int{1}})
	h.clock.Set(h.clock.Now().Add(-8 * time.Minute))
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("after moving the clock back: %v", err)
	}
}

func TestReplayedMessageID(t *testing.T) {
	h := newHarness(t, nil)
	raw, info := h.build(t, reqSpec{services: []int{1}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("first: %v", err)
	}
	_, seen, err := h.handle(raw)
	wantCode(t, err, siobroker.CodeReplayID)
	if seen.MessageID != info.MessageID {
		t.Errorf("Request.MessageID = %q", seen.MessageID)
	}
	// The same id in a freshly signed message, other placement, is a replay too.
	raw2, _ := h.build(t, reqSpec{messageID: info.MessageID, placement: signing.PlacementEnveloped, services: []int{5}})
	_, _, err = h.handle(raw2)
	wantCode(t, err, siobroker.CodeReplayID)
	if n := h.called(1); n != 1 {
		t.Errorf("service 1 asked %d times, want 1", n)
	}
	if n := h.called(5); n != 0 {
		t.Errorf("service 5 asked %d times by a replay", n)
	}
}

// TestReplayIDNotBurnedByRefusals: a request refused before its signature verified, or for its
// subject, does not record its messageId.
func TestReplayIDNotBurnedByRefusals(t *testing.T) {
	h := newHarness(t, nil)
	raw, info := h.build(t, reqSpec{skew: -6 * time.Minute, services: []int{1}})
	_, _, err := h.handle(raw)
	wantCode(t, err, siobroker.CodeReplayDate)
	// Tampered: the signature does not verify.
	good, _ := h.build(t, reqSpec{messageID: info.MessageID + "-t", services: []int{1}})
	tampered := bytes.Replace(good, []byte("unit test"), []byte("unit tesT"), 1)
	if _, _, err := h.handle(tampered); err == nil {
		t.Fatal("tampered request accepted")
	}
	if _, _, err := h.handle(good); err != nil {
		t.Fatalf("the genuine request after a tampered copy with its id: %v", err)
	}
}

func TestTruncation(t *testing.T) {
	h := newHarness(t, nil)
	for b := siobroker.FirstBasis; b <= siobroker.LastBasis; b++ {
		t.Run(fmt.Sprint("basis", b), func(t *testing.T) {
			raw, _ := h.build(t, reqSpec{basis: b, services: []int{11, 1}})
			reply, _, err := h.handle(raw)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			_, res := h.parseReply(t, reply, signing.PlacementWSSE)
			r := res.Services[0]
			if r.Service != 11 || r.Status != siobroker.StatusOK || len(r.Records) != 2 {
				t.Fatalf("service 11: %+v", r)
			}
			truncated := b == 2 || b == 3 || b == 4
			for i, rec := range r.Records {
				names := fieldNames(rec)
				if has := slices.Contains(names, "amount"); has == truncated {
					t.Errorf("record %d under basis %d: fields %v (amount must be removed: %v)", i, b, names, truncated)
				}
				for _, keep := range []string{"service", "iin", "employer"} {
					if !slices.Contains(names, keep) {
						t.Errorf("record %d lost %s: %v", i, keep, names)
					}
				}
			}
			// Service 1 has no truncation and is untouched.
			if res.Services[1].Status != siobroker.StatusOK || len(res.Services[1].Records) != 2 {
				t.Errorf("service 1: %+v", res.Services[1])
			}
			// The in-memory result handed to the journal is truncated too.
			for _, rec := range reply.Services[0].Records {
				if slices.Contains(fieldNames(rec), "amount") == truncated {
					t.Errorf("Reply.Services under basis %d: %v", b, fieldNames(rec))
				}
			}
		})
	}
}

func TestDeniedBasis(t *testing.T) {
	h := newHarness(t, nil)
	// Service 37 is a КГД service: criminal basis only. Under basis 2 it is denied; 1 and 5 go ahead.
	raw, _ := h.build(t, reqSpec{basis: siobroker.BasisCourtAdmin, services: []int{1, 37, 5}})
	reply, _, err := h.handle(raw)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	ri, res := h.parseReply(t, reply, signing.PlacementWSSE)
	if d := res.Services[1]; d.Service != 37 || d.Status != siobroker.StatusDenied || d.Reason != siobroker.ReasonDeniedBasis || d.Message == "" || len(d.Records) != 0 {
		t.Errorf("service 37: %+v, want denied DENIED_BASIS with an explanation", d)
	}
	for _, i := range []int{0, 2} {
		if r := res.Services[i]; r.Status != siobroker.StatusOK {
			t.Errorf("slot %d: %+v", i, r)
		}
	}
	if n := h.called(37); n != 0 {
		t.Errorf("the backend of the denied service was asked %d times", n)
	}
	if h.called(1) != 1 || h.called(5) != 1 {
		t.Errorf("allowed services asked %d and %d times", h.called(1), h.called(5))
	}
	if ri.StatusCode != StatusProcessed {
		t.Errorf("status %s, want %s: a denial is an answer", ri.StatusCode, StatusProcessed)
	}
}

func TestAllServicesDenied(t *testing.T) {
	h := newHarness(t, nil)
	raw, _ := h.build(t, reqSpec{basis: siobroker.BasisSearch, services: []int{37, 38}})
	reply, _, err := h.handle(raw)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	ri, res := h.parseReply(t, reply, signing.PlacementWSSE)
	for _, r := range res.Services {
		if r.Status != siobroker.StatusDenied || r.Reason != siobroker.ReasonDeniedBasis {
			t.Errorf("%+v", r)
		}
	}
	if ri.StatusCode != StatusProcessed || h.called(37)+h.called(38) != 0 {
		t.Errorf("status %s, backends asked %d", ri.StatusCode, h.called(37)+h.called(38))
	}
}

func TestEconomicArticle(t *testing.T) {
	tests := []struct {
		name       string
		article    string
		wantStatus siobroker.ResultStatus
		wantReason string
		wantCalls  int32
	}{
		// The case (the demo prosecutor's first) is qualified under 190 and 216 by its registry:
		// footnote 2 follows that, and a named article must be one of them.
		{"the case's Chapter 8 article named", "216", siobroker.StatusOK, siobroker.ReasonOK, 1},
		{"no article named: the case's qualification decides", "", siobroker.StatusOK, siobroker.ReasonOK, 1},
		{"an article not the case's", "105", siobroker.StatusDenied, siobroker.ReasonDeniedArticle, 0},
		{"a Chapter 8 article not the case's", "245", siobroker.StatusDenied, siobroker.ReasonDeniedArticle, 0},
		{"the case's article, not of Chapter 8", "190", siobroker.StatusDenied, siobroker.ReasonDeniedArticle, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			raw, _ := h.build(t, reqSpec{basis: siobroker.BasisCriminal, article: tt.article, services: []int{37, 1}})
			reply, _, err := h.handle(raw)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			_, res := h.parseReply(t, reply, signing.PlacementWSSE)
			if r := res.Services[0]; r.Service != 37 || r.Status != tt.wantStatus || r.Reason != tt.wantReason {
				t.Errorf("service 37: %+v, want %s %s", r, tt.wantStatus, tt.wantReason)
			}
			if n := h.called(37); n != tt.wantCalls {
				t.Errorf("backend 37 asked %d times, want %d", n, tt.wantCalls)
			}
			if r := res.Services[1]; r.Status != siobroker.StatusOK {
				t.Errorf("service 1: %+v", r)
			}
		})
	}
}

func TestInvalidSubject(t *testing.T) {
	tests := []struct {
		name    string
		subject siobroker.Subject
		field   string
	}{
		{"IIN wrong check digit", siobroker.Subject{IIN: "820605401174"}, "query/subject/iin"},
		{"BIN wrong check digit", siobroker.Subject{BIN: "750312300459"}, "query/subject/bin"},
		{"IIN without a check digit", siobroker.Subject{IIN: "750312301000"}, "query/subject/iin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			raw, _ := h.build(t, reqSpec{subject: tt.subject, services: []int{1}})
			_, _, err := h.handle(raw)
			wantCode(t, err, siobroker.CodeSubject)
			var e *siobroker.Error
			if !errors.As(err, &e) || e.Field != tt.field {
				t.Errorf("error field = %q, want %q", e.Field, tt.field)
			}
			if h.called(1) != 0 {
				t.Errorf("backend asked for an invalid subject")
			}
		})
	}
}

func TestReplayGuardFailure(t *testing.T) {
	h := newHarness(t, failingReplay{})
	raw, info := h.build(t, reqSpec{services: []int{1}})
	_, seen, err := h.handle(raw)
	wantCode(t, err, siobroker.CodeUnavailable)
	if msg := siobroker.ErrorMessage(err); strings.Contains(msg, "sqlite") || strings.Contains(msg, "/srv") {
		t.Errorf("client message leaks the cause: %q", msg)
	}
	if !strings.Contains(err.Error(), "sqlite") {
		t.Errorf("the cause is lost for the log: %v", err)
	}
	if seen.MessageID != info.MessageID || seen.SignerIIN != userSigner.IIN() {
		t.Errorf("Request = %+v", seen)
	}
	if h.called(1) != 0 {
		t.Errorf("dispatched although the replay guard failed")
	}
}

func TestPartialOnTimeoutAndError(t *testing.T) {
	tests := []struct {
		name       string
		services   []int
		wantStatus string
		want       map[int]siobroker.ResultStatus
	}{
		{"all answer", []int{11, 1}, StatusProcessed, map[int]siobroker.ResultStatus{11: siobroker.StatusOK, 1: siobroker.StatusOK}},
		{"one times out", []int{11, slowService, 1}, StatusPartial,
			map[int]siobroker.ResultStatus{11: siobroker.StatusOK, slowService: siobroker.StatusTimeout, 1: siobroker.StatusOK}},
		{"one fails", []int{failService, 11}, StatusPartial,
			map[int]siobroker.ResultStatus{failService: siobroker.StatusError, 11: siobroker.StatusOK}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			raw, _ := h.build(t, reqSpec{placement: signing.PlacementEnveloped, services: tt.services})
			start := time.Now()
			reply, _, err := h.handle(raw)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Handle took %s", d)
			}
			ri, res := h.parseReply(t, reply, signing.PlacementEnveloped)
			if ri.StatusCode != tt.wantStatus {
				t.Errorf("status %s (%q), want %s", ri.StatusCode, ri.StatusMessage, tt.wantStatus)
			}
			for i, s := range tt.services {
				r := res.Services[i]
				if r.Service != s || r.Status != tt.want[s] {
					t.Errorf("slot %d: %+v, want service %d %s", i, r, s, tt.want[s])
				}
				if strings.Contains(r.Message, "ORA") || strings.Contains(r.Message, "internal") {
					t.Errorf("service %d message leaks the backend error: %q", s, r.Message)
				}
			}
		})
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	caseRules, err := cases.NewRules(cases.DefaultConfig(), siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	dispatcher, err := routing.NewDispatcher(routing.DispatcherConfig{Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter), RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter), Publisher: gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{}),
		ReplyTopic: "x", Clock: siobroker.SystemClock{}, Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	full := Deps{
		Verifier: mustVerifier(t, signing.VerifierConfig{Trust: trust}), Signer: brokerSigner, Replay: failingReplay{},
		Dispatcher: dispatcher, Rights: table,
		Users: users.New(nil, siobroker.SystemClock{}, nil), Cases: caseRules, Registry: dispatcher,
		Journal: openTestStore(t).Journal(),
		Clock:   siobroker.SystemClock{}, Logger: slog.Default(), NewID: func() string { return "x" },
	}
	cfg := Config{ReplayWindow: time.Minute, Timeout: func(int) time.Duration { return time.Second }}
	if _, err := New(cfg, full); err != nil {
		t.Fatalf("New with every dependency: %v", err)
	}
	tests := []struct {
		want string // the error names the field
		mod  func(*Config, *Deps)
	}{
		{"broker: Deps.Verifier is required", func(_ *Config, d *Deps) { d.Verifier = nil }},
		{"broker: Deps.Signer is required", func(_ *Config, d *Deps) { d.Signer = nil }},
		{"broker: Deps.Replay is required", func(_ *Config, d *Deps) { d.Replay = nil }},
		{"broker: Deps.Dispatcher is required", func(_ *Config, d *Deps) { d.Dispatcher = nil }},
		{"broker: Deps.Rights is required", func(_ *Config, d *Deps) { d.Rights = nil }},
		{"broker: Deps.Users is required", func(_ *Config, d *Deps) { d.Users = nil }},
		{"broker: Deps.Cases is required", func(_ *Config, d *Deps) { d.Cases = nil }},
		{"broker: Deps.Registry is required", func(_ *Config, d *Deps) { d.Registry = nil }},
		{"broker: Deps.Journal is required", func(_ *Config, d *Deps) { d.Journal = nil }},
		{"broker: Deps.Clock is required", func(_ *Config, d *Deps) { d.Clock = nil }},
		{"broker: Deps.Logger is required", func(_ *Config, d *Deps) { d.Logger = nil }},
		{"broker: Deps.NewID is required", func(_ *Config, d *Deps) { d.NewID = nil }},
		{"broker: Config.ReplayWindow must be positive", func(c *Config, _ *Deps) { c.ReplayWindow = 0 }},
		{"broker: Config.ReplayWindow must be positive", func(c *Config, _ *Deps) { c.ReplayWindow = -time.Second }},
		{"broker: Config.Timeout is required", func(c *Config, _ *Deps) { c.Timeout = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			c, d := cfg, full
			tt.mod(&c, &d)
			_, err := New(c, d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want %q", err, tt.want)
			}
		})
	}
	// Every missing dependency is named at once, not only the first.
	err = Deps{}.Validate()
	for _, name := range []string{"Verifier", "Signer", "Replay", "Dispatcher", "Rights", "Users", "Cases", "Registry",
		"Journal", "Clock", "Logger", "NewID"} {
		if err == nil || !strings.Contains(err.Error(), "broker: Deps."+name+" is required") {
			t.Errorf("Deps{}.Validate() = %v: %s not named", err, name)
		}
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "Config.ReplayWindow") ||
		!strings.Contains(err.Error(), "Config.Timeout") {
		t.Errorf("Config{}.Validate() = %v, want ReplayWindow and Timeout named", err)
	}
}

func TestConcurrentRequests(t *testing.T) {
	// What is tested is that concurrent requests keep apart, not how fast they are answered: with
	// -race, on two cores shared with other test packages, 20 requests for up to four services
	// each took more than the harness's 2 s (CI run of 2026-12-07), so the limit is generous here.
	h := newHarnessWith(t, harnessOpts{serviceTimeout: time.Minute})
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			subject := siobroker.Subject{IIN: validIIN}
			placement := signing.PlacementWSSE
			if i%2 == 1 {
				placement = signing.PlacementEnveloped
			}
			services := []int{1, 5, 11, 93}
			if i%3 == 0 {
				services = []int{93, 11}
			}
			raw, info := h.build(t, reqSpec{placement: placement, subject: subject, services: services})
			reply, _, err := h.handle(raw)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			if reply.RequestID != info.MessageID || len(reply.Services) != len(services) {
				t.Errorf("request %d: reply %+v", i, reply)
				return
			}
			for j, s := range services {
				if r := reply.Services[j]; r.Service != s || r.Status != siobroker.StatusOK {
					t.Errorf("request %d slot %d: %+v", i, j, r)
				}
			}
		})
	}
	wg.Wait()
}

func openTestStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestStagesObserved: an answered request reports each stage of the pipeline once; one refused
// at its signature reports only what it went through.
func TestStagesObserved(t *testing.T) {
	var mu sync.Mutex
	seen := map[Stage]int{}
	h := newHarnessWith(t, harnessOpts{observeStage: func(s Stage, d time.Duration) {
		if d < 0 {
			t.Errorf("stage %s took %s", s, d)
		}
		mu.Lock()
		seen[s]++
		mu.Unlock()
	}})
	raw, _ := h.build(t, reqSpec{services: []int{1, 5}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	mu.Lock()
	for _, s := range Stages {
		if seen[s] != 1 {
			t.Errorf("stage %s observed %d times, want once", s, seen[s])
		}
	}
	clear(seen)
	mu.Unlock()

	raw, _ = h.build(t, reqSpec{skew: -10 * time.Minute, services: []int{1}})
	if _, _, err := h.handle(raw); err == nil {
		t.Fatal("a request out of the replay window was answered")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[StageVerify] != 1 {
		t.Errorf("refused request's stages %v, want verify only", seen)
	}
}

// mustVerifier is signing.NewVerifier for a configuration the test knows to be valid.
func mustVerifier(t testing.TB, cfg signing.VerifierConfig) *signing.Verifier {
	t.Helper()
	v, err := signing.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
