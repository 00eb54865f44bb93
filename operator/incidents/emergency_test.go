package incidents_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	stdhtml "html"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/incidents"
)

func shippedPlans(t *testing.T) *incidents.Plans {
	t.Helper()
	plans, err := incidents.LoadPlans("../../configs/emergencies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return plans
}

// TestEmergencyByHand: an operator opens a fire alarm with its onset and causes (§41); it carries
// the plan of its kind; each action's start and end are recorded and journaled; an action that
// runs past its maximum time is overdue by the injected clock, while it runs and after it ended.
func TestEmergencyByHand(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	plans := shippedPlans(t)
	svc, err := incidents.NewService(f.db, f.journal, f.clock, "Асқаров")
	if err != nil {
		t.Fatal(err)
	}
	onset := t0.Add(-10 * time.Minute)
	if _, err := svc.RecordEmergency(ctx, incidents.Emergency{Kind: siobroker.EmergencyFireAlarm, Reason: "  "}, plans.Plan(siobroker.EmergencyFireAlarm)); err == nil {
		t.Fatal("an emergency without its cause was opened")
	}
	if _, err := svc.RecordEmergency(ctx, incidents.Emergency{Kind: siobroker.EmergencyFireAlarm, Reason: "x", StartedAt: t0.Add(time.Minute)},
		plans.Plan(siobroker.EmergencyFireAlarm)); err == nil {
		t.Fatal("an emergency with its onset in the future was opened")
	}
	inc, err := svc.RecordEmergency(ctx, incidents.Emergency{Kind: siobroker.EmergencyFireAlarm, Reason: "дым в серверной", StartedAt: onset},
		plans.Plan(siobroker.EmergencyFireAlarm))
	if err != nil {
		t.Fatal(err)
	}
	if !inc.StartedAt.Equal(onset) || !inc.OpenedAt.Equal(t0) || len(inc.Actions) != 4 || inc.Reason != "дым в серверной" {
		t.Fatalf("opened %+v", inc)
	}
	if _, err := svc.RecordEmergency(ctx, incidents.Emergency{Kind: siobroker.EmergencyFireAlarm, Reason: "again"},
		plans.Plan(siobroker.EmergencyFireAlarm)); !errors.Is(err, incidents.ErrEmergencyOpen) {
		t.Fatalf("second fire alarm: %v, want ErrEmergencyOpen", err)
	}

	// Evacuation (5 min at most) starts at the onset and is still running 7 minutes later.
	if inc, err = svc.RecordAction(ctx, inc.Number, 1, false, onset); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordAction(ctx, inc.Number, 2, false, t0.Add(time.Minute)); err == nil {
		t.Fatal("an action was started in the future")
	}
	f.clock.Set(onset.Add(4 * time.Minute))
	if over := inc.Overdue(f.clock.Now()); len(over) != 0 {
		t.Fatalf("overdue after 4 of 5 minutes: %+v", over)
	}
	f.clock.Set(onset.Add(7 * time.Minute))
	if over := inc.Overdue(f.clock.Now()); len(over) != 1 || over[0].No != 1 {
		t.Fatalf("overdue after 7 of 5 minutes: %+v", over)
	}
	if inc, err = svc.RecordAction(ctx, inc.Number, 1, true, time.Time{}); err != nil || !inc.Actions[0].EndedAt.Equal(onset.Add(7*time.Minute)) {
		t.Fatalf("end now = %+v, %v", inc.Actions[0], err)
	}
	f.clock.Set(onset.Add(3 * time.Hour))
	if over := inc.Overdue(f.clock.Now()); len(over) != 1 || over[0].Elapsed(f.clock.Now()) != 7*time.Minute {
		t.Fatalf("an action that ended late stays overdue: %+v", over)
	}

	var codes []string
	for _, r := range f.journal.records() {
		if r.Kind != siobroker.JournalIncident {
			t.Fatalf("journal record %+v", r)
		}
		codes = append(codes, r.Code)
	}
	if got := strings.Join(codes, " "); got != "opened action-started action-ended" {
		t.Fatalf("journal codes %s", got)
	}
	var journaled siobroker.Incident
	if err := json.Unmarshal(f.journal.records()[2].Data, &journaled); err != nil || len(journaled.Actions) != 4 ||
		!journaled.Actions[0].EndedAt.Equal(onset.Add(7*time.Minute)) || journaled.Actions[0].Max != 5*time.Minute {
		t.Fatalf("journaled incident %+v, %v", journaled, err)
	}
}

// TestRegisterInTheFormOfAppendix7: the register puts each emergency under its kind's table with
// the onset, causes and measures (§41), each action a row of the form's six columns with the
// overdue ones marked, the incidents the broker recorded in a table of their own, and only the
// period asked.
func TestRegisterInTheFormOfAppendix7(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	plans := shippedPlans(t)
	svc, err := incidents.NewService(f.db, f.journal, f.clock, "Асқаров")
	if err != nil {
		t.Fatal(err)
	}
	power, err := svc.RecordEmergency(ctx, incidents.Emergency{Kind: siobroker.EmergencyPowerFailure, Reason: "отключение городской сети",
		StartedAt: t0.Add(-time.Hour)}, plans.Plan(siobroker.EmergencyPowerFailure))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordAction(ctx, power.Number, 1, false, t0.Add(-time.Hour)); err != nil { // 5 min at most, still running
		t.Fatal(err)
	}
	if _, err := svc.Annotate(ctx, power.Number, "переход на ДГУ", "Главный энергетик"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.db.OpenIncident(ctx, siobroker.Incident{Type: siobroker.IncidentDeliveryDelay, Cause: causeA,
		StartedAt: t0.Add(-2 * time.Hour), OpenedAt: t0.Add(-time.Hour), Affected: 3}, "siobroker"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.db.OpenIncident(ctx, siobroker.Incident{Type: string(siobroker.EmergencyFlooding), Reason: "прошлогоднее",
		StartedAt: t0.AddDate(-1, 0, 0), OpenedAt: t0.AddDate(-1, 0, 0)}, "x"); err != nil {
		t.Fatal(err)
	}
	all, err := f.db.Incidents(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	reg := incidents.NewRegister(all, t0.AddDate(0, -1, 0), t0.Add(time.Hour), f.clock.Now())
	if len(reg.Sections) != 7 || reg.Sections[4].Title != "Действия при отказе электропитания" || len(reg.Sections[4].Incidents) != 1 ||
		len(reg.Sections[5].Incidents) != 0 || len(reg.Sections[6].Incidents) != 1 {
		t.Fatalf("sections %+v", reg.Sections)
	}

	var page bytes.Buffer
	if err := reg.WriteHTML(&page, incidents.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	html := stdhtml.UnescapeString(page.String())
	for _, want := range []string{
		"<h1>Журнал аварийных ситуаций</h1>", "Приложение 7",
		"1. Действия в случае серьезного повреждения оборудования, расположенного в серверной:",
		"<th>№ п/п</th><th>Действия</th><th>Необходимое время (max)</th><th>Ответственный</th><th>Дата и время начала</th><th>Дата и время окончания</th>",
		"Аварийная ситуация № 1", "Дата и время наступления: 10.03.2026 08:00 +05:00", "Причины: отключение городской сети",
		"Принятые меры: переход на ДГУ (ответственный: Главный энергетик)",
		`<tr class="overdue"><td class="no">1</td>`, "превышено на 55 мин (не окончено)",
		"задержка отправки сообщений более одного часа: сервис 7, очередь sio.service.007", "<style>",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the HTML lacks %q", want)
		}
	}
	if strings.Contains(html, "прошлогоднее") {
		t.Error("the register holds an emergency outside its period")
	}
	page.Reset()
	if err := reg.WriteHTML(&page, incidents.HTMLOptions{Stylesheet: "/dashboard/static/register.css"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), "<style>") || !strings.Contains(page.String(), `href="/dashboard/static/register.css"`) {
		t.Error("with a stylesheet the page still has its style inline")
	}

	var out bytes.Buffer
	if err := reg.WriteCSV(&out); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// The header, four actions of the power failure, one row for the delay.
	if len(rows) != 6 || rows[0][11] != "№ п/п" || rows[0][13] != "Необходимое время (max)" {
		t.Fatalf("CSV rows %d: %q", len(rows), rows[0])
	}
	first := rows[1]
	if first[0] != "5" || first[2] != "1" || first[4] != "2026-03-10T08:00:00.000+05:00" || first[12] == "" || first[13] != "5 мин" ||
		first[15] != "2026-03-10T08:00:00.000+05:00" || !strings.HasPrefix(first[17], "превышено на 55 мин") {
		t.Errorf("first action row %q", first)
	}
	if last := rows[5]; last[0] != "7" || last[10] != "3" || last[11] != "" {
		t.Errorf("delay row %q", last)
	}
}
