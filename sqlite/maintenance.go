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

// migrationMaintenance creates the announced maintenance windows (§36, 42 of the Rules). A
// window is never deleted: cancelling one records when and by whom, so that what clients were
// told stays on record.
const migrationMaintenance = `CREATE TABLE maintenance_windows (
		id            INTEGER PRIMARY KEY AUTOINCREMENT,
		services      TEXT NOT NULL,
		start_at      TEXT NOT NULL,
		start_ns      INTEGER NOT NULL,
		end_at        TEXT NOT NULL,
		end_ns        INTEGER NOT NULL CHECK (end_ns > start_ns),
		reason        TEXT NOT NULL,
		announced_by  TEXT NOT NULL,
		announced_at  TEXT NOT NULL,
		announced_ns  INTEGER NOT NULL,
		cancelled_at  TEXT,
		cancelled_ns  INTEGER,
		cancelled_by  TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX maintenance_windows_end ON maintenance_windows(end_ns);
	CREATE TRIGGER maintenance_windows_no_delete BEFORE DELETE ON maintenance_windows
	BEGIN SELECT RAISE(ABORT, 'maintenance windows are kept: cancel one instead'); END;`

// migrationMaintenanceEmergency marks the windows announced as emergencies (with less than the
// minimum notice, or after their start), whose incident is in the journal of emergencies.
const migrationMaintenanceEmergency = `ALTER TABLE maintenance_windows ADD COLUMN emergency INTEGER NOT NULL DEFAULT 0 CHECK (emergency IN (0, 1));`

// AddWindow records an announced maintenance window.
func (s *DB) AddWindow(ctx context.Context, w siobroker.MaintenanceWindow) (siobroker.MaintenanceWindow, error) {
	services, err := json.Marshal(w.Services)
	if err != nil {
		return siobroker.MaintenanceWindow{}, fmt.Errorf("encode services: %w", err)
	}
	if w.Services == nil {
		services = []byte("[]")
	}
	startText, startNS := timeColumns(w.Start)
	endText, endNS := timeColumns(w.End)
	annText, annNS := timeColumns(w.AnnouncedAt)
	res, err := s.exec(ctx, `INSERT INTO maintenance_windows
		(services, start_at, start_ns, end_at, end_ns, reason, announced_by, announced_at, announced_ns, emergency)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(services), startText, startNS, endText, endNS, w.Reason, w.AnnouncedBy, annText, annNS, w.Emergency)
	if err != nil {
		return siobroker.MaintenanceWindow{}, fmt.Errorf("record maintenance window: %w", err)
	}
	if w.ID, err = res.LastInsertId(); err != nil {
		return siobroker.MaintenanceWindow{}, fmt.Errorf("record maintenance window: %w", err)
	}
	w.Source = siobroker.WindowAnnounced
	w.Start, w.End, w.AnnouncedAt = astana(w.Start), astana(w.End), astana(w.AnnouncedAt)
	return w, nil
}

// CancelWindow marks an announced window cancelled.
func (s *DB) CancelWindow(ctx context.Context, id int64, at time.Time, by string) error {
	text, ns := timeColumns(at)
	res, err := s.exec(ctx, `UPDATE maintenance_windows SET cancelled_at = ?, cancelled_ns = ?, cancelled_by = ?
		WHERE id = ? AND cancelled_ns IS NULL`, text, ns, by, id)
	if err != nil {
		return fmt.Errorf("cancel maintenance window %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var cancelled sql.NullInt64
	switch err := s.db.QueryRowContext(ctx, `SELECT cancelled_ns FROM maintenance_windows WHERE id = ?`, id).Scan(&cancelled); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("window %d: %w", id, siobroker.ErrWindowNotFound)
	case err != nil:
		return fmt.Errorf("cancel maintenance window %d: %w", id, err)
	default:
		return fmt.Errorf("window %d: %w", id, siobroker.ErrWindowCancelled)
	}
}

// MaintenanceWindows returns the announced windows ending after since, by start.
func (s *DB) MaintenanceWindows(ctx context.Context, since time.Time) ([]siobroker.MaintenanceWindow, error) {
	var sinceNS int64
	if !since.IsZero() {
		sinceNS = since.UnixNano()
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, services, start_ns, end_ns, reason, announced_by, announced_ns, cancelled_ns, emergency
		FROM maintenance_windows WHERE end_ns > ? ORDER BY start_ns, id`, sinceNS)
	if err != nil {
		return nil, fmt.Errorf("read maintenance windows: %w", err)
	}
	defer rows.Close()
	var out []siobroker.MaintenanceWindow
	for rows.Next() {
		var w siobroker.MaintenanceWindow
		var services string
		var start, end, announced int64
		var cancelled sql.NullInt64
		if err := rows.Scan(&w.ID, &services, &start, &end, &w.Reason, &w.AnnouncedBy, &announced, &cancelled, &w.Emergency); err != nil {
			return nil, fmt.Errorf("read maintenance windows: %w", err)
		}
		if err := json.Unmarshal([]byte(services), &w.Services); err != nil {
			return nil, fmt.Errorf("maintenance window %d: services: %w", w.ID, err)
		}
		if len(w.Services) == 0 {
			w.Services = nil
		}
		w.Start, w.End = fromNS(sql.NullInt64{Int64: start, Valid: true}), fromNS(sql.NullInt64{Int64: end, Valid: true})
		w.AnnouncedAt, w.Cancelled = fromNS(sql.NullInt64{Int64: announced, Valid: true}), fromNS(cancelled)
		w.Source = siobroker.WindowAnnounced
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read maintenance windows: %w", err)
	}
	return out, nil
}
