package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
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
