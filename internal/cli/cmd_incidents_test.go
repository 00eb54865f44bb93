package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/sqlite"
)

// runIncidents runs "siobroker incidents ARGS" and returns its exit code, stdout and stderr.
func runIncidents(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"incidents"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestIncidentsCommand(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()

	// The broker (another process) has opened two incidents.
	db, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, siobroker.Astana)
	for _, svc := range []int{7, 12} {
		if _, _, err := db.OpenIncident(ctx, siobroker.Incident{
			Type: siobroker.IncidentDeliveryDelay, Cause: siobroker.IncidentCause{Service: svc, Queue: fmt.Sprintf("sio.service.%03d", svc), Adapter: "demo"},
			LastError: "connection refused", StartedAt: start, OpenedAt: start.Add(61 * time.Minute), Affected: 5,
		}, "siobroker"); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	code, out, errs := runIncidents(t, "list", "--data", data)
	if code != 0 || !strings.Contains(out, "2 open incidents") || !strings.Contains(out, "sio.service.007") ||
		!strings.Contains(out, "2026-03-10T09:00:00.000+05:00") {
		t.Fatalf("list = %d\n%s%s", code, out, errs)
	}

	// Usage errors.
	for _, args := range [][]string{
		{"annotate", "1", "--data", data},
		{"annotate", "--data", data, "--measures", "x"},
		{"annotate", "x1", "--data", data, "--measures", "x"},
		{"close", "1", "--data", data},
		{"show", "--data", data},
		{"frobnicate"},
	} {
		if code, _, _ := runIncidents(t, args...); code != 2 {
			t.Errorf("%v = %d, want 2", args, code)
		}
	}

	code, out, errs = runIncidents(t, "annotate", "1", "--data", data, "--by", "оператор",
		"--measures", "адаптер перезапущен", "--responsible", "Касымов А., дежурный инженер")
	if code != 0 || !strings.Contains(out, "annotated incident 1") {
		t.Fatalf("annotate = %d\n%s%s", code, out, errs)
	}
	code, out, errs = runIncidents(t, "close", "--data", data, "--by", "оператор", "--note", "адаптер восстановлен", "1")
	if code != 0 || !strings.Contains(out, "closed incident 1 at ") || !strings.Contains(out, "+05:00") {
		t.Fatalf("close = %d\n%s%s", code, out, errs)
	}
	if code, _, errs = runIncidents(t, "close", "1", "--data", data, "--note", "again"); code != 1 || !strings.Contains(errs, "closed already") {
		t.Fatalf("second close = %d\n%s", code, errs)
	}
	if code, _, errs = runIncidents(t, "annotate", "99", "--data", data, "--measures", "x"); code != 1 || !strings.Contains(errs, "no such incident") {
		t.Fatalf("annotate 99 = %d\n%s", code, errs)
	}

	code, out, errs = runIncidents(t, "show", "1", "--data", data)
	if code != 0 {
		t.Fatalf("show = %d\n%s", code, errs)
	}
	for _, want := range []string{"status:", "closed", "адаптер перезапущен", "Касымов А., дежурный инженер",
		"адаптер восстановлен", "connection refused", "history (3):", "opened", "annotated", "оператор",
		"started:", "2026-03-10T09:00:00.000+05:00", "2026-03-10T10:01:00.000+05:00"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runIncidents(t, "list", "--data", data)
	if code != 0 || !strings.Contains(out, "1 open incidents") {
		t.Fatalf("list after close = %d\n%s", code, out)
	}
	code, out, _ = runIncidents(t, "list", "--all", "--data", data)
	if code != 0 || !strings.Contains(out, "2 incidents") || !strings.Contains(out, "Касымов") {
		t.Fatalf("list --all = %d\n%s", code, out)
	}
	// §39: the operator's annotation and close are recorded in the journal too.
	db, err = sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Journal().Query(ctx, siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalIncident}})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Code != "annotated" || recs[1].Code != "closed" {
		t.Fatalf("incident journal records %+v, want the annotation and the close", recs)
	}
}

// TestEmergencyCommands: an operator opens an emergency of Appendix 7 by hand with the plan of its
// kind, records its actions' starts and ends, sees the one past its maximum time in list and show,
// and prints the register in the form of Appendix 7 as CSV and HTML; every change is journaled,
// with who made it.
func TestEmergencyCommands(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	plans := "../../configs/emergencies.yaml"
	onset := time.Now().In(siobroker.Astana).Add(-2 * time.Hour).Truncate(time.Second)
	run := func(args ...string) (int, string, string) { return runIncidents(t, append(args, "--data", data)...) }

	for _, args := range [][]string{
		{"open", "--kind", "fire", "--cause", "x", "--plans", plans},
		{"open", "--kind", "fire-alarm", "--plans", plans},
		{"open", "--kind", "fire-alarm", "--cause", "x", "--started", "yesterday", "--plans", plans},
		{"action", "1", "1"},
		{"action", "1", "1", "--start", "--end"},
		{"action", "1", "--start"},
		{"action", "1", "0", "--start"},
		{"register", "--format", "pdf"},
	} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%v = %d, want 2", args, code)
		}
	}

	code, out, errs := run("open", "--kind", "fire-alarm", "--cause", "дым в серверной", "--started", onset.Format(time.RFC3339),
		"--plans", plans, "--by", "Асқаров")
	if code != 0 || !strings.Contains(out, "opened emergency 1: 3. Действия в случае пожарной тревоги") ||
		!strings.Contains(out, "1. Эвакуировать персонал") || !strings.Contains(errs, "shipped example") {
		t.Fatalf("open = %d\n%s%s", code, out, errs)
	}
	if code, _, errs := run("open", "--kind", "fire-alarm", "--cause", "ещё", "--plans", plans); code != 1 || !strings.Contains(errs, "open already") {
		t.Fatalf("second open = %d\n%s", code, errs)
	}
	code, out, errs = run("action", "1", "1", "--start", "--at", onset.Format(time.RFC3339), "--by", "Асқаров")
	if code != 0 || !strings.Contains(out, "action 1 (Эвакуировать персонал") || !strings.Contains(out, "OVERDUE") {
		t.Fatalf("start = %d\n%s%s", code, out, errs)
	}
	if code, out, errs = run("action", "1", "1", "--end", "--by", "Асқаров"); code != 0 || !strings.Contains(out, "end recorded") {
		t.Fatalf("end = %d\n%s%s", code, out, errs)
	}
	if code, _, errs = run("action", "1", "1", "--end"); code != 1 || !strings.Contains(errs, "recorded already") {
		t.Fatalf("second end = %d\n%s", code, errs)
	}
	if code, _, errs = run("action", "1", "2", "--end"); code != 1 || !strings.Contains(errs, "has not started") {
		t.Fatalf("end before start = %d\n%s", code, errs)
	}
	if code, _, errs = run("action", "1", "9", "--start"); code != 1 || !strings.Contains(errs, "no such action") {
		t.Fatalf("no action 9 = %d\n%s", code, errs)
	}
	if code, _, errs = run("action", "1", "2", "--start", "--at", time.Now().Add(time.Hour).Format(time.RFC3339)); code != 1 || !strings.Contains(errs, "after now") {
		t.Fatalf("a start in the future = %d\n%s", code, errs)
	}

	code, out, _ = run("list")
	if code != 0 || !strings.Contains(out, "fire-alarm") || !strings.Contains(out, "1/4") || !strings.Contains(out, "дым в серверной") {
		t.Fatalf("list = %d\n%s", code, out)
	}
	if fields := strings.Fields(strings.Split(out, "\n")[1]); fields[11] != "1" {
		t.Errorf("list: OVERDUE column %q, want action 1:\n%s", fields[11], out)
	}
	if code, out, _ = run("show", "1"); code != 0 {
		t.Fatalf("show = %d", code)
	}
	for _, want := range []string{"emergency:", "3. Действия в случае пожарной тревоги (Appendix 7)", "cause:", "дым в серверной",
		"actions (4)", "OVERDUE: 2 ч", "of 5 мин", "action-started", "action-ended", "Асқаров"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	code, out, errs = run("register", "--format", "csv")
	if code != 0 {
		t.Fatalf("register csv = %d\n%s", code, errs)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 5 || rows[1][0] != "3" || !strings.HasPrefix(rows[1][12], "Эвакуировать персонал") || !strings.HasPrefix(rows[1][17], "превышено") {
		t.Fatalf("register csv: %v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "journal.html")
	if code, out, errs = run("register", "--out", file); code != 0 || !strings.Contains(out, "wrote") {
		t.Fatalf("register html = %d\n%s%s", code, out, errs)
	}
	page, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(page), "<h1>Журнал аварийных ситуаций</h1>") || !strings.Contains(string(page), "Эвакуировать персонал") {
		t.Fatalf("register html: %v\n%s", err, page)
	}
	code, out, _ = run("register", "--format", "csv", "--to", onset.Add(-time.Hour).Format(time.RFC3339))
	if rows, _ := csv.NewReader(strings.NewReader(out)).ReadAll(); code != 0 || len(rows) != 1 {
		t.Fatalf("register before the onset = %d\n%s", code, out)
	}

	db, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Journal().Query(ctx, siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalIncident, siobroker.JournalOperator}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		var d journal.OperatorAction
		if r.Kind == siobroker.JournalOperator {
			if err := json.Unmarshal(r.Data, &d); err != nil || d.By != "Асқаров" || d.Channel != "cli" || d.Incident != 1 {
				t.Errorf("operator record %s: %+v, %v", r.Data, d, err)
			}
		}
		got = append(got, string(r.Kind)+":"+r.Code+d.Action+d.Phase)
	}
	if s := strings.Join(got, " "); s != "incident:opened operator:okopen incident:action-started operator:okactionstart incident:action-ended operator:okactionend" {
		t.Fatalf("journal: %s", s)
	}
}
