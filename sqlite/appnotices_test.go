package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// TestApplicationNoticesMigration: in a store made before the notices of applications, what had
// happened is not told afterwards (submissions, decisions), but an application still pending past
// its deadline is: the operator must hear of it.
func TestApplicationNoticesMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	before := slices.Index(migrations, migrationApplicationNotices)
	if before < 0 {
		t.Fatal("migrationApplicationNotices is not among the migrations")
	}
	for i, m := range migrations[:before] {
		if _, err := raw.ExecContext(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)
	day := 24 * time.Hour
	if _, err := raw.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, before)); err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		iin, status   string
		submitted, by time.Time
	}{
		{"870315123455", "pending", now.Add(-time.Hour), now.Add(day - time.Hour)}, // within its deadline
		{"900101300017", "pending", now.Add(-2 * day), now.Add(-day)},              // past it
		{"750312300458", "approved", now.Add(-3 * day), now.Add(-2 * day)},         // decided
	} {
		if _, err := raw.ExecContext(ctx, `INSERT INTO submitted_applications(kind, iin, reason, user_json, submitted_ns, submitted_by,
				deadline_ns, status) VALUES ('register', ?, 'r', '{}', ?, 'кадры', ?, ?)`, a.iin, a.submitted.UnixNano(), a.by.UnixNano(), a.status); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	due, err := db.ApplicationNoticesDue(ctx, now, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Application.Application.IIN != "900101300017" || due[0].Event != siobroker.ApplicationEventOverdue {
		t.Fatalf("due after the migration: %+v", due)
	}
	notes, first, err := db.EnqueueApplicationNotices(ctx, due[0].Application.ID, due[0].Event, now, nil)
	if err != nil || !first || len(notes) != 0 {
		t.Fatalf("mark with no notices: %v %v %v", notes, first, err)
	}
	if _, first, err := db.EnqueueApplicationNotices(ctx, due[0].Application.ID, due[0].Event, now, nil); err != nil || first {
		t.Fatalf("a second mark: first=%v, %v", first, err)
	}
	if due, err := db.ApplicationNoticesDue(ctx, now, 100); err != nil || len(due) != 0 {
		t.Fatalf("due once marked: %+v, %v", due, err)
	}
}
