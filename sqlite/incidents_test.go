package sqlite

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

var incT0 = time.Date(2026, 3, 10, 4, 0, 0, 123456789, time.UTC) // 09:00:00.123456789 in Astana

func delayIncident(service int) siobroker.Incident {
	return siobroker.Incident{
		Type:      siobroker.IncidentDeliveryDelay,
		Cause:     siobroker.IncidentCause{Service: service, Queue: "sio.service.007", Adapter: "demo"},
		LastError: "connection refused",
		StartedAt: incT0,
		OpenedAt:  incT0.Add(61 * time.Minute),
		Affected:  5,
	}
}

func TestIncidentLifecycle(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)

	inc, created, err := db.OpenIncident(ctx, delayIncident(7), "siobroker")
	if err != nil || !created {
		t.Fatalf("OpenIncident = %v, %v", created, err)
	}
	if inc.Number != 1 || inc.Status != siobroker.IncidentOpen || inc.Affected != 5 || !inc.StartedAt.Equal(incT0) ||
		inc.StartedAt.Location() != siobroker.Astana || !inc.ClosedAt.IsZero() {
		t.Fatalf("opened: %+v", inc)
	}
	// One open incident per cause: a second open returns the first.
	again, created, err := db.OpenIncident(ctx, delayIncident(7), "siobroker")
	if err != nil || created || again.Number != 1 {
		t.Fatalf("second OpenIncident = %+v, %v, %v", again, created, err)
	}
	// Another cause is another incident, numbered next.
	other, created, err := db.OpenIncident(ctx, delayIncident(12), "siobroker")
	if err != nil || !created || other.Number != 2 {
		t.Fatalf("other cause = %+v, %v, %v", other, created, err)
	}

	at := incT0.Add(70 * time.Minute)
	if inc, err = db.UpdateIncident(ctx, 1, 3, "", at, "siobroker"); err != nil || inc.Affected != 8 || inc.LastError != "connection refused" {
		t.Fatalf("UpdateIncident = %+v, %v", inc, err)
	}
	if inc, err = db.UpdateIncident(ctx, 1, 0, "i/o timeout", at, "siobroker"); err != nil || inc.Affected != 8 || inc.LastError != "i/o timeout" {
		t.Fatalf("UpdateIncident error only = %+v, %v", inc, err)
	}
	if inc, err = db.AnnotateIncident(ctx, 1, "adapter restarted", "", at, "оператор"); err != nil || inc.Measures != "adapter restarted" {
		t.Fatalf("AnnotateIncident = %+v, %v", inc, err)
	}
	if inc, err = db.AnnotateIncident(ctx, 1, "", "Касымов А.", at, "оператор"); err != nil ||
		inc.Measures != "adapter restarted" || inc.Responsible != "Касымов А." {
		t.Fatalf("AnnotateIncident responsible = %+v, %v", inc, err)
	}
	closedAt := incT0.Add(98 * time.Minute)
	if inc, err = db.CloseIncident(ctx, 1, noteResumed, closedAt, "siobroker"); err != nil ||
		inc.Status != siobroker.IncidentClosed || !inc.ClosedAt.Equal(closedAt) || inc.CloseNote != noteResumed {
		t.Fatalf("CloseIncident = %+v, %v", inc, err)
	}
	if inc, err = db.CloseIncident(ctx, 1, "again", closedAt, "x"); !errors.Is(err, siobroker.ErrIncidentClosed) || !inc.ClosedAt.Equal(closedAt) {
		t.Fatalf("second close = %+v, %v; want ErrClosed with the incident", inc, err)
	}
	if _, err = db.UpdateIncident(ctx, 1, 1, "", closedAt, "x"); !errors.Is(err, siobroker.ErrIncidentClosed) {
		t.Fatalf("update of a closed incident = %v, want ErrClosed", err)
	}
	// Measures are often written up after the close.
	if inc, err = db.AnnotateIncident(ctx, 1, "adapter restarted; monitoring added", "", closedAt.Add(time.Hour), "оператор"); err != nil ||
		inc.Status != siobroker.IncidentClosed || inc.Measures != "adapter restarted; monitoring added" {
		t.Fatalf("annotate closed = %+v, %v", inc, err)
	}
	if _, err = db.CloseIncident(ctx, 99, "x", closedAt, "x"); !errors.Is(err, siobroker.ErrIncidentNotFound) {
		t.Fatalf("close of a missing incident = %v, want ErrNotFound", err)
	}
	if _, ok, err := db.Incident(ctx, 99); ok || err != nil {
		t.Fatalf("Incident(99) = %v, %v", ok, err)
	}

	// After the close, the same cause may open a new incident.
	if inc, created, err = db.OpenIncident(ctx, delayIncident(7), "siobroker"); err != nil || !created || inc.Number != 3 {
		t.Fatalf("reopen after close = %+v, %v, %v", inc, created, err)
	}

	open, err := db.Incidents(ctx, false)
	if err != nil || len(open) != 2 || open[0].Number != 2 || open[1].Number != 3 {
		t.Fatalf("open incidents = %+v, %v", open, err)
	}
	all, err := db.Incidents(ctx, true)
	if err != nil || len(all) != 3 {
		t.Fatalf("all incidents = %+v, %v", all, err)
	}

	events, err := db.IncidentEvents(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind+"/"+e.By)
	}
	want := "opened/siobroker updated/siobroker updated/siobroker annotated/оператор annotated/оператор closed/siobroker annotated/оператор"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("history = %v\nwant %s", kinds, want)
	}
	if e := events[5]; e.Note != noteResumed || e.Incident.Status != siobroker.IncidentClosed ||
		e.Incident.Affected != 8 || !e.At.Equal(closedAt) || e.At.Location() != siobroker.Astana {
		t.Fatalf("close event = %+v", e)
	}

	// The history is append-only, and the times are written in Astana time.
	for _, q := range []string{`UPDATE incident_events SET note = 'x'`, `DELETE FROM incident_events`} {
		if _, err := db.db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused", q, err)
		}
	}
	var startedText, atText string
	if err := db.db.QueryRowContext(ctx, `SELECT started_at FROM incidents WHERE number = 1`).Scan(&startedText); err != nil {
		t.Fatal(err)
	}
	if err := db.db.QueryRowContext(ctx, `SELECT at FROM incident_events WHERE number = 1 ORDER BY id LIMIT 1`).Scan(&atText); err != nil {
		t.Fatal(err)
	}
	if startedText != "2026-03-10T09:00:00.123+05:00" || atText != "2026-03-10T10:01:00.123+05:00" {
		t.Errorf("times as text: %s, %s", startedText, atText)
	}
}

func TestIncidentValidation(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	bad := delayIncident(7)
	bad.StartedAt = time.Time{}
	if _, _, err := db.OpenIncident(ctx, bad, "x"); err == nil {
		t.Error("an incident without a start time was opened")
	}
	bad = delayIncident(7)
	bad.Type = ""
	if _, _, err := db.OpenIncident(ctx, bad, "x"); err == nil {
		t.Error("an incident without a type was opened")
	}
	if _, _, err := db.OpenIncident(ctx, delayIncident(7), "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AnnotateIncident(ctx, 1, "", "", incT0, "x"); err == nil {
		t.Error("an empty annotation was recorded")
	}
	if _, err := db.UpdateIncident(ctx, 1, -1, "", incT0, "x"); err == nil {
		t.Error("a negative count was recorded")
	}
	if _, err := db.CloseIncident(ctx, 1, "x", time.Time{}, "x"); err == nil {
		t.Error("a close without a time was recorded")
	}
}

// TestOpenIncidentConcurrent opens the same cause from many goroutines (as two broker processes
// sharing the store would): exactly one incident is created.
func TestOpenIncidentConcurrent(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	numbers := map[int64]bool{}
	for range 8 {
		wg.Go(func() {
			inc, c, err := db.OpenIncident(ctx, delayIncident(7), "siobroker")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			numbers[inc.Number] = true
			if c {
				created++
			}
		})
	}
	wg.Wait()
	if created != 1 || len(numbers) != 1 {
		t.Fatalf("created %d, numbers %v; want one incident", created, numbers)
	}
}

// noteResumed is a close note, as the tracker writes one.
const noteResumed = "delivery resumed"
