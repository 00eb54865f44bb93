package cli

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/operator/reports"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/sqlite"
)

// runExports runs "siobroker exports ARGS" and returns its exit code, stdout and stderr.
func runExports(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"exports"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestExportsCommand: on the broker's own embedded journal, the operator lists the prosecutor's
// pending export request, writes out its resolution, approves it (once: a second decision is
// refused) or refuses another with a reason; the prosecutor's fetch then follows the decision.
func TestExportsCommand(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	db, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.DataDir = data
	j, closeJournal, err := app.OpenJournal(ctx, cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	const prosecutor = "750312300458"
	users := reportsTestUsers{prosecutor: {IIN: prosecutor, Role: 1, Organisation: "Генеральная прокуратура", Status: siobroker.UserActive}}
	indexer, err := app.NewIndexer(cfg, j, db, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := reports.New(reports.Config{}, j, indexer, users, siobroker.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(siobroker.Astana)
	q := soap.ExportQuery{ResolutionNo: "2-15-26/77", ResolutionDate: now.Add(-24 * time.Hour), IssuedBy: "прокурор г. Астаны Ахметов А.А.",
		Document:     soap.Document{FileName: "постановление.pdf", MediaType: "application/pdf", Content: []byte("%PDF-1.7 resolution")},
		Organisation: "ДП г. Астаны", From: now.Add(-30 * 24 * time.Hour), To: now, Format: soap.ReportCSV}
	first, err := svc.RequestExport(ctx, prosecutor, q)
	if err != nil {
		t.Fatal(err)
	}
	second, err := svc.RequestExport(ctx, prosecutor, q)
	if err != nil {
		t.Fatal(err)
	}

	code, out, errs := runExports(t, "list", "--data", data)
	if code != 0 || !strings.Contains(out, "2 export requests waiting for a decision") || !strings.Contains(out, first.ExportID) ||
		!strings.Contains(out, "2-15-26/77") || !strings.Contains(out, "organisation ДП г. Астаны") {
		t.Fatalf("list = %d\n%s%s", code, out, errs)
	}
	doc := filepath.Join(t.TempDir(), "resolution.pdf")
	code, out, errs = runExports(t, "show", first.ExportID, "--data", data, "--document", doc)
	if b, err := os.ReadFile(doc); code != 0 || err != nil || string(b) != "%PDF-1.7 resolution" || !strings.Contains(out, "issued by прокурор г. Астаны") {
		t.Fatalf("show = %d (%v)\n%s%s", code, err, out, errs)
	}
	if code, out, errs = runExports(t, "approve", first.ExportID, "--data", data, "--by", "оператор Асқаров"); code != 0 ||
		!strings.Contains(out, "approved by оператор Асқаров") {
		t.Fatalf("approve = %d\n%s%s", code, out, errs)
	}
	if code, _, errs = runExports(t, "refuse", first.ExportID, "--data", data, "--by", "x", "--reason", "late"); code != 1 ||
		!strings.Contains(errs, "decided already") {
		t.Errorf("a second decision = %d\n%s", code, errs)
	}
	if code, _, errs = runExports(t, "refuse", second.ExportID, "--data", data, "--by", "x"); code != 2 || !strings.Contains(errs, "--reason is required") {
		t.Errorf("a refusal without a reason = %d\n%s", code, errs)
	}
	if code, _, errs = runExports(t, "refuse", second.ExportID, "--data", data, "--by", "оператор", "--reason", "постановление не подписано"); code != 0 {
		t.Fatalf("refuse = %d\n%s", code, errs)
	}
	if code, _, errs = runExports(t, "approve", "no-such-id", "--data", data, "--by", "x"); code != 1 || !strings.Contains(errs, "no such export request") {
		t.Errorf("an unknown id = %d\n%s", code, errs)
	}
	code, out, _ = runExports(t, "list", "--data", data)
	if code != 0 || !strings.Contains(out, "0 export requests waiting") {
		t.Errorf("list after the decisions:\n%s", out)
	}

	// The prosecutor's fetches follow the decisions made by the command.
	if st, _, _, body, err := svc.FetchExport(ctx, prosecutor, first.ExportID); err != nil || st.Status != soap.ExportApproved || body == nil {
		t.Errorf("the approved export: %+v, %v", st, err)
	}
	if st, _, _, body, err := svc.FetchExport(ctx, prosecutor, second.ExportID); err != nil || st.Status != soap.ExportRefused ||
		st.Reason != "постановление не подписано" || body != nil {
		t.Errorf("the refused export: %+v, %v", st, err)
	}
	closeJournal()
	db.Close()
}
