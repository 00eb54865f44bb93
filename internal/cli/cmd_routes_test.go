package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/sqlite"
)

// brokerConfigFile writes a broker configuration naming the shipped routes, with extra YAML.
func brokerConfigFile(t *testing.T, routesFile, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broker.yaml")
	text := "routing:\n  routes_file: " + routesFile + "\n" + extra
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRoutesCommand(t *testing.T) {
	shipped, err := os.ReadFile("../../configs/routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routesFile := filepath.Join(t.TempDir(), "routes.yaml")
	edited := strings.Replace(string(shipped), "queues: []", "queues: [sio.kgd]", 1)
	edited = strings.Replace(edited, "11: {queue: sio.service.011, adapter: demo, backend: demo}", "11: {queue: sio.kgd, adapter: kgd, backend: postgres, timeout: 20s}", 1)
	if err := os.WriteFile(routesFile, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := brokerConfigFile(t, routesFile, "transport: amqp\namqp:\n  prefix: test.\n")
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"routes", "--config", conf}, &out, &errb); code != 0 {
		t.Fatalf("routes exited %d: %s", code, errb.String())
	}
	text := out.String()
	for _, want := range []string{"SERVICE  QUEUE", "transport amqp", "test.sio.kgd", "kgd      postgres  20s\n", "test.sio.service.012", "10s (default)"} {
		if !strings.Contains(text, want) {
			t.Errorf("routes output lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(text, "REGISTRY  QUEUE                     ADAPTER\naisoip    test.sio.registry.aisoip  demo\n") {
		t.Errorf("routes output lacks the registries' routes:\n%s", text)
	}
	if n := strings.Count(text, "\n"); n != 2+93+2+3 {
		t.Errorf("%d lines, want a title, a header and 93 routes, then a title, a header and 3 registries", n)
	}
	out.Reset()
	if code := Main(context.Background(), []string{"routes", "--config", conf, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("routes --json exited %d", code)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil || len(rows) != 93 || rows[10]["transportQueue"] != "test.sio.kgd" {
		t.Errorf("routes --json: %v, %d rows, %v", err, len(rows), rows[10])
	}
	// A table that fails the check is reported with its line, and the exit status says so.
	bad := strings.Replace(edited, "  12: {queue: sio.service.012, adapter: demo, backend: demo}", "", 1)
	if err := os.WriteFile(routesFile, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := Main(context.Background(), []string{"routes", "--config", conf}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no route for service 12") {
		t.Errorf("bad table: exit %d, %s", code, errb.String())
	}
}

func TestMaintenanceCommand(t *testing.T) {
	data := t.TempDir()
	cmd := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"maintenance"}, append(args, "--data", data, "--file", filepath.Join(data, "none.yaml"))...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := cmd("announce", "--start", "2099-12-01T22:00:00+05:00", "--end", "2099-12-02T02:00:00+05:00", "--reason", "КГД upgrade", "--services", "12,11", "--by", "operator Askarov")
	if code != 0 || !strings.Contains(out, "announced window 1") || !strings.Contains(out, "services 11,12") {
		t.Fatalf("announce: %d %s %s", code, out, errs)
	}
	if code, out, _ = cmd("list"); code != 0 || !strings.Contains(out, "КГД upgrade") || !strings.Contains(out, "operator Askarov") {
		t.Errorf("list: %d %s", code, out)
	}
	if code, _, errs = cmd("announce", "--start", "2099-12-01T22:00:00+05:00", "--end", "2099-12-01T20:00:00+05:00", "--reason", "x"); code != 1 || !strings.Contains(errs, "must be after start") {
		t.Errorf("end before start: %d %s", code, errs)
	}
	if code, _, _ = cmd("announce", "--start", "tomorrow", "--end", "2099-12-01T20:00:00+05:00", "--reason", "x"); code != 2 {
		t.Errorf("bad time: exit %d, want 2", code)
	}
	if code, out, _ = cmd("cancel", "1"); code != 0 || !strings.Contains(out, "cancelled window 1") {
		t.Errorf("cancel: %d %s", code, out)
	}
	if code, _, errs = cmd("cancel", "1"); code != 1 || !strings.Contains(errs, "cancelled already") {
		t.Errorf("cancel twice: %d %s", code, errs)
	}
	if code, out, _ = cmd("list"); code != 0 || strings.Contains(out, "КГД upgrade") {
		t.Errorf("a cancelled window is listed as current: %s", out)
	}

	// The announcement and the cancellation are in the journal (the store's, as no --config
	// names another), as the dashboard's are; the refused announcement is not.
	db, err := sqlite.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ops, err := db.Journal().Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalOperator}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`"action":"announce","channel":"cli","by":"operator Askarov","windowId":1,"window":{"id":1,"services":[11,12],"start":"2099-12-01T22:00:00.000+05:00"`,
		`"action":"cancel","channel":"cli","by":"`,
	}
	if len(ops) != len(want) {
		t.Fatalf("%d operator records, want %d: %+v", len(ops), len(want), ops)
	}
	for i, w := range want {
		if ops[i].Code != "ok" || !strings.Contains(string(ops[i].Data), w) {
			t.Errorf("operator record %d: code %s, data %s; want %s", i, ops[i].Code, ops[i].Data, w)
		}
	}
	if !strings.Contains(string(ops[1].Data), `"windowId":1`) {
		t.Errorf("the cancellation's record does not name window 1: %s", ops[1].Data)
	}

	// A journal that cannot be opened refuses the action before it is taken.
	bad := filepath.Join(data, "bad.yaml")
	if err := os.WriteFile(bad, []byte("journal: {driver: postgres, dsn: \"postgres://nobody@127.0.0.1:1/none?connect_timeout=1\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs = cmd("announce", "--start", "2099-12-03T22:00:00+05:00", "--end", "2099-12-04T02:00:00+05:00", "--reason", "y", "--config", bad); code != 1 || !strings.Contains(errs, "nothing was done") {
		t.Errorf("announce with an unreachable journal: exit %d, %s", code, errs)
	}
	if code, out, _ = cmd("list"); code != 0 || strings.Contains(out, "2099-12-03") {
		t.Errorf("an announcement whose journal could not be opened was made: %s", out)
	}
}

// TestMaintenanceAnnounceEmergency: announce refuses a window that has begun, or that starts
// within maintenance_min_notice, unless --emergency; an emergency is announced and opens an
// incident in the journal of emergencies (§39–41), which `incidents list` shows, and the journal
// records its opening.
func TestMaintenanceAnnounceEmergency(t *testing.T) {
	data := t.TempDir()
	cmd := func(name string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{name}, append(args, "--data", data)...), &out, &errb)
		return code, out.String(), errb.String()
	}
	// Begun in 2020, ending in 2099: whatever today is, it has begun.
	begun := []string{"announce", "--start", "2020-01-01T00:00:00+05:00", "--end", "2099-01-01T00:00:00+05:00", "--reason", "отказ СХД",
		"--services", "7", "--by", "operator Askarov", "--file", filepath.Join(data, "none.yaml")}
	if code, _, errs := cmd("maintenance", begun...); code != 1 || !strings.Contains(errs, "before it is announced") || !strings.Contains(errs, "emergency") {
		t.Fatalf("a window that has begun, without --emergency: exit %d, %s", code, errs)
	}
	soon := time.Now().Add(time.Hour).In(siobroker.Astana).Format(time.RFC3339)
	later := time.Now().Add(3 * time.Hour).In(siobroker.Astana).Format(time.RFC3339)
	if code, _, errs := cmd("maintenance", "announce", "--start", soon, "--end", later, "--reason", "x", "--file", filepath.Join(data, "none.yaml")); code != 1 ||
		!strings.Contains(errs, "at least 24h0m0s ahead") {
		t.Fatalf("a window an hour ahead: exit %d, %s", code, errs)
	}
	code, out, errs := cmd("maintenance", append(begun, "--emergency")...)
	if code != 0 || !strings.Contains(out, "announced window 1: emergency maintenance no. 1") || !strings.Contains(out, "incident 1 is open") {
		t.Fatalf("--emergency: exit %d, %s %s", code, out, errs)
	}
	if code, out, _ := cmd("maintenance", "list", "--file", filepath.Join(data, "none.yaml")); code != 0 || !strings.Contains(out, "emergency") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	if code, out, _ := cmd("incidents", "list"); code != 0 || !strings.Contains(out, "emergency-maintenance") || !strings.Contains(out, "maintenance window 1") {
		t.Errorf("incidents list: exit %d\n%s", code, out)
	}
	db, err := sqlite.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Journal().Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalIncident, siobroker.JournalOperator}})
	// The incident is opened as the window is stored, and the announcement journaled after.
	if err != nil || len(recs) != 2 || recs[0].Kind != siobroker.JournalIncident || recs[0].Code != siobroker.IncidentEventOpened ||
		recs[1].Kind != siobroker.JournalOperator || !strings.Contains(string(recs[1].Data), `"emergency":true`) {
		t.Fatalf("journal: %+v %v", recs, err)
	}
}
