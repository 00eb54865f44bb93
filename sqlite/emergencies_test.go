package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

func firePlan() []siobroker.IncidentAction {
	return []siobroker.IncidentAction{
		{No: 1, Action: "Эвакуировать персонал", Max: 10 * time.Minute, Responsible: "Начальник смены"},
		{No: 2, Action: "Перевести обмен на резервный ЦОД", Max: time.Hour, Responsible: "Дежурный администратор"},
	}
}

// TestEmergencyActions: an emergency is kept with its reason and the actions of its plan; each
// action's start and end are recorded once, in order, every one in the append-only history; one
// emergency of a kind is open at a time.
func TestEmergencyActions(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	onset := time.Date(2026, 12, 3, 14, 5, 0, 0, siobroker.Astana)
	inc, created, err := db.OpenIncident(ctx, siobroker.Incident{Type: string(siobroker.EmergencyFireAlarm),
		Reason: "сработала пожарная сигнализация в серверной", StartedAt: onset, OpenedAt: onset.Add(3 * time.Minute),
		Actions: firePlan()}, "Асқаров")
	if err != nil || !created {
		t.Fatalf("OpenIncident = %v, %v", created, err)
	}
	if kind, ok := inc.EmergencyKind(); !ok || kind != siobroker.EmergencyFireAlarm || inc.Reason == "" || len(inc.Actions) != 2 ||
		inc.Actions[1].Max != time.Hour || inc.Actions[1].Responsible != "Дежурный администратор" {
		t.Fatalf("opened: %+v", inc)
	}
	if _, created, _ := db.OpenIncident(ctx, siobroker.Incident{Type: string(siobroker.EmergencyFireAlarm), Reason: "again",
		StartedAt: onset, OpenedAt: onset, Actions: firePlan()}, "x"); created {
		t.Fatal("a second fire alarm was opened while one is open")
	}

	start := onset.Add(4 * time.Minute)
	if inc, err = db.RecordIncidentAction(ctx, inc.Number, 1, false, start, "Асқаров"); err != nil || !inc.Actions[0].StartedAt.Equal(start) {
		t.Fatalf("start = %+v, %v", inc.Actions, err)
	}
	for _, tt := range []struct {
		no   int
		end  bool
		at   time.Time
		want error
	}{
		{1, false, start.Add(time.Minute), siobroker.ErrActionRecorded},
		{1, true, start.Add(-time.Minute), siobroker.ErrActionOrder},
		{2, true, start, siobroker.ErrActionOrder},
		{3, false, start, siobroker.ErrActionNotFound},
	} {
		got, err := db.RecordIncidentAction(ctx, inc.Number, tt.no, tt.end, tt.at, "x")
		if !errors.Is(err, tt.want) || got.Number != inc.Number {
			t.Errorf("action %d end=%v: %v, want %v with the incident", tt.no, tt.end, err, tt.want)
		}
	}
	end := start.Add(25 * time.Minute) // past its 10 minutes
	if inc, err = db.RecordIncidentAction(ctx, inc.Number, 1, true, end, "Асқаров"); err != nil || !inc.Actions[0].EndedAt.Equal(end) {
		t.Fatalf("end = %+v, %v", inc.Actions, err)
	}
	if over := inc.Overdue(end); len(over) != 1 || over[0].No != 1 {
		t.Fatalf("overdue = %+v, want action 1", over)
	}
	if _, err := db.RecordIncidentAction(ctx, inc.Number, 1, true, end, "x"); !errors.Is(err, siobroker.ErrActionRecorded) {
		t.Fatalf("second end = %v", err)
	}

	list, err := db.Incidents(ctx, false)
	if err != nil || len(list) != 1 || len(list[0].Actions) != 2 || !list[0].Actions[0].EndedAt.Equal(end) {
		t.Fatalf("Incidents = %+v, %v", list, err)
	}
	events, err := db.IncidentEvents(ctx, inc.Number)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, " "); got != "opened action-started action-ended" {
		t.Fatalf("history %s", got)
	}
	if last := events[2].Incident; !last.Actions[0].EndedAt.Equal(end) || !strings.Contains(events[2].Note, "action 1 end") {
		t.Fatalf("the history keeps the incident as it was: %+v, note %q", last.Actions, events[2].Note)
	}
	if _, err := db.db.ExecContext(ctx, `UPDATE incident_events SET note = 'x'`); err == nil {
		t.Fatal("incident_events could be changed")
	}
}

// TestEmergencyMigrationKeepsIncidents: a store made before emergencies existed is migrated with
// its incidents and their history intact, still append-only, numbered on from where it was.
func TestEmergencyMigrationKeepsIncidents(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	// The store as it was before emergencies: the migrations before migrationEmergencies; Open
	// applies it and any after it.
	before := slices.Index(migrations, migrationEmergencies)
	if before < 0 {
		t.Fatal("migrationEmergencies is not among the migrations")
	}
	for i, m := range migrations[:before] {
		if _, err := raw.ExecContext(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, siobroker.Astana)
	for _, stmt := range []string{
		fmt.Sprintf(`PRAGMA user_version = %d`, before),
		`INSERT INTO incidents(type, service, queue, adapter, last_error, started_at, started_ns, opened_at, opened_ns, affected,
			measures, responsible, close_note, status) VALUES ('delivery-delay', 7, 'sio.service.007', '', 'timeout', 'x', ?, 'x', ?, 3,
			'адаптер перезапущен', 'Касымов', '', 'open')`,
		`INSERT INTO incident_events(number, kind, at, at_ns, by, note, incident_json)
			VALUES (1, 'opened', 'x', ?, 'siobroker', '', '{"number":1,"type":"delivery-delay","service":7,"queue":"sio.service.007","startedAt":"","openedAt":"","affected":3,"status":"open"}')`,
	} {
		if _, err := raw.ExecContext(ctx, stmt, at.UnixNano(), at.UnixNano()); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	raw.Close()

	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inc, ok, err := db.Incident(ctx, 1)
	if err != nil || !ok || inc.Type != siobroker.IncidentDeliveryDelay || inc.Affected != 3 || inc.Measures != "адаптер перезапущен" ||
		inc.Reason != "" || inc.Actions != nil || !inc.StartedAt.Equal(at) {
		t.Fatalf("migrated incident = %+v, %v, %v", inc, ok, err)
	}
	events, err := db.IncidentEvents(ctx, 1)
	if err != nil || len(events) != 1 || events[0].Kind != "opened" || events[0].Incident.Affected != 3 {
		t.Fatalf("migrated history = %+v, %v", events, err)
	}
	if _, err := db.db.ExecContext(ctx, `DELETE FROM incident_events`); err == nil {
		t.Fatal("the migrated history can be deleted")
	}
	if _, err := db.CloseIncident(ctx, 1, "доставка восстановлена", at.Add(2*time.Hour), "siobroker"); err != nil {
		t.Fatal(err)
	}
	events, err = db.IncidentEvents(ctx, 1)
	if err != nil || len(events) != 2 || events[1].ID <= events[0].ID {
		t.Fatalf("history after the migration = %+v, %v", events, err)
	}
	next, _, err := db.OpenIncident(ctx, siobroker.Incident{Type: string(siobroker.EmergencyFlooding), Reason: "протечка",
		StartedAt: at, OpenedAt: at, Actions: []siobroker.IncidentAction{{No: 1, Action: "Обесточить", Max: time.Minute, Responsible: "Энергетик"}}}, "x")
	if err != nil || next.Number != 2 || len(next.Actions) != 1 {
		t.Fatalf("new emergency = %+v, %v", next, err)
	}
}
