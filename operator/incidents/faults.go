package incidents

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sio-pso/siobroker"
)

// Fault names a failure of one of the broker's own parts, for which the broker opens an incident
// by itself (§39–41): the message transport, the journal, the reply signer, the publishing of a
// service's messages.
type Fault struct {
	Type   string                  // siobroker.IncidentTransportOutage, IncidentJournalFailure, IncidentSigningFailure or IncidentPublishFailed
	Cause  siobroker.IncidentCause // the part: Queue "transport", "journal", "signer", or the service's queue
	Reason string                  // the failure in words, recorded as the incident's Reason
}

// The faults the broker watches. A publish that fails is counted per service queue (see
// DispatcherTracker.Failed).
var (
	FaultTransport = Fault{Type: siobroker.IncidentTransportOutage, Cause: siobroker.IncidentCause{Queue: "transport"},
		Reason: "транспорт сообщений недоступен (маршрутизатор остановлен или нет соединения с RabbitMQ): новые запросы не принимаются"}
	FaultJournal = Fault{Type: siobroker.IncidentJournalFailure, Cause: siobroker.IncidentCause{Queue: "journal"},
		Reason: "запись в Log-журнал невозможна: запросы отклоняются"}
	FaultSigning = Fault{Type: siobroker.IncidentSigningFailure, Cause: siobroker.IncidentCause{Queue: "signer"},
		Reason: "ответы не могут быть подписаны ЭЦП брокера"}
)

// publishFault is the fault of the publishes to one service queue. It is made for every publish,
// so it formats nothing: its Reason is written when a failure begins (faultReason).
func publishFault(service int, topic string) Fault {
	return Fault{Type: siobroker.IncidentPublishFailed, Cause: siobroker.IncidentCause{Service: service, Queue: topic}}
}

// faultReason is f's Reason, or the one its type gives.
func faultReason(f Fault) string {
	if f.Reason == "" && f.Type == siobroker.IncidentPublishFailed {
		return fmt.Sprintf("сообщения сервиса %d не отправлены в очередь %s", f.Cause.Service, f.Cause.Queue)
	}
	return f.Reason
}

// NoteCleared is the close note of a fault's incident the tracker closed.
const NoteCleared = "the cause cleared"

// maxErrorText bounds the last error kept with an incident.
const maxErrorText = 1000

type faultKey struct {
	typ   string
	cause siobroker.IncidentCause
}

// faultState is one failure as the tracker knows it, from its first report until its incident is
// closed in the store.
type faultState struct {
	reason  string
	since   time.Time // the first failure
	lastErr string
	count   int       // failures reported
	cleared time.Time // when a success was reported after the last failure; zero while failing
	resumed time.Time // the first failure after a success the tracker had not acted on yet
	// suppressed: an operator closed its incident while the part still failed; nothing is
	// recorded until the part works again, after which a new failure opens a new incident.
	suppressed bool
	number     int64  // its incident; 0 until recorded
	reported   int    // count as the store has it
	stored     string // lastErr as the store has it
}

// Report records the outcome of one use of the part f names: a nil err is a success, which
// clears a failure; an error begins a failure or counts in it. It only touches memory and does
// not wait for the store: the incident is opened, counted and closed by the tracker's own
// goroutine (Run), woken at once when a failure begins or clears. A success while nothing fails
// costs one atomic load, so it may be reported on every request.
func (t *Tracker) Report(f Fault, err error) {
	if err == nil && t.faultsLive.Load() == 0 {
		return
	}
	now := t.clock.Now().In(siobroker.Astana)
	key := faultKey{f.Type, f.Cause}
	t.faultMu.Lock()
	st := t.faults[key]
	wake := false
	switch {
	case err == nil:
		if st != nil && st.cleared.IsZero() {
			st.cleared, wake = now, true
		}
	case st != nil && st.suppressed:
		st.cleared = time.Time{}
	default:
		if st == nil {
			st = &faultState{reason: faultReason(f), since: now}
			t.faults[key] = st
			t.faultsLive.Add(1)
			wake = true
		}
		if !st.cleared.IsZero() {
			st.cleared, st.resumed, wake = time.Time{}, now, true
		}
		st.count++
		st.lastErr = errorText(err)
	}
	t.faultMu.Unlock()
	if wake {
		select {
		case t.wake <- struct{}{}:
		default: // a wake is pending already
		}
	}
}

func errorText(err error) string {
	s := err.Error()
	if r := []rune(s); len(r) > maxErrorText {
		s = string(r[:maxErrorText]) + "…"
	}
	return s
}

// CheckFaults opens an incident for every failure not recorded yet (its start the first failure,
// its affected count the failures reported), updates the count and last error of the recorded
// ones, and closes those whose cause cleared at least Config.Settle ago, at the time it cleared. A failure that began and
// cleared before this ran is recorded all the same, opened and closed. What the store does not
// take now is tried again at the next check. It journals every change, and first the journal
// records an earlier check could not write (a journal that failed is recorded once it is back).
func (t *Tracker) CheckFaults(ctx context.Context) error {
	t.checkMu.Lock()
	defer t.checkMu.Unlock()
	if err := t.sync(ctx, t.clock.Now().In(siobroker.Astana)); err != nil {
		return err
	}
	return t.checkFaults(ctx)
}

func (t *Tracker) checkFaults(ctx context.Context) error {
	now := t.clock.Now().In(siobroker.Astana)
	errs := []error{t.flushJournal(ctx)}
	type step struct {
		key faultKey
		st  faultState // a copy: the hot path goes on changing the original
	}
	t.faultMu.Lock()
	steps := make([]step, 0, len(t.faults))
	for k, st := range t.faults {
		steps = append(steps, step{k, *st})
	}
	t.faultMu.Unlock()
	// In a fixed order, so that incidents opened together are numbered alike every time.
	slices.SortFunc(steps, func(a, b step) int { return a.st.since.Compare(b.st.since) })
	for _, s := range steps {
		if err := t.applyFault(ctx, s.key, s.st, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// applyFault brings the store in line with st, a copy of the failure's state.
func (t *Tracker) applyFault(ctx context.Context, key faultKey, st faultState, now time.Time) error {
	if st.suppressed {
		if !st.cleared.IsZero() {
			t.faultMu.Lock()
			if cur := t.faults[key]; cur != nil && cur.suppressed && !cur.cleared.IsZero() {
				delete(t.faults, key)
				t.faultsLive.Add(-1)
			}
			t.faultMu.Unlock()
		}
		return nil
	}
	number := st.number
	if number == 0 {
		inc, created, err := t.store.OpenIncident(ctx, siobroker.Incident{Type: key.typ, Cause: key.cause, Reason: st.reason,
			LastError: st.lastErr, StartedAt: st.since, OpenedAt: now, Affected: st.count}, trackerBy)
		if err != nil {
			return fmt.Errorf("open incident %s for %s: %w", key.typ, key.cause, err)
		}
		number = inc.Number
		reported, stored := st.count, st.lastErr
		if created {
			t.logger.Warn("incident opened: "+key.typ, "incident", inc.Number, "cause", key.cause.String(),
				"started", siobroker.FormatTime(inc.StartedAt), "error", st.lastErr)
			t.journalLater(ctx, siobroker.IncidentEventOpened, inc, now)
		} else {
			// Another process sharing the store holds it open: this one's failures count in it.
			reported, stored = 0, inc.LastError
		}
		t.faultMu.Lock()
		if cur := t.faults[key]; cur != nil {
			cur.number, cur.reported, cur.stored = number, reported, stored
		}
		t.faultMu.Unlock()
		st.number, st.reported, st.stored = number, reported, stored
	}
	if delta, lastErr := st.count-st.reported, st.lastErr; delta > 0 || lastErr != st.stored {
		if lastErr == st.stored {
			lastErr = ""
		}
		_, err := t.store.UpdateIncident(ctx, number, max(delta, 0), lastErr, now, trackerBy)
		switch {
		case errors.Is(err, siobroker.ErrIncidentClosed) || errors.Is(err, siobroker.ErrIncidentNotFound):
			t.dropFault(key, number) // closed by an operator
			return nil
		case err != nil:
			return fmt.Errorf("update incident %d: %w", number, err)
		}
		t.faultMu.Lock()
		if cur := t.faults[key]; cur != nil && cur.number == number {
			cur.reported, cur.stored = st.count, st.lastErr
		}
		t.faultMu.Unlock()
		// The update is in the incident's history; the journal has its opening and its close.
	}
	if st.cleared.IsZero() || now.Sub(st.cleared) < t.cfg.Settle {
		return nil
	}
	inc, err := t.store.CloseIncident(ctx, number, NoteCleared, st.cleared, trackerBy)
	switch {
	case errors.Is(err, siobroker.ErrIncidentClosed) || errors.Is(err, siobroker.ErrIncidentNotFound):
		t.dropFault(key, number)
		return nil
	case err != nil:
		return fmt.Errorf("close incident %d: %w", number, err)
	}
	t.logger.Info("incident closed: "+key.typ+" cleared", "incident", inc.Number, "cause", key.cause.String(),
		"started", siobroker.FormatTime(inc.StartedAt), "closed", siobroker.FormatTime(inc.ClosedAt), "affected", inc.Affected)
	t.journalLater(ctx, siobroker.IncidentEventClosed, inc, now)
	// A failure reported since the copy was taken begins a new incident: this one ended when its
	// cause cleared.
	t.faultMu.Lock()
	if cur := t.faults[key]; cur != nil && cur.number == number {
		if extra := cur.count - st.count; extra > 0 {
			since := cur.resumed
			if !since.After(st.cleared) {
				since = now
			}
			*cur = faultState{reason: cur.reason, since: since, lastErr: cur.lastErr, count: extra, cleared: cur.cleared}
		} else {
			delete(t.faults, key)
			t.faultsLive.Add(-1)
		}
	}
	t.faultMu.Unlock()
	return nil
}

// settling returns how long until the first cleared failure has settled (Config.Settle); ok is
// false when none is waiting to.
func (t *Tracker) settling() (d time.Duration, ok bool) {
	now := t.clock.Now()
	t.faultMu.Lock()
	defer t.faultMu.Unlock()
	for _, st := range t.faults {
		if st.suppressed || st.cleared.IsZero() {
			continue
		}
		left := max(t.cfg.Settle-now.Sub(st.cleared), 0) + time.Millisecond
		if !ok || left < d {
			d, ok = left, true
		}
	}
	return d, ok
}

// dropFault forgets the failure of key whose incident number was closed outside the tracker.
func (t *Tracker) dropFault(key faultKey, number int64) {
	t.faultMu.Lock()
	if cur := t.faults[key]; cur != nil && cur.number == number {
		t.suppressLocked(key, cur)
	}
	t.faultMu.Unlock()
}

// suppressLocked forgets the failure of key, closed by an operator: while it goes on it records
// nothing more; once its part works again, a new failure opens a new incident.
func (t *Tracker) suppressLocked(key faultKey, st *faultState) {
	if !st.cleared.IsZero() {
		delete(t.faults, key)
		t.faultsLive.Add(-1)
		return
	}
	*st = faultState{suppressed: true}
}

// adoptFaults takes over the open incidents of faults an earlier process left in the store: the
// next success reported of their part closes them.
func (t *Tracker) adoptFaults(stored []siobroker.Incident) {
	t.faultMu.Lock()
	defer t.faultMu.Unlock()
	for _, inc := range stored {
		if !isFaultType(inc.Type) {
			continue
		}
		key := faultKey{inc.Type, inc.Cause}
		if t.faults[key] != nil {
			continue
		}
		t.faults[key] = &faultState{reason: inc.Reason, since: inc.StartedAt, lastErr: inc.LastError, count: inc.Affected,
			number: inc.Number, reported: inc.Affected, stored: inc.LastError}
		t.faultsLive.Add(1)
		t.logger.Info("open incident adopted", "incident", inc.Number, "type", inc.Type, "cause", inc.Cause.String())
	}
}

// forgetClosedFaults drops the failures whose incidents are no longer open in the store: an
// operator closed them by hand (suppressLocked).
func (t *Tracker) forgetClosedFaults(open map[int64]bool) {
	t.faultMu.Lock()
	defer t.faultMu.Unlock()
	for key, st := range t.faults {
		if st.number != 0 && !open[st.number] {
			t.suppressLocked(key, st)
		}
	}
}

func isFaultType(typ string) bool {
	switch typ {
	case siobroker.IncidentTransportOutage, siobroker.IncidentJournalFailure, siobroker.IncidentSigningFailure, siobroker.IncidentPublishFailed:
		return true
	}
	return false
}

// maxUnjournaled bounds the journal records kept for a journal that cannot be written.
const maxUnjournaled = 10000

// journalLater journals event of inc; a record the journal does not take now is kept and
// appended, with its own time, by the next check (flushJournal): the incident of a journal that
// cannot be written is journaled once it can.
func (t *Tracker) journalLater(ctx context.Context, event string, inc siobroker.Incident, at time.Time) {
	rec, err := incidentRecord(event, inc, at)
	if err != nil {
		t.logger.Error("cannot journal an incident", "incident", inc.Number, "error", err)
		return
	}
	t.backlogMu.Lock()
	pending := len(t.unjournaled) > 0
	t.backlogMu.Unlock()
	if !pending { // keep the journal's order: nothing overtakes a record kept back
		_, err := t.svc.journal.Append(ctx, rec)
		if err == nil {
			return
		}
		t.logger.Error("incident not journaled yet; it is journaled when the journal can be written", "incident", inc.Number, "event", event, "error", err)
	}
	t.backlogMu.Lock()
	if len(t.unjournaled) >= maxUnjournaled {
		t.logger.Error("too many incident records wait for the journal; the oldest is dropped (the store keeps the incident's history)",
			"dropped_seq_at", siobroker.FormatTime(t.unjournaled[0].At))
		t.unjournaled = t.unjournaled[1:]
	}
	t.unjournaled = append(t.unjournaled, rec)
	t.backlogMu.Unlock()
}

// flushJournal appends the records journalLater kept, in order, until the journal refuses one.
func (t *Tracker) flushJournal(ctx context.Context) error {
	t.backlogMu.Lock()
	defer t.backlogMu.Unlock()
	for len(t.unjournaled) > 0 {
		if _, err := t.svc.journal.Append(ctx, t.unjournaled[0]); err != nil {
			return fmt.Errorf("journal %d incident records kept back: %w", len(t.unjournaled), err)
		}
		t.unjournaled = t.unjournaled[1:]
	}
	return nil
}

// Unjournaled is how many incident records wait for the journal.
func (t *Tracker) Unjournaled() int {
	t.backlogMu.Lock()
	defer t.backlogMu.Unlock()
	return len(t.unjournaled)
}
