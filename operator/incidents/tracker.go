package incidents

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sio-pso/siobroker"
)

// The defaults of Config.
const (
	DefaultThreshold  = time.Hour // §39: a delay of more than one hour is an emergency
	DefaultCheckEvery = time.Minute
	DefaultSettle     = 30 * time.Second
)

// trackerBy is who the tracker's changes are recorded as made by.
const trackerBy = "siobroker"

// NoteResumed is the close note of an incident the tracker closed.
const NoteResumed = "delivery resumed"

// Config tunes a Tracker. Zero fields take the defaults; negative ones are refused.
type Config struct {
	Threshold  time.Duration // a message waiting longer than this opens an incident; default 1h
	CheckEvery time.Duration // how often Run checks; default 1m
	// Settle is how long a failure of the broker's own parts (Report) must have stayed cleared
	// before its incident is closed, at the time it cleared; a failure within it continues the
	// same incident, so that a part failing on and off (a journal timing out under load) is one
	// incident, not one a second. Default 30s.
	Settle time.Duration
}

func (c *Config) setDefaults() {
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.CheckEvery == 0 {
		c.CheckEvery = DefaultCheckEvery
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
}

// Validate reports what is wrong with c once its defaults are applied.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Threshold < 0 {
		errs = append(errs, fmt.Errorf("incidents: Config.Threshold must not be negative, got %s", c.Threshold))
	}
	if c.CheckEvery < 0 {
		errs = append(errs, fmt.Errorf("incidents: Config.CheckEvery must not be negative, got %s", c.CheckEvery))
	}
	if c.Settle < 0 {
		errs = append(errs, fmt.Errorf("incidents: Config.Settle must not be negative, got %s", c.Settle))
	}
	return errors.Join(errs...)
}

// Tracker knows every message not yet delivered, on every leg the broker is responsible for:
// the request to the adapter (leg "request", cause = the service's queue/topic) and the
// adapter's answer back to the broker (leg "answer"). A finished reply waiting for a client to
// fetch it is not tracked.
//
// Keys are opaque; a key names one message on one leg at a time. Sent with a key already on
// another leg moves the message on: it counts as delivered on the leg it left.
//
// Sent, Delivered and Failed only touch memory and are cheap: they are called on the hot path.
// Check does the store and journal work.
//
// Affected counts the distinct messages of the cause found waiting by a Check while the incident
// was open (the closing Check excepted), whether they were late then or not: a message queued
// behind a stopped adapter is held up by the emergency from the moment it is queued.
//
// Open incidents survive a restart of the broker in the store. The first Check adopts the open
// delivery-delay incidents it finds there; since the messages the previous process waited for
// are not known, an adopted incident is closed only once a message of its cause has been
// delivered and none is late (or by the operator). An incident the operator closed by hand is
// respected: the messages already waiting then do not open a new one, later messages may.
type Tracker struct {
	cfg    Config
	store  Store
	svc    *Service
	clock  siobroker.Clock
	logger *slog.Logger

	checkMu sync.Mutex // serialises Check and the operator's actions
	loaded  bool       // the open incidents of the store were adopted; guarded by checkMu

	// The failures of the broker's own parts (Report, faults.go), apart from the delays: a
	// success on the hot path only loads faultsLive.
	faultMu    sync.Mutex
	faults     map[faultKey]*faultState
	faultsLive atomic.Int32  // len(faults)
	wake       chan struct{} // Report wakes Run when a failure begins or clears

	// The incident records the journal did not take, appended at the next check (faults.go).
	backlogMu   sync.Mutex
	unjournaled []siobroker.JournalRecord

	mu        sync.Mutex
	pending   map[string]pendingMsg
	lastErr   map[siobroker.IncidentCause]string
	delivered map[siobroker.IncidentCause]time.Time // the latest delivery per cause
	open      map[siobroker.IncidentCause]*tracked
	suppress  map[siobroker.IncidentCause]time.Time // closed by hand at this time: messages sent before do not reopen
}

type pendingMsg struct {
	cause  siobroker.IncidentCause
	sentAt time.Time
}

// tracked is an open incident as the tracker knows it.
type tracked struct {
	number   int64
	openedAt time.Time
	adopted  bool                // found open in the store, opened by an earlier process
	counted  map[string]struct{} // the messages this tracker counted as affected
	reported int                 // how many of counted the store has
	lastErr  string              // the last error the store has
}

// NewTracker returns a Tracker over store and journal. It applies the defaults of cfg and
// returns an error naming every field of cfg that is invalid and every collaborator that is
// missing: store, journal and clock are required (§39 journals every change of an incident,
// as NewService does); a nil logger discards.
func NewTracker(cfg Config, store Store, journal siobroker.JournalWriter, clock siobroker.Clock, logger *slog.Logger) (*Tracker, error) {
	cfg.setDefaults()
	errs := []error{cfg.Validate()}
	if store == nil {
		errs = append(errs, errors.New("incidents: NewTracker: store is required"))
	}
	if journal == nil {
		errs = append(errs, errors.New("incidents: NewTracker: journal is required"))
	}
	if clock == nil {
		errs = append(errs, errors.New("incidents: NewTracker: clock is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Tracker{
		cfg:       cfg,
		store:     store,
		svc:       &Service{store: store, journal: journal, clock: clock, by: trackerBy},
		clock:     clock,
		logger:    logger,
		pending:   make(map[string]pendingMsg),
		lastErr:   make(map[siobroker.IncidentCause]string),
		delivered: make(map[siobroker.IncidentCause]time.Time),
		open:      make(map[siobroker.IncidentCause]*tracked),
		suppress:  make(map[siobroker.IncidentCause]time.Time),
		faults:    make(map[faultKey]*faultState),
		wake:      make(chan struct{}, 1),
	}, nil
}

// Sent records that the message key entered the leg of cause at at (zero: now). A second Sent of a key on
// the same cause (a redelivery) keeps the first time: the message waits since it was first sent.
func (t *Tracker) Sent(key string, cause siobroker.IncidentCause, at time.Time) {
	if at.IsZero() {
		at = t.clock.Now()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.pending[key]; ok {
		if m.cause == cause {
			return
		}
		t.markDelivered(m.cause, at)
	}
	t.pending[key] = pendingMsg{cause: cause, sentAt: at}
}

// Delivered records that the message key left its leg at at (zero: now): its answer was
// received, even late.
// An unknown key (a duplicate) is ignored.
func (t *Tracker) Delivered(key string, at time.Time) {
	if at.IsZero() {
		at = t.clock.Now()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.pending[key]
	if !ok {
		return
	}
	delete(t.pending, key)
	t.markDelivered(m.cause, at)
}

// Abandon forgets a message that never entered the transport (its publish failed): it was not
// delivered, and it is not waiting either.
func (t *Tracker) Abandon(key string) {
	t.mu.Lock()
	delete(t.pending, key)
	t.mu.Unlock()
}

func (t *Tracker) markDelivered(cause siobroker.IncidentCause, at time.Time) {
	if prev, ok := t.delivered[cause]; !ok || at.After(prev) {
		t.delivered[cause] = at
	}
}

// Failed remembers err as the last error seen for cause; it is recorded with the cause's
// incident. A nil err is ignored.
func (t *Tracker) Failed(cause siobroker.IncidentCause, err error) {
	if err == nil {
		return
	}
	t.mu.Lock()
	t.lastErr[cause] = err.Error()
	t.mu.Unlock()
}

// Oldest returns the age of the oldest undelivered message of each cause that has one.
func (t *Tracker) Oldest() map[siobroker.IncidentCause]time.Duration {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[siobroker.IncidentCause]time.Duration)
	for _, m := range t.pending {
		age := now.Sub(m.sentAt)
		if cur, ok := out[m.cause]; !ok || age > cur {
			out[m.cause] = age
		}
	}
	return out
}

// faultRetry is how soon Run tries again to record a failure the store did not take.
const faultRetry = 5 * time.Second

// Run calls Check every CheckEvery, and CheckFaults as soon as a failure of the broker's own
// parts begins or clears (Report), and again when a cleared one has settled, until ctx is done.
// Errors are logged; a failure the store did not take is tried again within faultRetry, the rest
// at the next Check.
func (t *Tracker) Run(ctx context.Context) {
	ticker := time.NewTicker(t.cfg.CheckEvery)
	defer ticker.Stop()
	var retry <-chan time.Time
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			err = t.Check(ctx)
		case <-t.wake:
			err = t.CheckFaults(ctx)
		case <-retry:
			err = t.CheckFaults(ctx)
		}
		retry = nil
		if err != nil && ctx.Err() == nil {
			t.logger.Error("incident check failed", "error", err)
			retry = time.After(min(faultRetry, t.cfg.CheckEvery))
		} else if d, ok := t.settling(); ok {
			retry = time.After(d)
		}
	}
}

// RecordEmergencyBy opens an emergency by hand (Service.RecordEmergency), recorded as by.
func (t *Tracker) RecordEmergencyBy(ctx context.Context, by string, e Emergency, plan []siobroker.IncidentAction) (siobroker.Incident, error) {
	t.checkMu.Lock()
	defer t.checkMu.Unlock()
	return t.as(by).RecordEmergency(ctx, e, plan)
}

// RecordActionBy records the start or the end of an action of an emergency
// (Service.RecordAction), recorded as by.
func (t *Tracker) RecordActionBy(ctx context.Context, by string, number int64, no int, end bool, at time.Time) (siobroker.Incident, error) {
	t.checkMu.Lock()
	defer t.checkMu.Unlock()
	return t.as(by).RecordAction(ctx, number, no, end, at)
}

// Annotate records the measures taken against incident number and who was responsible.
func (t *Tracker) Annotate(ctx context.Context, number int64, measures, responsible string) (siobroker.Incident, error) {
	return t.AnnotateBy(ctx, trackerBy, number, measures, responsible)
}

// AnnotateBy is Annotate recorded in the incident's history as made by the operator by.
func (t *Tracker) AnnotateBy(ctx context.Context, by string, number int64, measures, responsible string) (siobroker.Incident, error) {
	t.checkMu.Lock()
	defer t.checkMu.Unlock()
	return t.as(by).Annotate(ctx, number, measures, responsible)
}

// Close closes incident number by hand, with the operator's note. The messages of its cause
// waiting now do not open a new incident; messages sent later may.
func (t *Tracker) Close(ctx context.Context, number int64, note string) (siobroker.Incident, error) {
	return t.CloseBy(ctx, trackerBy, number, note)
}

// CloseBy is Close recorded in the incident's history as made by the operator by.
func (t *Tracker) CloseBy(ctx context.Context, by string, number int64, note string) (siobroker.Incident, error) {
	t.checkMu.Lock()
	defer t.checkMu.Unlock()
	inc, err := t.as(by).Close(ctx, number, note)
	if inc.Number != 0 { // closed in the store, even if the journal failed
		t.forget(number, inc.ClosedAt)
		t.dropFault(faultKey{inc.Type, inc.Cause}, number)
	}
	return inc, err
}

// as returns the tracker's Service acting as by.
func (t *Tracker) as(by string) *Service {
	s := *t.svc
	s.by = by
	return &s
}

// forget drops the open incident number, closed outside the tracker at closedAt.
func (t *Tracker) forget(number int64, closedAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for cause, tr := range t.open {
		if tr.number == number {
			delete(t.open, cause)
			t.suppress[cause] = closedAt
		}
	}
}

// Check evaluates now: it opens an incident for any cause whose oldest undelivered message is
// older than Threshold (while it is still waiting), updates the affected count and last error of
// the open ones, and closes an open incident when delivery for its cause has resumed: no message
// of the cause older than Threshold remains, and one of the cause was delivered since the
// incident opened or nothing of the cause remains pending. Check keeps going past a failing
// incident and returns the errors joined.
func (t *Tracker) Check(ctx context.Context) error {
	t.checkMu.Lock()
	defer t.checkMu.Unlock()
	now := t.clock.Now().In(siobroker.Astana)
	if err := t.sync(ctx, now); err != nil {
		return err
	}
	var errs []error
	for _, a := range t.plan(now) {
		if err := t.apply(ctx, a, now); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, t.checkFaults(ctx))
	return errors.Join(errs...)
}

// sync reconciles the open incidents with the store: on the first Check it adopts those opened
// by an earlier process, and on every Check it drops those closed outside the tracker (by the
// operator's command line).
func (t *Tracker) sync(ctx context.Context, now time.Time) error {
	stored, err := t.store.Incidents(ctx, false)
	if err != nil {
		return fmt.Errorf("incident check: %w", err)
	}
	open := make(map[int64]bool, len(stored))
	for _, inc := range stored {
		open[inc.Number] = true
	}
	type closed struct {
		cause  siobroker.IncidentCause
		number int64
	}
	var gone []closed
	t.forgetClosedFaults(open)
	t.mu.Lock()
	if !t.loaded {
		t.adoptFaults(stored)
		for _, inc := range stored {
			if inc.Type != siobroker.IncidentDeliveryDelay || t.open[inc.Cause] != nil {
				continue
			}
			t.open[inc.Cause] = &tracked{number: inc.Number, openedAt: inc.OpenedAt, adopted: true,
				counted: make(map[string]struct{}), lastErr: inc.LastError}
			t.logger.Info("open incident adopted", "incident", inc.Number, "cause", inc.Cause.String())
		}
		t.loaded = true
	}
	for cause, tr := range t.open {
		if !open[tr.number] {
			gone = append(gone, closed{cause, tr.number})
		}
	}
	t.mu.Unlock()
	for _, g := range gone {
		inc, ok, err := t.store.Incident(ctx, g.number)
		if err != nil {
			return fmt.Errorf("incident check: %w", err)
		}
		closedAt := now
		if ok && !inc.ClosedAt.IsZero() {
			closedAt = inc.ClosedAt
		}
		t.logger.Info("incident closed outside the tracker", "incident", g.number, "cause", g.cause.String())
		t.forget(g.number, closedAt)
	}
	return nil
}

type actionKind int

const (
	actOpen actionKind = iota
	actUpdate
	actClose
)

type action struct {
	kind    actionKind
	cause   siobroker.IncidentCause
	tr      *tracked           // update, close
	inc     siobroker.Incident // open: the incident to record
	keys    []string           // open: the messages counted
	delta   int                // update: messages newly counted
	lastErr string             // update: a last error the store does not have yet
}

// group is what is pending for one cause.
type group struct {
	keys     []string
	oldest   time.Time // the oldest send time
	eligible time.Time // the oldest send time after a manual close; zero if none
}

// plan decides, under the lock, what Check has to write.
func (t *Tracker) plan(now time.Time) []action {
	t.mu.Lock()
	defer t.mu.Unlock()
	groups := make(map[siobroker.IncidentCause]*group)
	for key, m := range t.pending {
		g := groups[m.cause]
		if g == nil {
			g = &group{oldest: m.sentAt}
			groups[m.cause] = g
		}
		g.keys = append(g.keys, key)
		if m.sentAt.Before(g.oldest) {
			g.oldest = m.sentAt
		}
		if sup, ok := t.suppress[m.cause]; !ok || m.sentAt.After(sup) {
			if g.eligible.IsZero() || m.sentAt.Before(g.eligible) {
				g.eligible = m.sentAt
			}
		}
	}
	for cause := range t.suppress {
		if g := groups[cause]; g == nil || g.eligible.Equal(g.oldest) {
			delete(t.suppress, cause) // nothing from before the manual close waits any more
		}
	}

	var acts []action
	for cause, tr := range t.open {
		g := groups[cause]
		late := g != nil && now.Sub(g.oldest) > t.cfg.Threshold
		last, ok := t.delivered[cause]
		deliveredSince := ok && !last.Before(tr.openedAt)
		if !late && (deliveredSince || (g == nil && !tr.adopted)) {
			acts = append(acts, action{kind: actClose, cause: cause, tr: tr})
			continue
		}
		if g != nil {
			for _, k := range g.keys {
				tr.counted[k] = struct{}{}
			}
		}
		a := action{kind: actUpdate, cause: cause, tr: tr, delta: len(tr.counted) - tr.reported}
		if le := t.lastErr[cause]; le != "" && le != tr.lastErr {
			a.lastErr = le
		}
		if a.delta > 0 || a.lastErr != "" {
			acts = append(acts, a)
		}
	}
	for cause, g := range groups {
		if t.open[cause] != nil || g.eligible.IsZero() || now.Sub(g.eligible) <= t.cfg.Threshold {
			continue
		}
		acts = append(acts, action{kind: actOpen, cause: cause, keys: slices.Clone(g.keys), inc: siobroker.Incident{
			Type:      siobroker.IncidentDeliveryDelay,
			Cause:     cause,
			LastError: t.lastErr[cause],
			StartedAt: g.eligible.In(siobroker.Astana),
			OpenedAt:  now,
			Affected:  len(g.keys),
		}})
	}
	// Causes in a fixed order, so that incidents opened together are numbered alike every time.
	slices.SortFunc(acts, func(a, b action) int {
		return cmp.Or(cmp.Compare(a.cause.Service, b.cause.Service), cmp.Compare(a.cause.Queue, b.cause.Queue),
			cmp.Compare(a.cause.Adapter, b.cause.Adapter))
	})
	return acts
}

// apply writes one action to the store and the journal, and then to memory.
func (t *Tracker) apply(ctx context.Context, a action, now time.Time) error {
	switch a.kind {
	case actOpen:
		return t.applyOpen(ctx, a, now)
	case actUpdate:
		inc, err := t.store.UpdateIncident(ctx, a.tr.number, a.delta, a.lastErr, now, trackerBy)
		if errors.Is(err, siobroker.ErrIncidentClosed) || errors.Is(err, siobroker.ErrIncidentNotFound) {
			// Closed by the operator since sync looked.
			closedAt := inc.ClosedAt
			if closedAt.IsZero() {
				closedAt = now
			}
			t.forget(a.tr.number, closedAt)
			return nil
		}
		if err != nil {
			return fmt.Errorf("update incident %d: %w", a.tr.number, err)
		}
		t.mu.Lock()
		a.tr.reported += a.delta
		if a.lastErr != "" {
			a.tr.lastErr = a.lastErr
		}
		t.mu.Unlock()
		t.logger.Warn("incident updated", "incident", inc.Number, "cause", a.cause.String(), "affected", inc.Affected)
		return nil
	case actClose:
		inc, err := t.store.CloseIncident(ctx, a.tr.number, NoteResumed, now, trackerBy)
		if errors.Is(err, siobroker.ErrIncidentClosed) || errors.Is(err, siobroker.ErrIncidentNotFound) {
			t.drop(a.cause, a.tr)
			return nil
		}
		if err != nil {
			return fmt.Errorf("close incident %d: %w", a.tr.number, err)
		}
		t.drop(a.cause, a.tr)
		t.logger.Info("incident closed: delivery resumed", "incident", inc.Number, "cause", a.cause.String(),
			"started", siobroker.FormatTime(inc.StartedAt), "closed", siobroker.FormatTime(inc.ClosedAt), "affected", inc.Affected)
		t.journalLater(ctx, siobroker.IncidentEventClosed, inc, now)
		return nil
	}
	return nil
}

func (t *Tracker) applyOpen(ctx context.Context, a action, now time.Time) error {
	inc, created, err := t.store.OpenIncident(ctx, a.inc, trackerBy)
	if err != nil {
		return fmt.Errorf("open incident for %s: %w", a.cause, err)
	}
	tr := &tracked{number: inc.Number, openedAt: inc.OpenedAt, counted: make(map[string]struct{}, len(a.keys)),
		lastErr: inc.LastError}
	for _, k := range a.keys {
		tr.counted[k] = struct{}{}
	}
	if created {
		tr.reported = len(tr.counted)
	} else {
		// Another broker process sharing the store holds an incident open for this cause: count
		// our messages in it. Should this fail, the next Check adds them.
		tr.adopted = true
		if upd, err := t.store.UpdateIncident(ctx, inc.Number, len(tr.counted), a.inc.LastError, now, trackerBy); err == nil {
			tr.reported, tr.lastErr = len(tr.counted), upd.LastError
		}
	}
	t.mu.Lock()
	t.open[a.cause] = tr
	t.mu.Unlock()
	if !created {
		return nil
	}
	t.logger.Warn("incident opened: delivery delayed", "incident", inc.Number, "cause", a.cause.String(),
		"started", siobroker.FormatTime(inc.StartedAt), "affected", inc.Affected, "last_error", inc.LastError)
	t.journalLater(ctx, siobroker.IncidentEventOpened, inc, now)
	return nil
}

// drop forgets tr, if it is still the open incident of cause.
func (t *Tracker) drop(cause siobroker.IncidentCause, tr *tracked) {
	t.mu.Lock()
	if t.open[cause] == tr {
		delete(t.open, cause)
	}
	t.mu.Unlock()
}

// DispatcherTracker adapts a Tracker to the dispatcher's delivery reports (routing.DeliveryTracker):
// the cause of a delay is the service's queue.
type DispatcherTracker struct{ T *Tracker }

// Sent reports a service message entering its queue.
func (d DispatcherTracker) Sent(key string, service int, topic string, at time.Time) {
	d.T.Sent(key, siobroker.IncidentCause{Service: service, Queue: topic}, at)
}

// Delivered reports an answer received for key.
func (d DispatcherTracker) Delivered(key string, at time.Time) { d.T.Delivered(key, at) }

// Abandon forgets a message whose publish failed.
func (d DispatcherTracker) Abandon(key string) { d.T.Abandon(key) }

// Published reports a service message the transport took: the queue's publishes work again.
func (d DispatcherTracker) Published(service int, topic string) {
	d.T.Report(publishFault(service, topic), nil)
}

// Failed records the last error seen for a service's queue, and counts the message that could
// not be sent in the queue's publish-failed incident (siobroker.IncidentPublishFailed), opened at
// once and closed when a message is published to the queue again: a failed publish is never
// dropped without a record.
func (d DispatcherTracker) Failed(service int, topic string, err error) {
	d.T.Failed(siobroker.IncidentCause{Service: service, Queue: topic}, err)
	d.T.Report(publishFault(service, topic), err)
}
