package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
)

// migrationIncidents creates the journal of emergencies (§39–41, Appendix 7 of the Rules).
//
// incidents holds one row per incident: its current state. number is sequential and never
// reused (AUTOINCREMENT). A partial unique index keeps at most one open incident per type and
// cause, so two broker processes sharing the store cannot open the same incident twice.
// incident_events is the append-only history of every change, with the incident as it was after
// it: triggers refuse UPDATE and DELETE. Times are kept as text in Astana time and as Unix
// nanoseconds, as in the user registry.
const migrationIncidents = `CREATE TABLE incidents (
		number       INTEGER PRIMARY KEY AUTOINCREMENT,
		type         TEXT NOT NULL,
		service      INTEGER NOT NULL,
		queue        TEXT NOT NULL,
		adapter      TEXT NOT NULL,
		last_error   TEXT NOT NULL,
		started_at   TEXT NOT NULL,
		started_ns   INTEGER NOT NULL,
		opened_at    TEXT NOT NULL,
		opened_ns    INTEGER NOT NULL,
		affected     INTEGER NOT NULL CHECK (affected >= 0),
		measures     TEXT NOT NULL,
		responsible  TEXT NOT NULL,
		closed_at    TEXT,
		closed_ns    INTEGER,
		close_note   TEXT NOT NULL,
		status       TEXT NOT NULL CHECK (status IN ('open', 'closed')),
		CHECK ((status = 'open') = (closed_ns IS NULL))
	);
	CREATE UNIQUE INDEX incidents_one_open ON incidents(type, service, queue, adapter) WHERE status = 'open';
	CREATE TABLE incident_events (
		id            INTEGER PRIMARY KEY AUTOINCREMENT,
		number        INTEGER NOT NULL REFERENCES incidents(number),
		kind          TEXT NOT NULL CHECK (kind IN ('opened', 'updated', 'annotated', 'closed')),
		at            TEXT NOT NULL,
		at_ns         INTEGER NOT NULL,
		by            TEXT NOT NULL,
		note          TEXT NOT NULL,
		incident_json TEXT NOT NULL
	);
	CREATE INDEX incident_events_number ON incident_events(number, id);` + incidentEventsAppendOnly

// incidentEventsAppendOnly are the triggers that keep incident_events append-only.
const incidentEventsAppendOnly = `
	CREATE TRIGGER incident_events_no_update BEFORE UPDATE ON incident_events
	BEGIN SELECT RAISE(ABORT, 'incident_events is append-only: an event is never changed'); END;
	CREATE TRIGGER incident_events_no_delete BEFORE DELETE ON incident_events
	BEGIN SELECT RAISE(ABORT, 'incident_events is append-only: an event is never deleted'); END;`

// migrationEmergencies adds the emergencies of Appendix 7 to the journal of emergencies: the
// cause in words (§41) of every incident, and the table of actions of an emergency
// (incident_actions: one row per action of its plan, copied when it is opened; its start and end
// are filled in once each, never replaced). incident_events gains the kinds of those two records;
// since SQLite cannot change a CHECK constraint, the table is copied whole, with its ids, into one
// that allows them, inside the migration's transaction. Existing incidents keep every field; their
// reason is "" and they have no actions.
const migrationEmergencies = `ALTER TABLE incidents ADD COLUMN reason TEXT NOT NULL DEFAULT '';
	CREATE TABLE incident_actions (
		number      INTEGER NOT NULL REFERENCES incidents(number),
		no          INTEGER NOT NULL CHECK (no >= 1),
		action      TEXT NOT NULL,
		max_ns      INTEGER NOT NULL CHECK (max_ns >= 0),
		responsible TEXT NOT NULL,
		started_at  TEXT,
		started_ns  INTEGER,
		ended_at    TEXT,
		ended_ns    INTEGER,
		PRIMARY KEY (number, no),
		CHECK (ended_ns IS NULL OR (started_ns IS NOT NULL AND ended_ns >= started_ns))
	);
	DROP TRIGGER incident_events_no_update;
	DROP TRIGGER incident_events_no_delete;
	CREATE TABLE incident_events_v2 (
		id            INTEGER PRIMARY KEY AUTOINCREMENT,
		number        INTEGER NOT NULL REFERENCES incidents(number),
		kind          TEXT NOT NULL CHECK (kind IN ('opened', 'updated', 'annotated', 'closed', 'action-started', 'action-ended')),
		at            TEXT NOT NULL,
		at_ns         INTEGER NOT NULL,
		by            TEXT NOT NULL,
		note          TEXT NOT NULL,
		incident_json TEXT NOT NULL
	);
	INSERT INTO incident_events_v2(id, number, kind, at, at_ns, by, note, incident_json)
		SELECT id, number, kind, at, at_ns, by, note, incident_json FROM incident_events ORDER BY id;
	DROP TABLE incident_events;
	ALTER TABLE incident_events_v2 RENAME TO incident_events;
	CREATE INDEX incident_events_number ON incident_events(number, id);` + incidentEventsAppendOnly

const incidentColumns = `number, type, service, queue, adapter, reason, last_error, started_ns, opened_ns, affected,
	measures, responsible, closed_ns, close_note, status`

func scanIncident(row rowScanner) (inc siobroker.Incident, ok bool, err error) {
	var started, opened int64
	var closed sql.NullInt64
	var status string
	err = row.Scan(&inc.Number, &inc.Type, &inc.Cause.Service, &inc.Cause.Queue, &inc.Cause.Adapter, &inc.Reason, &inc.LastError,
		&started, &opened, &inc.Affected, &inc.Measures, &inc.Responsible, &closed, &inc.CloseNote, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return siobroker.Incident{}, false, nil
	}
	if err != nil {
		return siobroker.Incident{}, false, err
	}
	inc.StartedAt = time.Unix(0, started).In(siobroker.Astana)
	inc.OpenedAt = time.Unix(0, opened).In(siobroker.Astana)
	inc.ClosedAt = fromNS(closed)
	inc.Status = siobroker.IncidentStatus(status)
	return inc, true, nil
}

// querier is what reading incidents needs: the database or a transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// readIncident reads incident number, with its actions, inside a transaction; it wraps
// siobroker.ErrIncidentNotFound.
func readIncident(ctx context.Context, tx *sql.Tx, number int64) (siobroker.Incident, error) {
	inc, ok, err := incidentByNumber(ctx, tx, number)
	if err != nil {
		return siobroker.Incident{}, err
	}
	if !ok {
		return siobroker.Incident{}, fmt.Errorf("incident %d: %w", number, siobroker.ErrIncidentNotFound)
	}
	return inc, nil
}

// incidentByNumber reads incident number with its actions; ok is false when there is none.
func incidentByNumber(ctx context.Context, q querier, number int64) (siobroker.Incident, bool, error) {
	inc, ok, err := scanIncident(q.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE number = ?`, number))
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("read incident %d: %w", number, err)
		}
		return siobroker.Incident{}, false, err
	}
	actions, err := readActions(ctx, q, `WHERE number = ?`, number)
	if err != nil {
		return siobroker.Incident{}, false, err
	}
	inc.Actions = actions[number]
	return inc, true, nil
}

// readActions reads the actions of the incidents where selects (a WHERE clause over
// incident_actions), by incident number, each list by No.
func readActions(ctx context.Context, q querier, where string, args ...any) (map[int64][]siobroker.IncidentAction, error) {
	rows, err := q.QueryContext(ctx, `SELECT number, no, action, max_ns, responsible, started_ns, ended_ns
		FROM incident_actions `+where+` ORDER BY number, no`, args...)
	if err != nil {
		return nil, fmt.Errorf("read incident actions: %w", err)
	}
	defer rows.Close()
	out := make(map[int64][]siobroker.IncidentAction)
	for rows.Next() {
		var number, limit int64
		var a siobroker.IncidentAction
		var started, ended sql.NullInt64
		if err := rows.Scan(&number, &a.No, &a.Action, &limit, &a.Responsible, &started, &ended); err != nil {
			return nil, fmt.Errorf("read incident actions: %w", err)
		}
		a.Max, a.StartedAt, a.EndedAt = time.Duration(limit), fromNS(started), fromNS(ended)
		out[number] = append(out[number], a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read incident actions: %w", err)
	}
	return out, nil
}

// appendIncidentEvent records kind of inc (as it is after the change) in incident_events.
func appendIncidentEvent(ctx context.Context, tx *sql.Tx, inc siobroker.Incident, kind string, at time.Time, by, note string) error {
	js, err := json.Marshal(inc)
	if err != nil {
		return fmt.Errorf("encode incident %d: %w", inc.Number, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO incident_events(number, kind, at, at_ns, by, note, incident_json) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		inc.Number, kind, siobroker.FormatTime(at), at.UnixNano(), by, note, string(js)); err != nil {
		return fmt.Errorf("record incident %d %s: %w", inc.Number, kind, err)
	}
	return nil
}

// OpenIncident records inc as a new open incident, numbered next, unless an incident of the same
// type and cause is open already: then it writes nothing and returns that one, created false.
func (s *DB) OpenIncident(ctx context.Context, inc siobroker.Incident, by string) (siobroker.Incident, bool, error) {
	if inc.Type == "" {
		return siobroker.Incident{}, false, errors.New("open incident: no type")
	}
	if inc.StartedAt.IsZero() || inc.OpenedAt.IsZero() {
		return siobroker.Incident{}, false, fmt.Errorf("open incident for %s: no start or opening time", inc.Cause)
	}
	if inc.Affected < 0 {
		return siobroker.Incident{}, false, fmt.Errorf("open incident for %s: negative affected count", inc.Cause)
	}
	for i, a := range inc.Actions {
		if a.No != i+1 || a.Max < 0 || !a.StartedAt.IsZero() || !a.EndedAt.IsZero() {
			return siobroker.Incident{}, false, fmt.Errorf("open incident %s: action %d: actions are numbered from 1 in order, "+
				"with a maximum time not below 0, and are started and ended once the incident is open", inc.Type, i+1)
		}
	}
	var out siobroker.Incident
	created := false
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		existing, ok, err := scanIncident(tx.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents
			WHERE type = ? AND service = ? AND queue = ? AND adapter = ? AND status = 'open'`,
			inc.Type, inc.Cause.Service, inc.Cause.Queue, inc.Cause.Adapter))
		if err != nil {
			return fmt.Errorf("read open incidents: %w", err)
		}
		if ok {
			out = existing
			return nil
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO incidents(type, service, queue, adapter, reason, last_error,
				started_at, started_ns, opened_at, opened_ns, affected, measures, responsible, close_note, status)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 'open')`,
			inc.Type, inc.Cause.Service, inc.Cause.Queue, inc.Cause.Adapter, inc.Reason, inc.LastError,
			siobroker.FormatTime(inc.StartedAt), inc.StartedAt.UnixNano(), siobroker.FormatTime(inc.OpenedAt), inc.OpenedAt.UnixNano(),
			inc.Affected, inc.Measures, inc.Responsible)
		if err != nil {
			return fmt.Errorf("open incident for %s: %w", inc.Cause, err)
		}
		number, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("open incident for %s: %w", inc.Cause, err)
		}
		for _, a := range inc.Actions {
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_actions(number, no, action, max_ns, responsible) VALUES (?, ?, ?, ?, ?)`,
				number, a.No, a.Action, int64(a.Max), a.Responsible); err != nil {
				return fmt.Errorf("open incident %d: action %d: %w", number, a.No, err)
			}
		}
		if out, err = readIncident(ctx, tx, number); err != nil {
			return err
		}
		created = true
		return appendIncidentEvent(ctx, tx, out, siobroker.IncidentEventOpened, inc.OpenedAt, by, "")
	})
	if err != nil {
		return siobroker.Incident{}, false, err
	}
	return out, created, nil
}

// changeIncident runs fn on incident number inside one transaction, writes nothing if fn returns an
// error, and otherwise records event kind with the incident as it is afterwards.
func (s *DB) changeIncident(ctx context.Context, number int64, kind string, at time.Time, by, note string,
	fn func(tx *sql.Tx, cur siobroker.Incident) error) (siobroker.Incident, error) {
	if at.IsZero() {
		return siobroker.Incident{}, fmt.Errorf("%s incident %d: no time", kind, number)
	}
	var out siobroker.Incident
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		cur, err := readIncident(ctx, tx, number)
		if err != nil {
			return err
		}
		if err := fn(tx, cur); err != nil {
			out = cur
			return err
		}
		if out, err = readIncident(ctx, tx, number); err != nil {
			return err
		}
		return appendIncidentEvent(ctx, tx, out, kind, at, by, note)
	})
	return out, err
}

// UpdateIncident adds addAffected to the affected count of open incident number and, if
// lastError is not "", records it as the last error seen. On a closed incident it changes nothing
// and returns the incident with an error wrapping siobroker.ErrIncidentClosed.
func (s *DB) UpdateIncident(ctx context.Context, number int64, addAffected int, lastError string, at time.Time, by string) (siobroker.Incident, error) {
	if addAffected < 0 {
		return siobroker.Incident{}, fmt.Errorf("update incident %d: negative affected count", number)
	}
	return s.changeIncident(ctx, number, siobroker.IncidentEventUpdated, at, by, "", func(tx *sql.Tx, cur siobroker.Incident) error {
		if cur.Status != siobroker.IncidentOpen {
			return fmt.Errorf("update incident %d: %w", number, siobroker.ErrIncidentClosed)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE incidents SET affected = affected + ?,
				last_error = CASE WHEN ? = '' THEN last_error ELSE ? END WHERE number = ?`,
			addAffected, lastError, lastError, number); err != nil {
			return fmt.Errorf("update incident %d: %w", number, err)
		}
		return nil
	})
}

// AnnotateIncident records the measures taken against incident number and who was responsible
// for them; "" keeps the value recorded. Closed incidents may be annotated too.
func (s *DB) AnnotateIncident(ctx context.Context, number int64, measures, responsible string, at time.Time, by string) (siobroker.Incident, error) {
	if measures == "" && responsible == "" {
		return siobroker.Incident{}, fmt.Errorf("annotate incident %d: nothing to record", number)
	}
	return s.changeIncident(ctx, number, siobroker.IncidentEventAnnotated, at, by, "", func(tx *sql.Tx, _ siobroker.Incident) error {
		if _, err := tx.ExecContext(ctx, `UPDATE incidents SET
				measures = CASE WHEN ? = '' THEN measures ELSE ? END,
				responsible = CASE WHEN ? = '' THEN responsible ELSE ? END WHERE number = ?`,
			measures, measures, responsible, responsible, number); err != nil {
			return fmt.Errorf("annotate incident %d: %w", number, err)
		}
		return nil
	})
}

// CloseIncident closes open incident number at at, with note. On a closed incident it changes
// nothing and returns the incident with an error wrapping siobroker.ErrIncidentClosed.
func (s *DB) CloseIncident(ctx context.Context, number int64, note string, at time.Time, by string) (siobroker.Incident, error) {
	return s.changeIncident(ctx, number, siobroker.IncidentEventClosed, at, by, note, func(tx *sql.Tx, cur siobroker.Incident) error {
		if cur.Status != siobroker.IncidentOpen {
			return fmt.Errorf("close incident %d: %w", number, siobroker.ErrIncidentClosed)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE incidents SET status = 'closed', closed_at = ?, closed_ns = ?,
				close_note = ? WHERE number = ?`,
			siobroker.FormatTime(at), at.UnixNano(), note, number); err != nil {
			return fmt.Errorf("close incident %d: %w", number, err)
		}
		return nil
	})
}

// RecordIncidentAction records that action no of incident number started (end false) or ended
// (end true) at at. Each is recorded once: a second start or end wraps siobroker.ErrActionRecorded,
// an end before the start (or of an action not started) siobroker.ErrActionOrder, and an action
// the incident does not have siobroker.ErrActionNotFound; the incident is returned with such an
// error, unchanged. A closed incident's actions may be recorded too: the table is often completed
// after the emergency is over.
func (s *DB) RecordIncidentAction(ctx context.Context, number int64, no int, end bool, at time.Time, by string) (siobroker.Incident, error) {
	kind, what := siobroker.IncidentEventActionStarted, "start"
	if end {
		kind, what = siobroker.IncidentEventActionEnded, "end"
	}
	note := fmt.Sprintf("action %d %s at %s", no, what, siobroker.FormatTime(at))
	return s.changeIncident(ctx, number, kind, at, by, note, func(tx *sql.Tx, cur siobroker.Incident) error {
		var a *siobroker.IncidentAction
		for i := range cur.Actions {
			if cur.Actions[i].No == no {
				a = &cur.Actions[i]
			}
		}
		switch {
		case a == nil:
			return fmt.Errorf("incident %d: action %d: %w", number, no, siobroker.ErrActionNotFound)
		case !end && !a.StartedAt.IsZero():
			return fmt.Errorf("incident %d: the start of action %d was %w at %s", number, no, siobroker.ErrActionRecorded, siobroker.FormatTime(a.StartedAt))
		case end && !a.EndedAt.IsZero():
			return fmt.Errorf("incident %d: the end of action %d was %w at %s", number, no, siobroker.ErrActionRecorded, siobroker.FormatTime(a.EndedAt))
		case end && a.StartedAt.IsZero():
			return fmt.Errorf("incident %d: action %d has not started: %w", number, no, siobroker.ErrActionOrder)
		case end && at.Before(a.StartedAt):
			return fmt.Errorf("incident %d: action %d started at %s, after %s: %w", number, no,
				siobroker.FormatTime(a.StartedAt), siobroker.FormatTime(at), siobroker.ErrActionOrder)
		}
		col := "started"
		if end {
			col = "ended"
		}
		// col is ours, not input.
		if _, err := tx.ExecContext(ctx, `UPDATE incident_actions SET `+col+`_at = ?, `+col+`_ns = ? WHERE number = ? AND no = ?`,
			siobroker.FormatTime(at), at.UnixNano(), number, no); err != nil {
			return fmt.Errorf("record the %s of action %d of incident %d: %w", what, no, number, err)
		}
		return nil
	})
}

// Incident returns incident number, with its actions; ok is false when there is none.
func (s *DB) Incident(ctx context.Context, number int64) (siobroker.Incident, bool, error) {
	return incidentByNumber(ctx, s.db, number)
}

// IncidentOf returns the last incident of type typ and cause, open or closed, with its actions;
// ok is false when there is none. An incident opened once for a cause that must be recorded once
// (an emergency maintenance window) is found by it even after the operator closed it.
func (s *DB) IncidentOf(ctx context.Context, typ string, cause siobroker.IncidentCause) (siobroker.Incident, bool, error) {
	var number int64
	err := s.db.QueryRowContext(ctx, `SELECT number FROM incidents
		WHERE type = ? AND service = ? AND queue = ? AND adapter = ? ORDER BY number DESC LIMIT 1`,
		typ, cause.Service, cause.Queue, cause.Adapter).Scan(&number)
	if errors.Is(err, sql.ErrNoRows) {
		return siobroker.Incident{}, false, nil
	}
	if err != nil {
		return siobroker.Incident{}, false, fmt.Errorf("read incident of %s: %w", cause, err)
	}
	return incidentByNumber(ctx, s.db, number)
}

// Incidents returns the open incidents, or all of them when all is true, by number, with their
// actions.
func (s *DB) Incidents(ctx context.Context, all bool) ([]siobroker.Incident, error) {
	q, where := `SELECT `+incidentColumns+` FROM incidents`, ""
	if !all {
		q += ` WHERE status = 'open'`
		where = `WHERE number IN (SELECT number FROM incidents WHERE status = 'open')`
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY number`)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	var out []siobroker.Incident
	for rows.Next() {
		inc, _, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("read incidents: %w", err)
		}
		out = append(out, inc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	rows.Close()
	actions, err := readActions(ctx, s.db, where)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Actions = actions[out[i].Number]
	}
	return out, nil
}

// IncidentEvents returns the history of incident number, oldest first.
func (s *DB) IncidentEvents(ctx context.Context, number int64) ([]siobroker.IncidentEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, number, kind, at_ns, by, note, incident_json FROM incident_events
		WHERE number = ? ORDER BY id`, number)
	if err != nil {
		return nil, fmt.Errorf("read incident %d history: %w", number, err)
	}
	defer rows.Close()
	var out []siobroker.IncidentEvent
	for rows.Next() {
		var e siobroker.IncidentEvent
		var at int64
		var js string
		if err := rows.Scan(&e.ID, &e.Number, &e.Kind, &at, &e.By, &e.Note, &js); err != nil {
			return nil, fmt.Errorf("read incident %d history: %w", number, err)
		}
		e.At = time.Unix(0, at).In(siobroker.Astana)
		if err := json.Unmarshal([]byte(js), &e.Incident); err != nil {
			return nil, fmt.Errorf("incident %d event %d: %w", number, e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read incident %d history: %w", number, err)
	}
	return out, nil
}
