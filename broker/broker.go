// Package broker is the request pipeline: it takes the bytes of a SOAP request and returns the
// bytes of the signed reply, or a *siobroker.Error for a fault. It reads the envelope under the
// size limits, verifies the signature and the signer's certificate, validates the query, refuses
// replays, applies the service access rights of Appendix 2, scatters the allowed services to their
// adapters, merges the answers, truncates what the Rules truncate, and signs the reply in the
// placement the request used.
//
// It knows its collaborators only by the interfaces below; internal/app wires the real ones.
package broker

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/ratelimit"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/intake"
)

// Verifier checks a request's signature and returns the only content that may be used.
type Verifier interface {
	Verify(ctx context.Context, doc *etree.Document, at time.Time) (*signing.Verified, error)
}

// Signer signs a reply in a given placement.
type Signer interface {
	Sign(doc *etree.Document, p signing.Placement) error
}

// ReplayGuard remembers messageIds, and the digests of signed content. Each reports false for
// what it has seen before.
type ReplayGuard interface {
	// MarkRequest records a call's messageId (Key) and the digest of its signed content, and
	// reports whether each is new. A messageId seen before records nothing more. A mark with a
	// RequestID is an admission in progress (see siobroker.ReplayMark) until its request is
	// stored for delivery (AsyncStore.CreateAsync), EndAdmission or Release.
	MarkRequest(ctx context.Context, m siobroker.ReplayMark) (idFresh, contentFresh bool, err error)
	// Release forgets both marks of a request the broker could not serve for a passing reason of
	// its own, so that the same signed request may be retried as the fault invites.
	Release(ctx context.Context, messageID, digest string) error
	// Admissions returns the admissions in progress recorded by before, oldest first. Where the
	// marks are shared by several brokers, only this broker's: another's may be live, and only
	// its own AsyncStore tells whether such a request was accepted.
	Admissions(ctx context.Context, before time.Time) ([]siobroker.ReplayMark, error)
	// EndAdmission records that the request requestID was accepted or refused.
	EndAdmission(ctx context.Context, requestID string) error
}

// Transactor runs f so that the writes f makes, with the context it is given, through the stores
// that share its transaction are committed together, or not at all (sqlite.DB.WriteTogether). f
// may run in another goroutine, holding the store's write lock: it must not wait for anything
// but that store.
type Transactor interface {
	WriteTogether(ctx context.Context, f func(ctx context.Context) error) error
}

// together runs f with Deps.Together, or alone when there is none: its writes then commit one by
// one, as f makes them.
func (b *Broker) together(ctx context.Context, f func(ctx context.Context) error) error {
	if b.deps.Together == nil {
		return f(ctx)
	}
	return b.deps.Together.WriteTogether(ctx, f)
}

// Users is the user registry: the role always comes from here, by the IIN of the certificate.
type Users interface {
	Authorize(ctx context.Context, iin string) (siobroker.User, error)
	// Touch records the accepted request of u, as Authorize returned it, as the user's last.
	Touch(ctx context.Context, u siobroker.User) error
}

// CertificateBook keeps the certificates the registry's users sign with (users.Certificates),
// so that a later request naming its certificate only by an identifier can be verified.
type CertificateBook interface {
	// Learn records a certificate that an accepted request of u carried whole.
	Learn(ctx context.Context, u siobroker.User, cert *x509.Certificate) error
}

// CaseRules validates case references, names the registry that verifies each basis, and decides
// from a registry's answer whether the case is in the proceedings of a user of a role (§5).
type CaseRules interface {
	Validate(b siobroker.Basis, c siobroker.CaseRef) error
	Registry(b siobroker.Basis) (name string, ok bool)
	CheckTimeout() time.Duration
	// CheckProceedings returns nil when the case is in the signer's proceedings, else the
	// refusal (CodeCaseUnknown) to give the user.
	CheckProceedings(role int, b siobroker.Basis, signerIIN string, c siobroker.CaseRef, registry string, found bool, f siobroker.CaseFacts) error
}

// CaseChecker asks a case registry over the transport (§5).
type CaseChecker interface {
	CheckCase(ctx context.Context, registry string, req schemas.CaseCheckRequest, timeout time.Duration) (schemas.CaseCheckResponse, error)
}

// Dispatcher scatters per-service requests and gathers their outcomes (*routing.Dispatcher), and
// counts every service's outcome as what it was: the ones it dispatched, and the results the
// broker gave without dispatching (CountUndispatched).
type Dispatcher interface {
	Dispatch(ctx context.Context, reqs []schemas.ServiceRequest, timeout func(service int) time.Duration) []routing.Outcome
	// DispatchLate waits for one service's answer beyond its time limit (see late.go); overdue
	// is called when the limit passes first.
	DispatchLate(ctx context.Context, req schemas.ServiceRequest, limit, wait time.Duration, overdue func()) routing.Outcome
	CountUndispatched(r siobroker.ServiceResult)
}

// Rights decides a role's bases (App. 1) and each service under a basis (App. 2), and names the
// fields a truncated service loses.
type Rights interface {
	RoleMayUse(role int, b siobroker.Basis) bool
	DecideService(b siobroker.Basis, service int, q siobroker.Qualification) siobroker.Decision
	TruncatedFields(service int) []string
}

// Config holds the pipeline's settings. ReplayWindow and Timeout are required; a zero Limits
// takes soap.Limits' defaults.
type Config struct {
	Limits       soap.Limits
	ReplayWindow time.Duration                   // messageDate must be within ±ReplayWindow of the clock
	Timeout      func(service int) time.Duration // per-service timeout
	// AsyncTimeout, when positive (and Deps.Async is set), is how long the broker keeps waiting in
	// the background for the services a synchronous reply went out without; the complete reply is
	// then stored as a DELIVERED asynchronous request (see processSync). Zero: no waiting.
	AsyncTimeout time.Duration
	// Unauthenticated bounds what the journal keeps of requests refused before their signature
	// verified; zero fields take its defaults.
	Unauthenticated UnauthenticatedLimits
	// PerSigner bounds the requests of one signer (by IIN), checked once the signature verified
	// and before the replay marks, so that the retry the fault invites is not a replay; over
	// either limit, SIO-RATE-LIMITED with a Retry-After, the message saying which. A zero Rate or
	// Concurrent is no limit of that kind.
	//
	// Rate counts every signed call, status queries, fetches and receipts too, and a request
	// refused for Concurrent: each had its signature verified.
	//
	// Concurrent counts the signer's requests for services in flight: a synchronous one until
	// its reply is given (or its refusal), an asynchronous one until the AsyncWorker of this
	// process has run it once (see asyncSlots). Not counted: the background wait for late
	// services (AsyncTimeout) after either, which is bounded by AsyncTimeout and holds no worker,
	// and whose counting would let one stalled service lock its signer out of every other for
	// that long; a request the worker retries or resumes after a restart (the limit held when it
	// was accepted); and the calls that only read or confirm stored replies (status, fetch,
	// getMessages, receipts), so that a signer at its limit can still collect its results.
	//
	// The refusals are journaled with the signer but without the raw request, within the bounds
	// of Unauthenticated counted by signer: a signer's flood must not become the journal's.
	PerSigner ratelimit.Limits
}

// Deps are the pipeline's collaborators. Every one is required but Async, Maintenance,
// TransportReady, Certificates and ObserveStage.
type Deps struct {
	Verifier   Verifier
	Signer     Signer
	Replay     ReplayGuard
	Dispatcher Dispatcher
	Rights     Rights
	Users      Users
	Cases      CaseRules
	Registry   CaseChecker
	// Journal is the permanent journal: a service's outcome is recorded once (AppendOnce), and
	// a request resumed after a crash looks up what its earlier run recorded.
	Journal siobroker.Journal
	Clock   siobroker.Clock
	Logger  *slog.Logger
	NewID   func() string // reply message ids; also the broker's request id
	// Async stores the requests of the asynchronous channel, and every synchronous request until
	// its reply is journaled, so that a request interrupted by a crash or a failed journal write
	// is completed by the AsyncWorker; nil disables the asynchronous channel (Accept answers
	// SIO-UNAVAILABLE) and that completion.
	Async AsyncStore
	// Answers holds the answers the dispatcher received (routing.AnswerStore). With Late, an
	// answer that came after its service's outcome was recorded without it is recorded late by
	// the completion that recorded the outcome. Nil: such an answer is recorded late by the
	// dispatcher alone.
	Answers HeldAnswers
	// Late records an answer as late (LateAnswers.Record); nil: none is, by the broker.
	Late func(context.Context, routing.LateAnswer) (bool, error)
	// Together, when set, commits the consecutive writes of a request in one transaction where
	// each would otherwise be a commit of its own: the replay marks with the request's journal
	// record, and a synchronous request's reply records with the end of its hold (ForgetSync).
	// Set it only when every store those writes go to (Replay, Users, Journal, Async) is the
	// one Together commits in: internal/app sets the embedded store when it keeps the journal
	// and the replay marks, never with journal.driver postgres. Nil: each write commits alone.
	Together Transactor
	// Maintenance names the announced maintenance window a service is in (§36, 42); nil: none.
	Maintenance Maintenance
	// TransportReady says why the message transport cannot take a new request now (a fault), or
	// nil; nil func: always ready. Handle checks it once the request is authenticated, and Accept
	// before admitting a new asynchronous request (not for status and fetch queries, which read
	// the store only and are answered during an outage of RabbitMQ): the refusal is journaled
	// with the request's messageId and signer, and nothing of the request is recorded as seen.
	TransportReady func() error
	// IndexHint, when set, is told the query of each request whose journal record was committed,
	// read from the envelope as the request index reads it from those bytes
	// (soap.JournaledQueryOfTree), with the record's request id and the size of its Data
	// (reports.QueryHints): the index then need not read the journaled envelope again.
	IndexHint func(requestID string, size int, q siobroker.Query)
	// Certificates, when set, learns the certificate of every accepted request that carried it
	// whole (a KeyInfo with X509Data, a BinarySecurityToken...).
	Certificates CertificateBook
	// ObserveStage, when set, is told how long each step of a request took (see Stage), on the
	// wall clock: it must be cheap and safe for concurrent use (a metrics histogram).
	ObserveStage func(Stage, time.Duration)
	// ObserveUnauthenticated, when set, is told of every refusal of a request whose signer is not
	// known (see UnauthenticatedLimits), and whether it was summarised instead of journaled one
	// by one: cheap and safe for concurrent use (a metrics counter).
	ObserveUnauthenticated func(code siobroker.Code, summarised bool)
	// ObserveSignerLimited, when set, is told of every request refused by Config.PerSigner, and
	// by which of its limits (ratelimit.ScopeRate or ScopeConcurrent).
	ObserveSignerLimited func(ratelimit.Scope)
}

// Stage names a step of a request's pipeline, for Deps.ObserveStage. The steps do not cover a
// request's whole time: what is left is HTTP, parsing the query, the cheap checks, and waiting
// for a CPU.
type Stage string

// The stages, in the order a synchronous request passes them.
const (
	StageVerify         Stage = "verify"          // reading the envelope, verifying the signature and certificate
	StageReplay         Stage = "replay"          // recording the message id and signed content as seen (with Deps.Together, the wait for the write lock too)
	StageAuthorize      Stage = "authorize"       // the user registry (§12–17)
	StageJournalRequest Stage = "journal_request" // appending the request's journal record (with Deps.Together, and committing it with the marks)
	StageCaseCheck      Stage = "case_check"      // the case registry's round trip (§5)
	StageTouch          Stage = "touch"           // recording the user's last request (§16)
	StageServices       Stage = "services"        // dispatching to the adapters and waiting for their answers
	StageSign           Stage = "sign"            // building and signing the reply
	StageJournalReply   Stage = "journal_reply"   // appending the exchange and reply records
)

// Stages lists every Stage, in order.
var Stages = []Stage{StageVerify, StageReplay, StageAuthorize, StageJournalRequest, StageCaseCheck, StageTouch,
	StageServices, StageSign, StageJournalReply}

// observe reports the time since start as stage s. Stage times are performance figures, so they
// use the wall clock's monotonic reading, not the injected Clock, which may be moved by tests.
func (b *Broker) observe(s Stage, start time.Time) {
	if b.deps.ObserveStage != nil {
		b.deps.ObserveStage(s, time.Since(start))
	}
}

// Maintenance is the maintenance schedule (maintenance.Schedule implements it).
type Maintenance interface {
	Active(service int, at time.Time) (siobroker.MaintenanceWindow, bool)
}

// Broker runs the pipeline. It is safe for concurrent use.
type Broker struct {
	cfg  Config
	deps Deps
	// unreleased holds the signed-content digests of requests refused SIO-UNAVAILABLE whose
	// replay marks the store could not forget at once: their retry is taken.
	unreleased sync.Map
	wake       chan struct{} // tells the AsyncWorker that a job was accepted
	late       late          // background waits for the late services of synchronous requests
	unauth     refusalBounds // the refusals of unauthenticated requests journaled this minute
	// signerRefusals: the refusals by Config.PerSigner journaled this minute, by signer.
	signerRefusals refusalBounds
	signers        *ratelimit.Limiter // Config.PerSigner's Rate, by the signer's IIN
	inFlight       *ratelimit.Limiter // Config.PerSigner's Concurrent, by the signer's IIN
	asyncSlots     asyncSlots         // inFlight's slots of the stored asynchronous requests
}

func (c *Config) setDefaults() {
	c.Limits = c.Limits.WithDefaults()
	c.Unauthenticated.setDefaults()
}

// Validate reports what is wrong with c once its defaults are applied: ReplayWindow must be
// positive and Timeout set.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if err := c.PerSigner.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("broker: Config.PerSigner: %w", err))
	}
	if c.ReplayWindow <= 0 {
		errs = append(errs, fmt.Errorf("broker: Config.ReplayWindow must be positive, got %s", c.ReplayWindow))
	}
	if c.Timeout == nil {
		errs = append(errs, errors.New("broker: Config.Timeout is required"))
	}
	if err := c.Unauthenticated.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Validate reports every required collaborator that d lacks: all but Async, Maintenance,
// TransportReady, Certificates and ObserveStage are required.
func (d Deps) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"Verifier", d.Verifier != nil},
		{"Signer", d.Signer != nil},
		{"Replay", d.Replay != nil},
		{"Dispatcher", d.Dispatcher != nil},
		{"Rights", d.Rights != nil},
		{"Users", d.Users != nil},
		{"Cases", d.Cases != nil},
		{"Registry", d.Registry != nil},
		{"Journal", d.Journal != nil},
		{"Clock", d.Clock != nil},
		{"Logger", d.Logger != nil},
		{"NewID", d.NewID != nil},
	} {
		if !f.set {
			errs = append(errs, fmt.Errorf("broker: Deps.%s is required", f.name))
		}
	}
	return errors.Join(errs...)
}

// New returns a Broker. It applies the defaults of cfg and returns an error naming every field
// of cfg or deps that is missing or invalid.
func New(cfg Config, deps Deps) (*Broker, error) {
	cfg.setDefaults()
	if err := errors.Join(cfg.Validate(), deps.Validate()); err != nil {
		return nil, err
	}
	// Two limiters, not one of both limits: the rate is taken for every call once its signature
	// verified, the slot only for a request for services, which is known later (Config.PerSigner).
	signers, err := ratelimit.New(ratelimit.Limits{Rate: cfg.PerSigner.Rate, Burst: cfg.PerSigner.Burst})
	if err != nil {
		return nil, fmt.Errorf("broker: Config.PerSigner: %w", err)
	}
	inFlight, err := ratelimit.New(ratelimit.Limits{Concurrent: cfg.PerSigner.Concurrent})
	if err != nil {
		return nil, fmt.Errorf("broker: Config.PerSigner: %w", err)
	}
	return &Broker{cfg: cfg, deps: deps, wake: make(chan struct{}, 1), signers: signers, inFlight: inFlight,
		asyncSlots: asyncSlots{on: cfg.PerSigner.Concurrent > 0}, signerRefusals: refusalBounds{bySigner: true}}, nil
}

// Reply is a signed reply and what the caller needs to log it.
type Reply struct {
	Bytes     []byte
	MessageID string // the reply's messageId, also the broker's request id
	RequestID string // the client's messageId
	SignerIIN string
	Services  []siobroker.ServiceResult

	settled bool // the synchronous request's hold was ended with its reply's journal records
}

// Request is what the pipeline knows of a request, as far as it got: for logging refusals.
type Request struct {
	RequestID    string // the broker's id: every journal record of the request carries it
	Organisation string
	MessageID    string
	SenderID     string
	SignerIIN    string
	Role         int
	Placement    signing.Placement
	// Operation is the AsyncChannel v10 operation of a request to /AsyncChannel/v10 (soap.ACSendMessage...),
	// "" for SyncChannel's SendMessage: its fault carries that operation's detail element.
	Operation string

	raw  []byte          // the request as received, once read
	doc  *etree.Document // raw parsed, until the request is journaled (Deps.IndexHint)
	body *bodyTap        // what was read of the body, for the refusal of an unauthenticated request
	// unread: refused before anything of its body was read (RefuseUnread), declared the length
	// it gave, if any.
	unread   bool
	declared int64
	// signerVerified: the signature verified, and SignerIIN is its signer's. Until then the
	// request is anyone's, and its refusal keeps only a digest of raw (UnauthenticatedLimits).
	signerVerified   bool
	requestJournaled bool
	// accepted: the request is held for delivery (holdSync), and is completed whatever happens to
	// this call; its replay marks stay.
	accepted bool
}

// Handle runs one request. On refusal it returns the partly filled Request and a *siobroker.Error
// (any other error is internal); the caller turns it into a fault. Every request is journaled as
// received, before anything else is done with it, and so is its refusal or its reply.
func (b *Broker) Handle(ctx context.Context, body io.Reader, contentType string) (*Reply, Request, error) {
	seen := Request{RequestID: b.deps.NewID(), body: newBodyTap(body, b.cfg.Unauthenticated.PrefixBytes)}
	ctx = reqlog.With(ctx, "", seen.RequestID)
	received := b.deps.Clock.Now()
	reply, err := b.handle(ctx, seen.body, contentType, received, &seen)
	if err != nil {
		b.journalRefusal(ctx, seen, err)
	}
	return reply, seen, err
}

func (b *Broker) handle(ctx context.Context, body io.Reader, contentType string, received time.Time, seen *Request) (*Reply, error) {
	a, err := b.authenticate(ctx, body, contentType, seen)
	if err != nil {
		return nil, err
	}
	ctx = reqlog.With(ctx, a.info.MessageID, seen.RequestID)
	// After the signature, so that the refusal is journaled with the messageId and signer the
	// client will retry with; before the replay marks, so that its retry is not a replay.
	if b.deps.TransportReady != nil {
		if err := b.deps.TransportReady(); err != nil {
			return nil, err
		}
	}
	// Held until the reply or refusal is given; a background wait for late services after it
	// holds none (Config.PerSigner).
	release, err := b.holdSigner(a.verified.SignerIIN)
	if err != nil {
		return nil, err
	}
	defer release()
	q, err := parseQuery(a)
	if err != nil {
		return nil, err
	}
	user, digest, err := b.recordRequest(ctx, a, seen, received)
	var reply *Reply
	if err == nil {
		reply, err = b.serve(ctx, a.info, q, a.verified, user, seen, received)
		if seen.accepted {
			return reply, acceptedUnfinished(err, seen.RequestID)
		}
	}
	b.releaseIfUnavailable(ctx, err, a.info.MessageID, digest)
	return reply, err
}

// acceptedUnfinished is the refusal of a synchronous request that was accepted but whose reply
// could not be given now (it could not be journaled): the broker completes it, so the client is
// told where to fetch the reply, and its retry as sent would be a replay.
func acceptedUnfinished(err error, requestID string) error {
	if err == nil || siobroker.ErrorCode(err) != siobroker.CodeUnavailable {
		return err
	}
	return siobroker.Wrap(siobroker.CodeUnavailable, err,
		"%s; the request was accepted as %s and the broker completes it: fetch its reply on the asynchronous channel by that id",
		siobroker.ErrorMessage(err), requestID)
}

// releaseIfUnavailable forgets the replay marks of a request refused for a passing reason of the
// broker's own (SIO-UNAVAILABLE), so that the client may retry it as the fault invites. A store
// that cannot forget them now (locked, like the journal that refused the request) is asked again
// in the background, and meanwhile this process takes the retry (unreleased). A request refused
// because a write was not taken within the write timeout does not wait for the store a second
// time: its marks are released in the background from the start.
func (b *Broker) releaseIfUnavailable(ctx context.Context, err error, messageID, digest string) {
	if err == nil || siobroker.ErrorCode(err) != siobroker.CodeUnavailable || digest == "" {
		return
	}
	key := replayKey(messageID, digest)
	relErr := err
	if !storeTimedOut(err) {
		relErr = b.deps.Replay.Release(context.WithoutCancel(ctx), key, digest)
	}
	if relErr != nil {
		_, requestID := reqlog.IDs(ctx)
		b.deps.Logger.WarnContext(ctx, "a refused request's replay marks are released later; its retry is taken meanwhile",
			append(reqlog.Attrs(messageID, requestID), "error", relErr)...)
		b.unreleased.Store(digest, struct{}{})
		b.retryInBackground("release replay marks of "+key, func(ctx context.Context) error {
			if err := b.deps.Replay.Release(ctx, key, digest); err != nil {
				return err
			}
			b.unreleased.Delete(digest)
			return nil
		})
	}
}

// storeTimedOut reports whether err is, or was caused by, a store or journal write that was not
// taken within its write timeout (siobroker.ErrWriteTimeout). The store is then locked or not
// answering: the writes that follow a refusal for it (the replay marks' release, the refusal's
// record, the hold's lease) are made in the background, so that the client gets its fault within
// the one timeout instead of one timeout per write.
func storeTimedOut(err error) bool { return errors.Is(err, siobroker.ErrWriteTimeout) }

// retryInBackground runs f until it succeeds, with back-off, for at most backgroundRetryLimit or
// until Shutdown: a write the store or the journal refused for a passing reason (locked, busy).
func (b *Broker) retryInBackground(what string, f func(context.Context) error) {
	b.late.init()
	b.late.start(func() {
		wait := 250 * time.Millisecond
		deadline := time.Now().Add(backgroundRetryLimit)
		for {
			t := time.NewTimer(wait)
			select {
			case <-b.late.ctx.Done():
				t.Stop()
				b.deps.Logger.Error("stopped before it succeeded: "+what, "reason", "shutting down")
				return
			case <-t.C:
			}
			err := f(b.late.ctx)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				b.deps.Logger.Error("gave up: "+what, "error", err)
				return
			}
			wait = min(2*wait, 10*time.Second)
		}
	})
}

// backgroundRetryLimit bounds the retries of retryInBackground.
const backgroundRetryLimit = 10 * time.Minute

// authenticated is a request whose envelope was read and whose signature verified: info and data
// are taken from what the signature covers (data is the single element of requestData/data).
type authenticated struct {
	info     siobroker.RequestInfo
	data     *etree.Element
	verified *signing.Verified
	now      time.Time
}

// authenticate reads the envelope, checks the message date and verifies the signature, noting in
// seen what it learnt, for the journal of a refusal.
func (b *Broker) authenticate(ctx context.Context, body io.Reader, contentType string, seen *Request) (authenticated, error) {
	start := time.Now()
	sr, err := intake.ReadSigned(ctx, body, contentType, b.cfg.Limits, b.cfg.ReplayWindow, b.deps.Clock, b.deps.Verifier.Verify)
	b.observe(StageVerify, start)
	return b.authenticated(sr, err, seen)
}

// authenticateRead is authenticate for a SendMessage envelope already read.
func (b *Broker) authenticateRead(ctx context.Context, doc *etree.Document, raw []byte, seen *Request) (authenticated, error) {
	start := time.Now()
	sr, err := intake.VerifySendMessage(ctx, doc, b.cfg.ReplayWindow, b.deps.Clock, b.deps.Verifier.Verify)
	sr.Raw = raw
	b.observe(StageVerify, start)
	return b.authenticated(sr, err, seen)
}

// authenticated notes in seen what reading and verifying a request learnt, for the journal of a
// refusal, and returns the authenticated request.
func (b *Broker) authenticated(sr intake.SignedRequest, err error, seen *Request) (authenticated, error) {
	seen.raw, seen.doc = sr.Raw, sr.Doc
	seen.MessageID, seen.SenderID = sr.Info.MessageID, sr.Info.SenderID
	if sr.Verified != nil {
		seen.SignerIIN, seen.Placement = sr.Verified.SignerIIN, sr.Verified.Placement
		seen.signerVerified = true
	}
	if err != nil {
		return authenticated{}, err
	}
	if err := b.limitSigner(sr.Verified.SignerIIN); err != nil {
		return authenticated{}, err
	}
	return authenticated{info: sr.Info, data: sr.Data, verified: sr.Verified, now: sr.Now}, nil
}

// parseQuery validates the q:query of an authenticated request.
func parseQuery(a authenticated) (siobroker.Query, error) {
	q, err := soap.ParseQuery(a.data)
	if err != nil {
		return q, err
	}
	if err := validateSubject(q.Subject); err != nil {
		return q, err
	}
	return q, nil
}

// recordRequest records an authenticated request as seen (its replay marks), refusing a replay,
// then authorises its signer, then journals the request, each step only once the one before
// passed: the order is the same with Deps.Together, where the three are one transaction. It
// returns the signer's user and the signed content's digest, "" when the marks were not
// recorded (then there is nothing to release).
//
// A refusal keeps the writes made before it: a replay's marks (a new messageId of signed content
// seen before stays recorded), the marks and the registry's record of the refusal of a signer
// the registry refuses. Only a request whose signer is authorised is journaled here; the others'
// refusal records carry the raw request (journalRefusal).
func (b *Broker) recordRequest(ctx context.Context, a authenticated, seen *Request, received time.Time) (siobroker.User, string, error) {
	var (
		user     siobroker.User
		digest   string
		verdict  replayVerdict
		refusal  error
		appendAt time.Time // when the request's record began to be appended
	)
	start := time.Now()
	err := b.together(ctx, func(ctx context.Context) error {
		// The id is recorded only after the signature verified, so that unsigned traffic cannot
		// burn the ids of a legitimate sender.
		d, v, err := b.markReplay(ctx, a.info, a.verified, a.now, seen.RequestID)
		b.observe(StageReplay, start)
		if err != nil {
			return err
		}
		digest, verdict = d, v
		if verdict != replayFresh && verdict != replayReleased {
			return nil
		}
		// The role comes from the registry, by the certificate's IIN; nothing in the request
		// names it.
		authorizeAt := time.Now()
		u, err := b.deps.Users.Authorize(ctx, a.verified.SignerIIN)
		b.observe(StageAuthorize, authorizeAt)
		if err != nil {
			refusal = err
			return nil
		}
		user = u
		seen.Role, seen.Organisation = u.Role, u.Organisation
		// The request is journaled once its signer and organisation are known, so that reports
		// and exports by user and organisation find it; before any further decision, so that
		// nothing the broker then does with it is unjournaled. A refusal before this point,
		// after the signature verified, carries the raw request in its own record
		// (journalRefusal).
		rec := b.record(*seen, received, siobroker.JournalRequest, 0, "", seen.raw)
		appendAt = time.Now()
		if _, err := b.deps.Journal.Append(ctx, rec); err != nil {
			return siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot journal the request now; retry later")
		}
		return nil
	})
	if !appendAt.IsZero() {
		b.observe(StageJournalRequest, appendAt)
	}
	if err != nil {
		if b.deps.Together != nil {
			// One transaction: none of its writes was made, the marks neither, and a retry the
			// store could not release before is still to be taken.
			if verdict == replayReleased {
				b.unreleased.Store(digest, struct{}{})
			}
			digest = ""
		}
		var coded *siobroker.Error
		if !errors.As(err, &coded) {
			// The transaction failed as a whole: not taken in time, or not committed.
			err = siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot record the request now; retry later")
		}
		return siobroker.User{}, digest, err
	}
	if verdict != replayFresh && verdict != replayReleased {
		return siobroker.User{}, "", b.replayRefusal(ctx, a.info.MessageID, a.verified.SignerIIN, verdict)
	}
	if refusal != nil {
		return siobroker.User{}, digest, refusal
	}
	seen.requestJournaled = true
	b.hintIndex(seen)
	return user, digest, nil
}

// hintIndex hands the request index the query of the request just journaled (Deps.IndexHint),
// and lets the envelope's tree go: nothing after the journal reads it, and a request waiting for
// late services should not keep it.
func (b *Broker) hintIndex(seen *Request) {
	doc := seen.doc
	seen.doc = nil
	if b.deps.IndexHint == nil || doc == nil {
		return
	}
	if q, err := soap.JournaledQueryOfTree(doc); err == nil {
		b.deps.IndexHint(seen.RequestID, len(seen.raw), q)
	}
}

// serve runs the checks after the replay defence, and routes: every refusal here comes after the
// request was recorded as seen.
func (b *Broker) serve(ctx context.Context, info siobroker.RequestInfo, q siobroker.Query, verified *signing.Verified, user siobroker.User,
	seen *Request, received time.Time) (*Reply, error) {
	if err := b.admit(ctx, info, &q, verified, user, seen, received); err != nil {
		return nil, err
	}
	job := b.jobOf(*seen, info, q, received)
	if err := b.holdSync(ctx, &job); err != nil {
		return nil, err
	}
	seen.accepted = b.deps.Async != nil
	if b.cfg.AsyncTimeout > 0 && b.deps.Async != nil {
		return b.processSync(ctx, job)
	}
	reply, err := b.process(ctx, job, true)
	b.settleSync(ctx, job, reply, err)
	return reply, err
}

// holdSync stores an admitted synchronous request ON_DELIVERY (siobroker.SyncChannel), leased to
// this call for as long as its services may take, so that a crash, or a reply that cannot be
// journaled, leaves it to the AsyncWorker to complete rather than unfinished.
func (b *Broker) holdSync(ctx context.Context, job *siobroker.AsyncJob) error {
	if b.deps.Async == nil {
		return nil
	}
	longest := b.cfg.AsyncTimeout
	for _, svc := range job.Query.Services {
		longest = max(longest, b.cfg.Timeout(svc))
	}
	job.State, job.Channel, job.Updated = siobroker.AsyncOnDelivery, siobroker.SyncChannel, job.Received
	job.LeaseUntil = job.Received.Add(longest + time.Minute)
	job.TraceParent = traceParent(ctx)
	if err := b.deps.Async.CreateAsync(ctx, *job); err != nil {
		return siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot store the request now; retry later")
	}
	return nil
}

// syncRetryAfter is how soon the AsyncWorker takes up a synchronous request whose reply could not
// be journaled: a journal that failed is given a little time to mend.
const syncRetryAfter = 15 * time.Second

// settleSync ends the hold of a synchronous request: forgotten once its reply was journaled and
// given out (err nil); else leased to the AsyncWorker shortly, which completes it from the
// answers held and the journal. A failure here is only logged: the worker finds a job whose reply
// is journaled complete, and completes it from the journal.
//
// A reply that was journaled with the end of the hold (journalAnswered) has nothing left to settle.
func (b *Broker) settleSync(ctx context.Context, job siobroker.AsyncJob, reply *Reply, err error) {
	if b.deps.Async == nil || job.Channel != siobroker.SyncChannel || (err == nil && reply != nil && reply.settled) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	ids := reqlog.Attrs(job.Info.MessageID, job.RequestID)
	if storeTimedOut(err) {
		// The store did not take a write in time: leasing the job now would wait for it again.
		// Until the lease is moved the hold's own lease stands, after which the worker takes the
		// request up anyway.
		b.deps.Logger.Warn("synchronous request unfinished; it is handed to the worker once the store takes writes", append(ids, "error", err)...)
		b.retryInBackground("hand "+job.RequestID+" to the worker", func(ctx context.Context) error {
			_, err := b.deps.Async.LeaseAsync(ctx, job.RequestID, b.deps.Clock.Now().Add(syncRetryAfter))
			return err
		})
		return
	}
	if err == nil {
		if ferr := b.deps.Async.ForgetSync(ctx, job.RequestID); ferr != nil {
			b.deps.Logger.Warn("answered synchronous request not forgotten; the worker will close it from the journal", append(ids, "error", ferr)...)
		}
		return
	}
	if _, lerr := b.deps.Async.LeaseAsync(ctx, job.RequestID, b.deps.Clock.Now().Add(syncRetryAfter)); lerr != nil {
		b.deps.Logger.Error("unfinished synchronous request not handed to the worker; it resumes at the next start", append(ids, "error", lerr)...)
		return
	}
	b.deps.Logger.Warn("synchronous request unfinished; the worker completes it", append(ids, "error", err)...)
}

// jobOf is what Process needs of an admitted request. Its reply gets a messageId of its own, for
// the gateway's AsyncChannel v10, whichever channel the request came by.
func (b *Broker) jobOf(seen Request, info siobroker.RequestInfo, q siobroker.Query, received time.Time) siobroker.AsyncJob {
	return siobroker.AsyncJob{
		RequestID: seen.RequestID, MessageID: info.MessageID, SenderID: info.SenderID, SignerIIN: seen.SignerIIN,
		Organisation: seen.Organisation, Role: seen.Role, Placement: string(seen.Placement),
		Info: info, Query: q, Received: received, ReplyMessageID: b.deps.NewID(),
	}
}

// admit runs the checks after the request was recorded as seen, its signer authorised as user and
// the request journaled (recordRequest): the role, the case rules and the case registry, whose
// qualification of the case it puts in q (CaseArticles) for the services' decisions.
func (b *Broker) admit(ctx context.Context, info siobroker.RequestInfo, q *siobroker.Query, verified *signing.Verified, user siobroker.User,
	seen *Request, received time.Time) error {
	if !b.deps.Rights.RoleMayUse(user.Role, q.Basis) {
		if q.Basis.OfLaw() {
			// The Rules give the Law's bases of §1 no rights; they are closed until the operator
			// configures them, and the sender should learn that it is that, not their role.
			return siobroker.Errorf(siobroker.CodeRoleBasis,
				"role %d of user %s may not make requests under basis %d (%s, %s): the Rules give it no rights, and the operator has not configured it for the role from the Law",
				user.Role, user.IIN, q.Basis, q.Basis.Name(), q.Basis.LegalReference())
		}
		return siobroker.Errorf(siobroker.CodeRoleBasis,
			"role %d of user %s may not make requests under basis %d (Appendix 1)", user.Role, user.IIN, q.Basis)
	}
	if err := b.deps.Cases.Validate(q.Basis, q.Case); err != nil {
		return err
	}
	if err := b.allInMaintenance(q.Services, received); err != nil {
		return err
	}
	requestID := seen.RequestID
	start := time.Now()
	var err error
	q.CaseArticles, err = b.verifyCase(ctx, requestID, info.MessageID, *q, verified.SignerIIN, user.Role)
	b.observe(StageCaseCheck, start)
	if err != nil {
		return err
	}
	start = time.Now()
	err = b.deps.Users.Touch(ctx, user)
	b.observe(StageTouch, start)
	if err != nil {
		return siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot record the request now; retry later")
	}
	if b.deps.Certificates != nil && verified.CertificateInMessage && verified.Certificate != nil {
		// Not a refusal: the request is good, and the certificate is only learnt for later
		// requests that name it by an identifier; the next request carrying it tries again.
		if err := b.deps.Certificates.Learn(ctx, user, verified.Certificate); err != nil {
			b.deps.Logger.WarnContext(ctx, "the signer's certificate could not be recorded",
				append(reqlog.Attrs(info.MessageID, seen.RequestID), "error", err)...)
		}
	}
	return nil
}

// Process routes an admitted request, signs the reply in the request's placement and journals it:
// the second half of the synchronous pipeline, and the asynchronous worker's work when no late
// services are waited for (see processAsync). job was
// admitted (every check passed and the request journaled) before.
func (b *Broker) Process(ctx context.Context, job siobroker.AsyncJob) (*Reply, error) {
	return b.process(ctx, job, false)
}

// process is Process; answering is true for the synchronous call that answers the client
// (serve), which admitted the request and routes it for the first time (routing.FirstDispatch),
// and whose request's hold the reply's journal records may end (journalAnswered).
func (b *Broker) process(ctx context.Context, job siobroker.AsyncJob, answering bool) (*Reply, error) {
	seen := Request{
		RequestID: job.RequestID, Organisation: job.Organisation, MessageID: job.Info.MessageID, SenderID: job.Info.SenderID,
		SignerIIN: job.SignerIIN, Role: job.Role, Placement: signing.Placement(job.Placement), requestJournaled: true,
	}
	ctx = reqlog.With(ctx, job.Info.MessageID, job.RequestID)
	if answering {
		// Admitted by this call and routed for the first time.
		ctx = routing.FirstDispatch(ctx, job.RequestID)
	}
	exchanges := b.route(ctx, job.RequestID, job.Info, job.Query, job.SignerIIN)
	if ctx.Err() != nil && job.Channel == siobroker.SyncChannel && b.deps.Async != nil {
		// The client went away: its services' waits ended early, and are no outcome. The worker
		// completes the request with the answers they get.
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, ctx.Err(), "the request was cancelled before its services answered")
	}
	res := results(exchanges)
	out, err := b.reply(job.RequestID, job.Info, job.Query, &signing.Verified{SignerIIN: job.SignerIIN, Placement: seen.Placement}, res, "")
	if err != nil {
		return nil, err
	}
	settled, err := b.journalAnswered(ctx, job, seen, exchanges, out, nil, answering)
	if err != nil {
		// A reply that is not in the journal is not given out: the Rules keep every result.
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot journal the reply now; retry later")
	}
	b.recordHeldLate(ctx, job, exchanges)
	return &Reply{Bytes: out, MessageID: job.RequestID, RequestID: job.Info.MessageID, SignerIIN: job.SignerIIN, Services: res, settled: settled}, nil
}

// journalAnswered journals a reply (journalReply) and, for the synchronous call answering the
// client (answering) of a request held for delivery (holdSync), ends the hold in the same
// transaction (Deps.Together): one commit where there were two. It reports whether it settled the
// hold, ended or, if that failed, left to the worker as settleSync does: settleSync then has
// nothing left to do.
//
// Only a reply with nothing left for the request's completion does: every service's outcome
// recorded (no late service pending) and none that recordHeldLate may still have to record late
// (a timeout, an error without an answer), so that the hold, which a broker stopped before that
// finds again, is not ended first.
func (b *Broker) journalAnswered(ctx context.Context, job siobroker.AsyncJob, seen Request, exchanges []exchange, out []byte, pending []int,
	answering bool) (settled bool, err error) {
	if !answering || b.deps.Async == nil || job.Channel != siobroker.SyncChannel || len(pending) > 0 || b.mayHoldLate(exchanges) {
		return false, b.journalReply(ctx, seen, job.Received, exchanges, out, pending)
	}
	defer b.observe(StageJournalReply, time.Now())
	err = b.together(ctx, func(ctx context.Context) error {
		settled = false
		if err := b.appendReply(ctx, seen, job.Received, exchanges, out, pending); err != nil {
			return err
		}
		// A failure here undoes only the forgetting, as settleSync's would leave it: the worker
		// closes the request from the journal.
		if ferr := b.deps.Async.ForgetSync(ctx, job.RequestID); ferr != nil {
			b.deps.Logger.Warn("answered synchronous request not forgotten; the worker will close it from the journal",
				append(reqlog.Attrs(job.Info.MessageID, job.RequestID), "error", ferr)...)
		}
		settled = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return settled, nil
}

// exchange is one requested service's outcome with the times the journal keeps.
type exchange = routing.Outcome

// journalReply appends, in one step, a record per requested service with its four times and the
// signed reply itself.
//
// An exchange record is a service's outcome, kept once (AppendOnce): a service still awaited
// in the background (pending) gets its record when its wait ends, and one recorded by an earlier
// run of a resumed request is not recorded again.
func (b *Broker) journalReply(ctx context.Context, seen Request, received time.Time, exchanges []exchange, reply []byte, pending []int) error {
	defer b.observe(StageJournalReply, time.Now())
	return b.appendReply(ctx, seen, received, exchanges, reply, pending)
}

// appendReply is journalReply, unobserved.
func (b *Broker) appendReply(ctx context.Context, seen Request, received time.Time, exchanges []exchange, reply []byte, pending []int) error {
	sent := b.deps.Clock.Now()
	recs := make([]siobroker.JournalRecord, 0, len(exchanges)+1)
	for _, e := range exchanges {
		if slices.Contains(pending, e.Result.Service) {
			continue
		}
		data, err := json.Marshal(struct {
			Times   siobroker.ExchangeTimes `json:"times"`
			Status  siobroker.ResultStatus  `json:"status"`
			Reason  string                  `json:"reason"`
			Adapter string                  `json:"adapter,omitempty"`
			Records int                     `json:"records"`
			// AnswerDigest: the answer the reply carries (routing.AnswerDigest), by which a copy
			// of it delivered again is not taken for a late answer (LateAnswers.Record).
			AnswerDigest string `json:"answerDigest,omitempty"`
		}{
			Times:  siobroker.ExchangeTimes{Received: received, Dispatched: e.DispatchedAt, Answered: e.AnsweredAt, ReplySent: sent},
			Status: e.Result.Status, Reason: e.Result.Reason, Adapter: e.Adapter, Records: len(e.Result.Records),
			AnswerDigest: repliedDigest(e),
		})
		if err != nil {
			return fmt.Errorf("encode exchange of service %d: %w", e.Result.Service, err)
		}
		recs = append(recs, b.record(seen, sent, siobroker.JournalExchange, e.Result.Service,
			string(e.Result.Status)+"/"+e.Result.Reason, data))
	}
	recs = append(recs, b.record(seen, sent, siobroker.JournalReply, 0, "", reply))
	if _, err := b.deps.Journal.AppendOnce(ctx, recs...); err != nil {
		return fmt.Errorf("journal reply %s: %w", seen.RequestID, err)
	}
	return nil
}

// repliedDigest is the digest of the answer whose result e records, for its exchange record; ""
// when e records no answer (a timeout or the broker's error), even if one came after its wait:
// that answer is late, and LateAnswers.Record must not take it for the reply's (inReply).
func repliedDigest(e exchange) string {
	if unanswered(e) {
		return ""
	}
	return e.AnswerDigest
}

// journalRefusal records a refused request with its fault code and message. It cannot refuse
// anything further, so a failure to journal is logged loudly.
//
// A request refused after its signature verified keeps its raw bytes in the refusal, when no
// request record holds them: its signer is known and answers for them. One refused before that
// is anyone's: its refusal keeps the body's size, digest and prefix only, and only so many such
// refusals are journaled one by one (refuseUnauthenticated). So do the refusals of a signer over
// its limits (refuseSignerLimited), which come as a flood comes.
func (b *Broker) journalRefusal(ctx context.Context, seen Request, cause error) {
	var data []byte
	switch {
	case !seen.signerVerified:
		var journal bool
		if data, journal = b.refuseUnauthenticated(ctx, &seen, cause); !journal {
			return
		}
	case siobroker.ErrorCode(cause) == siobroker.CodeRateLimited:
		var journal bool
		if data, journal = b.refuseSignerLimited(ctx, &seen, cause); !journal {
			return
		}
	default:
		refusal := struct {
			Message string `json:"message"`
			Request []byte `json:"request,omitempty"` // the raw request, when no request record holds it
		}{Message: siobroker.ErrorMessage(cause)}
		if !seen.requestJournaled {
			refusal.Request = seen.raw
		}
		data, _ = json.Marshal(refusal)
	}
	rec := b.record(seen, b.deps.Clock.Now(), siobroker.JournalRefusal, 0, string(siobroker.ErrorCode(cause)), data)
	err := cause // a store that did not take a write in time is not waited for again
	if !storeTimedOut(cause) {
		_, err = b.deps.Journal.Append(context.WithoutCancel(ctx), rec)
	}
	if err != nil {
		// A journal that refused the request (locked, busy) refuses its refusal too: it is
		// appended once the journal takes it, with the time it was made.
		b.deps.Logger.WarnContext(ctx, "refusal not journaled yet; it is appended in the background", reqlog.KeyCorrelationID, seen.RequestID,
			reqlog.KeyMessageID, seen.MessageID, "code", siobroker.ErrorCode(cause), "error", err)
		b.retryInBackground("journal the refusal of "+seen.RequestID, func(ctx context.Context) error {
			_, err := b.deps.Journal.Append(ctx, rec)
			return err
		})
	}
}

func (b *Broker) record(seen Request, at time.Time, kind siobroker.JournalKind, service int, code string, data []byte) siobroker.JournalRecord {
	return siobroker.JournalRecord{
		At: at, Kind: kind, RequestID: seen.RequestID, MessageID: seen.MessageID, SignerIIN: seen.SignerIIN,
		Organisation: seen.Organisation, Service: service, Code: code, Data: data,
	}
}

// checkReplay refuses a messageId seen before and, because requestInfo is outside an enveloped
// signature, signed content seen before under any messageId. It returns the content's digest.
// admitting is the broker's id of a request to be served, "" for the other calls: the marks of
// one record its admission until it is accepted or refused (CloseInterrupted).
func (b *Broker) checkReplay(ctx context.Context, info siobroker.RequestInfo, v *signing.Verified, now time.Time, admitting string) (string, error) {
	digest, verdict, err := b.markReplay(ctx, info, v, now, admitting)
	if err != nil {
		return "", err
	}
	if verdict != replayFresh && verdict != replayReleased {
		return "", b.replayRefusal(ctx, info.MessageID, v.SignerIIN, verdict)
	}
	return digest, nil
}

// replayVerdict is what a call's replay marks say of it.
type replayVerdict int

const (
	replayFresh replayVerdict = iota
	// replayReleased: seen before, but refused for a passing reason of the broker's own while
	// the store could not forget its marks; the retry the fault invited is taken.
	replayReleased
	replayOfID      // its messageId was received before
	replayOfContent // its signed content was, under another messageId (or a call without one)
)

// markReplay records the replay marks of a call (checkReplay) and says what they found, with the
// content's digest. It reads nothing but the marks, so that it may run in a transaction
// (recordRequest); replayRefusal is the refusal of a replay.
func (b *Broker) markReplay(ctx context.Context, info siobroker.RequestInfo, v *signing.Verified, now time.Time, admitting string) (string, replayVerdict, error) {
	digest := signedDigest(v.SignerIIN, v.Signed)
	mark := siobroker.ReplayMark{Key: replayKey(info.MessageID, digest), SenderID: info.SenderID, Digest: digest, At: now}
	if admitting != "" {
		mark.RequestID, mark.SignerIIN = admitting, v.SignerIIN
	}
	idFresh, contentFresh, err := b.deps.Replay.MarkRequest(ctx, mark)
	if err != nil {
		return "", replayFresh, siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot record the request now; retry later")
	}
	if !idFresh || !contentFresh {
		if _, released := b.unreleased.LoadAndDelete(digest); released {
			// Refused for a passing reason of the broker's own while the store could not forget
			// it: the retry the fault invited is taken.
			return digest, replayReleased, nil
		}
	}
	switch {
	case !idFresh && info.MessageID != "":
		return digest, replayOfID, nil
	case !idFresh || !contentFresh:
		return digest, replayOfContent, nil
	}
	return digest, replayFresh, nil
}

// replayRefusal is the refusal of a call whose replay marks found it seen before (verdict).
func (b *Broker) replayRefusal(ctx context.Context, messageID, signerIIN string, verdict replayVerdict) error {
	if verdict == replayOfID {
		return b.replayOfAccepted(ctx, messageID, signerIIN)
	}
	return siobroker.Errorf(siobroker.CodeReplayID,
		"this signed content has already been received; sign every request anew (in the enveloped placement give each query its own Id)")
}

// replayOfAccepted is the refusal of a messageId received before. When its signer's request with
// that id was accepted and is held (asynchronous, or synchronous and not yet answered: a broker
// that stopped mid-request completes it), the fault names the broker's id, by which the client
// fetches the reply on the asynchronous channel: a client whose connection dropped retries as it
// was sent, and learns where its answer is. Only the signer learns it.
func (b *Broker) replayOfAccepted(ctx context.Context, messageID, signerIIN string) error {
	if b.deps.Async != nil {
		job, ok, err := b.deps.Async.AsyncJobOfClient(ctx, signerIIN, messageID)
		if err != nil {
			b.deps.Logger.WarnContext(ctx, "a replayed messageId's request could not be looked up", "error", err)
		}
		if ok {
			return siobroker.Errorf(siobroker.CodeReplayID,
				"messageId %q has already been received and was accepted as %s (%s): fetch its reply on the asynchronous channel by that id",
				messageID, job.RequestID, job.State)
		}
	}
	return siobroker.Errorf(siobroker.CodeReplayID, "messageId %q has already been received", messageID)
}

// replayKey is what a request's id is recorded as: its messageId, or, for the gateway's
// AsyncChannel calls that carry none (a sendMessage REQUEST leaves it to the gateway, the queries
// have none), its signed content.
func replayKey(messageID, digest string) string {
	if messageID == "" {
		return "content:" + digest
	}
	return messageID
}

// signedDigest is the SHA-256 of the signer's IIN and the signed element as the verifier rebuilt
// it from the digested canonical bytes, so equal signed content from one signer always gives the
// same digest, and two signers never collide. The digests are kept in the replay store, so the
// bytes hashed are exactly etree's serialisation of the element as the root of a document of
// its own, with the default write settings; they are written into a pooled buffer instead of a
// copy of the tree and a document around it (issue 20).
func signedDigest(signerIIN string, signed *etree.Element) string {
	buf := digestBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	buf.WriteString(signerIIN)
	buf.WriteByte('\n')
	signed.WriteTo(buf, &etree.WriteSettings{})
	sum := sha256.Sum256(buf.Bytes())
	if buf.Cap() <= maxPooledDigestBuffer {
		digestBuffers.Put(buf)
	}
	return hex.EncodeToString(sum[:])
}

// digestBuffers holds the buffers signedDigest serialises into; maxPooledDigestBuffer is the
// largest one kept, so that one large request does not keep its buffer alive for good.
var digestBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledDigestBuffer = 256 << 10

// verifyCase asks the registry configured for the basis about the case, and decides from its
// answer (the case's status and the people in its proceedings with their part) whether the case
// is in the proceedings of the signer, a user of role (§5). It returns the case's articles, which
// the footnote-2 services are decided on. Basis 3 is exempt (§23): it returns no articles; the
// configuration cannot name a registry for it, and serve refuses to start when another basis has
// none.
func (b *Broker) verifyCase(ctx context.Context, requestID, messageID string, q siobroker.Query, signerIIN string, role int) ([]string, error) {
	name, ok := b.deps.Cases.Registry(q.Basis)
	if !ok {
		return nil, nil
	}
	resp, err := b.deps.Registry.CheckCase(ctx, name, schemas.CaseCheckRequest{
		RequestID: requestID, MessageID: messageID, Basis: q.Basis, Case: q.Case, SignerIIN: signerIIN,
	}, b.deps.Cases.CheckTimeout())
	switch {
	case errors.Is(err, routing.ErrTransportUnavailable):
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err,
			"the message transport is unavailable, so the case registry %s cannot be asked; the request was not accepted, retry later", name)
	case err != nil:
		return nil, siobroker.Wrap(siobroker.CodeUnavailable, err, "the case registry %s did not answer; the request was not accepted, retry later", name)
	}
	facts := resp.Facts()
	if err := b.deps.Cases.CheckProceedings(role, q.Basis, signerIIN, q.Case, name, resp.Found, facts); err != nil {
		attrs := append(reqlog.Attrs(messageID, requestID), "registry", name, "found", resp.Found, "status", resp.Status,
			"participants", len(resp.Participants), "signer_parts", facts.PartsOf(signerIIN))
		if resp.Found && len(resp.Participants) == 0 {
			// An answer without participants comes from a registry adapter older than them (it
			// may still say inProceedings): the broker does not decide on the registry's word.
			b.deps.Logger.WarnContext(ctx, "case check refused: the registry named no participants; update its adapter", attrs...)
		} else {
			b.deps.Logger.InfoContext(ctx, "case check refused", attrs...)
		}
		return nil, err
	}
	// Not nil: the registry said, even if it gave no articles.
	return append([]string{}, resp.Articles...), nil
}

func validateSubject(s siobroker.Subject) error {
	if s.IIN != "" {
		if err := siobroker.ValidateIIN(s.IIN); err != nil {
			return &siobroker.Error{Code: siobroker.CodeSubject, Field: "query/subject/iin", Message: "query/subject/iin: " + err.Error()}
		}
	}
	if s.BIN != "" {
		if err := siobroker.ValidateIIN(s.BIN); err != nil {
			return &siobroker.Error{Code: siobroker.CodeSubject, Field: "query/subject/bin", Message: "query/subject/bin: " + err.Error()}
		}
	}
	return nil
}

// route decides each service, dispatches the allowed ones and merges everything back into the
// order the client asked in.
func (b *Broker) route(ctx context.Context, requestID string, info siobroker.RequestInfo, q siobroker.Query, signerIIN string) []exchange {
	defer b.observe(StageServices, time.Now())
	results, decisions, reqs, slots := b.decide(requestID, info, q, signerIIN)
	if len(reqs) > 0 {
		outcomes := b.deps.Dispatcher.Dispatch(ctx, reqs, b.cfg.Timeout)
		for j, o := range outcomes {
			results[slots[j]] = b.finish(o, decisions[slots[j]])
		}
	}
	b.logResults(ctx, requestID, info, results)
	return results
}

// finish applies the truncation a service's decision asks for.
func (b *Broker) finish(o exchange, d siobroker.Decision) exchange {
	if d.Access == siobroker.AccessTruncated {
		o.Result = truncate(o.Result, b.deps.Rights.TruncatedFields(o.Result.Service))
	}
	return o
}

func (b *Broker) logResults(ctx context.Context, requestID string, info siobroker.RequestInfo, results []exchange) {
	for _, e := range results {
		r := e.Result
		b.deps.Logger.InfoContext(ctx, "service result", append(reqlog.Attrs(info.MessageID, routing.CorrelationKey(requestID, r.Service)),
			"service", r.Service, "status", r.Status, "reason", r.Reason)...)
	}
}

// decide decides each service: the denied ones are answered in results, the allowed ones are
// returned as requests with the index of their slot in results.
func (b *Broker) decide(requestID string, info siobroker.RequestInfo, q siobroker.Query, signerIIN string) ([]exchange, []siobroker.Decision, []schemas.ServiceRequest, []int) {
	results := make([]exchange, len(q.Services))
	decisions := make([]siobroker.Decision, len(q.Services))
	var reqs []schemas.ServiceRequest
	var slots []int
	for i, svc := range q.Services {
		d := b.deps.Rights.DecideService(q.Basis, svc, q.Qualification())
		decisions[i] = d
		if !d.Allowed {
			results[i] = exchange{Result: siobroker.ServiceResult{Service: svc, Status: siobroker.StatusDenied, Reason: d.Reason, Message: d.Explanation}}
			b.deps.Dispatcher.CountUndispatched(results[i].Result)
			continue
		}
		if w, ok := b.inMaintenance(svc); ok {
			results[i] = exchange{Result: siobroker.ServiceResult{Service: svc, Status: siobroker.StatusError,
				Reason: siobroker.ReasonMaintenance, Message: fmt.Sprintf("service %d is unavailable: %s", svc, w.Describe())}}
			b.deps.Dispatcher.CountUndispatched(results[i].Result)
			continue
		}
		reqs = append(reqs, schemas.ServiceRequest{
			RequestID: requestID, MessageID: info.MessageID, Service: svc, Basis: q.Basis, Case: q.Case,
			Article: q.Article, Subject: q.Subject, SignerIIN: signerIIN,
		})
		slots = append(slots, i)
	}
	return results, decisions, reqs, slots
}

// inMaintenance returns the maintenance window service svc is in now, if any.
func (b *Broker) inMaintenance(svc int) (siobroker.MaintenanceWindow, bool) {
	if b.deps.Maintenance == nil {
		return siobroker.MaintenanceWindow{}, false
	}
	return b.deps.Maintenance.Active(svc, b.deps.Clock.Now())
}

// allInMaintenance refuses a request every service of which is in a maintenance window: there is
// nothing to ask, and the fault names the window after which to retry. A request with some
// services available is served, and the others are answered MAINTENANCE one by one.
func (b *Broker) allInMaintenance(services []int, at time.Time) error {
	if b.deps.Maintenance == nil || len(services) == 0 {
		return nil
	}
	var last siobroker.MaintenanceWindow
	for _, svc := range services {
		w, ok := b.deps.Maintenance.Active(svc, at)
		if !ok {
			return nil
		}
		if w.End.After(last.End) {
			last = w
		}
	}
	return siobroker.Errorf(siobroker.CodeMaintenance,
		"every requested service is unavailable during %s; retry after it ends", last.Describe())
}

// truncate removes the named fields from every record, whatever the adapter sent: the Rules
// forbid the data, so the broker enforces it rather than trusting each adapter.
func truncate(r siobroker.ServiceResult, fields []string) siobroker.ServiceResult {
	if len(fields) == 0 {
		return r
	}
	records := make([]siobroker.Record, len(r.Records))
	for i, rec := range r.Records {
		kept := make([]siobroker.Field, 0, len(rec.Fields))
		for _, f := range rec.Fields {
			if !slices.Contains(fields, f.Name) {
				kept = append(kept, f)
			}
		}
		records[i] = siobroker.Record{Type: rec.Type, Fields: kept}
	}
	r.Records = records
	return r
}

// Status codes of responseInfo/status.
const (
	StatusProcessed = "SCSS001" // every service answered (ok or denied)
	StatusPartial   = "PART001" // at least one service ended in error or timeout
)

func (b *Broker) reply(requestID string, info siobroker.RequestInfo, q siobroker.Query, v *signing.Verified, results []siobroker.ServiceResult, note string) ([]byte, error) {
	defer b.observe(StageSign, time.Now())
	answered, failed := 0, 0
	for _, r := range results {
		switch r.Status {
		case siobroker.StatusOK:
			answered++
		case siobroker.StatusError, siobroker.StatusTimeout:
			failed++
		}
	}
	status, message := StatusProcessed, fmt.Sprintf("processed: %d of %d services answered", answered, len(results))
	if failed > 0 {
		status = StatusPartial
		message = fmt.Sprintf("partly processed: %d of %d services answered, %d failed or timed out", answered, len(results), failed)
	}
	message += note
	doc := soap.NewResponse(soap.ResponseInfo{
		MessageID:     requestID,
		CorrelationID: info.MessageID,
		ResponseDate:  b.deps.Clock.Now(),
		StatusCode:    status,
		StatusMessage: message,
		SessionID:     info.SessionID,
	}, soap.Result{
		// A request of the gateway's AsyncChannel v10 carries no messageId of its own (the
		// contract leaves it to the gateway): its result names the broker's id, its chain.
		RequestMessageID: cmp.Or(info.MessageID, requestID),
		SignerIIN:        v.SignerIIN,
		Basis:            q.Basis,
		Subject:          q.Subject,
		Services:         results,
	})
	if err := b.deps.Signer.Sign(doc, v.Placement); err != nil {
		return nil, fmt.Errorf("sign reply %s: %w", requestID, err)
	}
	out, err := soap.Serialize(doc)
	if err != nil {
		return nil, fmt.Errorf("serialize reply %s: %w", requestID, err)
	}
	return out, nil
}
