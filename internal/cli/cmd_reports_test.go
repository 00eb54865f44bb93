package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/operator/replayguard"
	"github.com/sio-pso/siobroker/operator/reports"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

type reportsTestUsers map[string]siobroker.User

func (u reportsTestUsers) Authorize(_ context.Context, iin string) (siobroker.User, error) {
	if user, ok := u[iin]; ok {
		return user, nil
	}
	return siobroker.User{}, siobroker.Errorf(siobroker.CodeUserUnknown, "user %s is not registered", iin)
}

func TestReportsCommand(t *testing.T) {
	dir := t.TempDir()
	man, err := devpki.Generate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var prosecutor, judge devpki.User
	for _, u := range man.Users {
		if u.Status != devpki.StatusValid {
			continue
		}
		switch u.Role {
		case 1:
			prosecutor = u
		case 2:
			judge = u
		}
	}
	if prosecutor.IIN == "" || judge.IIN == "" {
		t.Fatal("the development PKI has no prosecutor or judge")
	}
	const court = "Есильский районный суд г. Астаны"
	users := reportsTestUsers{
		prosecutor.IIN: {IIN: prosecutor.IIN, Role: 1, Organisation: "Генеральная прокуратура", Status: siobroker.UserActive},
		judge.IIN:      {IIN: judge.IIN, Role: 2, Organisation: court, ReportsRight: true, Status: siobroker.UserActive},
	}
	now := time.Now()
	// The journal of the embedded store, with one request of the judge's court as the broker
	// journals it; its senderId is a marker no report shows.
	data := t.TempDir()
	db, err := sqlite.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j := db.Journal()
	rawRequest, err := soap.Serialize(soap.NewRequest(siobroker.RequestInfo{MessageID: "m1", ServiceID: "SIO_PSO_QUERY",
		MessageDate: now.Add(-2 * time.Hour), SenderID: "SIGNED-REQUEST"}, siobroker.Query{Basis: siobroker.BasisCourtCivil,
		Case: siobroker.CaseRef{Number: "7199-26-00-2/15", Year: "2026", Court: court}, Subject: siobroker.Subject{IIN: "870315123455"},
		Services: []int{7}, Purpose: "гражданское дело о взыскании"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(context.Background(),
		siobroker.JournalRecord{At: now.Add(-2 * time.Hour), Kind: siobroker.JournalRequest, RequestID: "r1", MessageID: "m1", SignerIIN: judge.IIN, Organisation: court, Data: rawRequest},
		siobroker.JournalRecord{At: now.Add(-2 * time.Hour), Kind: siobroker.JournalExchange, RequestID: "r1", MessageID: "m1", SignerIIN: judge.IIN, Organisation: court, Service: 7, Code: "ok/OK"},
	); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.DataDir = data
	indexer, err := app.NewIndexer(cfg, j, db, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	broker, err := signing.LoadSigner(filepath.Join(dir, man.BrokerCert), filepath.Join(dir, man.BrokerKey))
	if err != nil {
		t.Fatal(err)
	}
	trust, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: []string{filepath.Join(dir, man.CA)}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := reports.New(reports.Config{}, j, indexer, users, siobroker.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler(mustVerifier(t, signing.VerifierConfig{Trust: trust}).Verify, broker.Sign, soap.Limits{}, siobroker.SystemClock{}, replayguard.NewMemory()))
	defer srv.Close()

	period := []string{"--from", now.Add(-24 * time.Hour).Format(time.RFC3339), "--to", now.Add(time.Minute).Format(time.RFC3339)}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := cmdReports(context.Background(), args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	base := func(user devpki.User, extra ...string) []string {
		return append(append([]string{"--url", srv.URL + reports.Path, "--pki", dir, "--user", user.IIN}, period...), extra...)
	}

	t.Run("report csv", func(t *testing.T) {
		code, out, errOut := run(base(judge)...)
		if code != reportsExitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(rows) != 2 || rows[0][0] != "time" || rows[1][1] != "r1" || rows[1][7] != "4" ||
			rows[1][9] != "7199-26-00-2/15; year 2026; court "+court || rows[1][13] != "7" || rows[1][15] != "answered" {
			t.Fatalf("CSV (%v):\n%s", err, out)
		}
		if strings.Contains(out, "SIGNED-REQUEST") {
			t.Error("signed bytes in a report")
		}
		if !strings.Contains(errOut, "1 row; reply signature verified") {
			t.Errorf("stderr %q", errOut)
		}
	})
	t.Run("report json enveloped", func(t *testing.T) {
		code, out, errOut := run(base(judge, "--format", "json", "--placement", "enveloped", "--service", "7")...)
		var rows []map[string]any
		if code != reportsExitOK || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 {
			t.Fatalf("exit %d: %s\n%s", code, out, errOut)
		}
		code, out, errOut = run(base(judge, "--format", "json", "--service", "8")...)
		if code != reportsExitOK || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 0 {
			t.Fatalf("another service: exit %d: %s\n%s", code, out, errOut)
		}
	})
	t.Run("report xlsx summary", func(t *testing.T) {
		code, out, errOut := run(base(judge, "--format", "xlsx", "--kind", "summary")...)
		if code != reportsExitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		f, err := excelize.OpenReader(strings.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := f.GetRows("summary")
		if err != nil || len(rows) != 2 || rows[1][2] != court || rows[1][4] != "1" || rows[1][5] != "1" {
			t.Fatalf("summary sheet (%v): %v", err, rows)
		}
	})
	resolutionFile := filepath.Join(t.TempDir(), "постановление.pdf")
	if err := os.WriteFile(resolutionFile, []byte("%PDF-1.7 resolution 2-15-26/77"), 0o600); err != nil {
		t.Fatal(err)
	}
	exportArgs := func(user devpki.User, extra ...string) []string {
		return append([]string{"export"}, base(user, append([]string{"--resolution-by", "прокурор г. Астаны Ахметов А.А.",
			"--resolution-file", resolutionFile}, extra...)...)...)
	}
	t.Run("export", func(t *testing.T) {
		// The request: answered with its id, pending, and nothing of the journal.
		code, out, errOut := run(exportArgs(prosecutor, "--resolution-no", "2-15-26/77",
			"--resolution-date", now.In(siobroker.Astana).Format("2006-01-02"), "--user-iin", judge.IIN, "--format", "json")...)
		id, status, _ := strings.Cut(strings.TrimSpace(out), " ")
		if code != reportsExitOK || status != "pending" || strings.Contains(out, "SIGNED-REQUEST") {
			t.Fatalf("exit %d: %s\n%s", code, out, errOut)
		}
		fetch := []string{"fetch", "--url", srv.URL + reports.Path, "--pki", dir, "--user", prosecutor.IIN, "--export-id", id}
		if code, out, errOut := run(fetch...); code != reportsExitWait || strings.TrimSpace(out) != id+" pending" {
			t.Fatalf("a fetch before the decision: exit %d: %s\n%s", code, out, errOut)
		}
		desk, err := reports.NewExportDesk(j, siobroker.SystemClock{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := desk.Decide(context.Background(), id, true, "operator Askarov", ""); err != nil {
			t.Fatal(err)
		}
		code, out, errOut = run(fetch...)
		if code != reportsExitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var rows []struct {
			Data []byte `json:"data"`
		}
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 2 || !bytes.Equal(rows[0].Data, rawRequest) {
			t.Fatalf("export (%v): %s", err, out)
		}
	})
	t.Run("fault", func(t *testing.T) {
		code, out, errOut := run(base(prosecutor)...)
		if code != reportsExitFault || out != "" || !strings.Contains(errOut, "fault SIO-REPORTS-DENIED") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		code, _, errOut = run(exportArgs(judge, "--resolution-no", "1", "--resolution-date", "2026-01-02", "--organisation", court)...)
		if code != reportsExitFault || !strings.Contains(errOut, "SIO-REPORTS-DENIED") {
			t.Fatalf("export by a judge: exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for name, args := range map[string][]string{
			"no period":         {"--url", srv.URL + reports.Path, "--pki", dir, "--user", judge.IIN},
			"format":            base(judge, "--format", "xml"),
			"service":           base(judge, "--service", "94"),
			"bad user-iin":      base(judge, "--user-iin", "123"),
			"unknown user":      base(devpki.User{IIN: "000000000000"}),
			"placement":         base(judge, "--placement", "x"),
			"export no number":  exportArgs(prosecutor, "--resolution-date", "2026-01-02", "--user-iin", judge.IIN),
			"export no subject": exportArgs(prosecutor, "--resolution-no", "1", "--resolution-date", "2026-01-02"),
			"export both":       exportArgs(prosecutor, "--resolution-no", "1", "--resolution-date", "2026-01-02", "--user-iin", judge.IIN, "--organisation", court),
			"export bad date":   exportArgs(prosecutor, "--resolution-no", "1", "--resolution-date", "02.01.2026", "--user-iin", judge.IIN),
			"export service":    exportArgs(prosecutor, "--service", "7"),
			"export no file": append([]string{"export"}, base(prosecutor, "--resolution-no", "1", "--resolution-date", "2026-01-02",
				"--resolution-by", "X", "--user-iin", judge.IIN)...),
			"export no issuer": append([]string{"export"}, base(prosecutor, "--resolution-no", "1", "--resolution-date", "2026-01-02",
				"--resolution-file", resolutionFile, "--user-iin", judge.IIN)...),
			"fetch no id": {"fetch", "--url", srv.URL + reports.Path, "--pki", dir, "--user", prosecutor.IIN},
			"argument":    append(base(judge), "extra"),
		} {
			if code, _, errOut := run(args...); code != reportsExitUsage {
				t.Errorf("%s: exit %d, stderr %q", name, code, errOut)
			}
		}
	})
	t.Run("other failures", func(t *testing.T) {
		// The reply's signature does not chain to the root given.
		code, out, errOut := run(base(judge, "--ca", filepath.Join(dir, judge.Cert))...)
		if code != reportsExitError || out != "" || !strings.Contains(errOut, "signature does not verify") {
			t.Errorf("foreign root: exit %d, stderr %q", code, errOut)
		}
		// Nothing listens.
		closed := httptest.NewServer(nil)
		closed.Close()
		args := base(judge)
		args[1] = closed.URL + reports.Path
		if code, _, errOut := run(args...); code != reportsExitError {
			t.Errorf("no broker: exit %d, stderr %q", code, errOut)
		}
	})
	uses, err := j.Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalReport}})
	if err != nil || len(uses) < 6 {
		t.Errorf("%d uses journaled (%v): every use is", len(uses), err)
	}
}
