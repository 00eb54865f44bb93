package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/internal/pgtest"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// sharedJournalDSN returns a DSN to a fresh schema of the machine's PostgreSQL, dropped after the
// test (internal/pgtest). Under CI=true an unreachable server fails the test; otherwise it skips.
func sharedJournalDSN(t *testing.T) string { return pgtest.Schema(t, "sio_e2e_") }

// TestTwoBrokersShareOnePostgresJournal: with journal.driver postgres, two broker processes
// journal into one chain; it verifies, and holds both brokers' requests and replies.
func TestTwoBrokersShareOnePostgresJournal(t *testing.T) {
	dsn := sharedJournalDSN(t)
	src := sharedBroker(t)
	var brokers []*e2eBroker
	for range 2 {
		dir := t.TempDir()
		copyDir(t, src.pki, filepath.Join(dir, "pki"))
		cfg := testConfig(dir)
		cfg.Journal.Driver, cfg.Journal.DSN = "postgres", dsn
		b, err := app.Start(context.Background(), cfg, siobroker.SystemClock{}, testLogger())
		if err != nil {
			t.Fatalf("start a broker on the shared journal: %v", err)
		}
		t.Cleanup(func() { b.Close() })
		e := *src
		e.b, e.cfg, e.base, e.url, e.pki = b, cfg, b.BaseURL(), b.BaseURL()+cfg.Endpoint, filepath.Join(dir, "pki")
		brokers = append(brokers, &e)
	}

	u := src.user(t, devpki.KeyRSA, devpki.StatusValid)
	const rounds = 3
	for i := range rounds {
		for _, e := range brokers {
			if code, out, errs := runSend(t, e.sendArgs(u)...); code != sendExitOK {
				t.Fatalf("round %d on %s: send exited %d\n%s%s", i, e.url, code, out, errs)
			}
		}
	}

	ctx := context.Background()
	j, err := postgres.OpenJournal(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Verify(ctx); err != nil {
		t.Fatalf("the shared chain does not verify: %v", err)
	}
	replies, err := j.Query(ctx, siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalReply}})
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != 2*rounds {
		t.Fatalf("%d replies journaled, want %d", len(replies), 2*rounds)
	}
	// Both brokers wrote: their replies are signed responses to requests posted to each of them.
	for _, r := range replies {
		if !strings.Contains(string(r.Data), "SendMessageResponse") || r.SignerIIN != u.IIN {
			t.Errorf("reply record %d: %s by %s", r.Seq, r.Kind, r.SignerIIN)
		}
	}
	local, err := brokers[0].b.Store().Journal().Query(ctx, siobroker.JournalFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(local) != 0 {
		t.Errorf("%d records went to the embedded journal although journal.driver is postgres", len(local))
	}

	// The operator's check of the live journal reads the shared chain, beside the running brokers.
	cfgFile := filepath.Join(t.TempDir(), "broker.yaml")
	text := fmt.Sprintf("data_dir: %s\njournal:\n  driver: postgres\n  dsn: %q\n", brokers[0].cfg.DataDir, dsn)
	if err := os.WriteFile(cfgFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runJournal("check", "--config", cfgFile)
	if code != 0 || !strings.Contains(out, "journal: verified") || !strings.Contains(out, "none sealed yet") {
		t.Errorf("journal check on the shared journal: exit %d\n%s%s", code, out, errOut)
	}

	// The request index is beside the shared journal: a report at either broker lists the
	// requests both served, and the embedded stores hold no index.
	op := operatorUser(t, src.manifest)
	now := siobroker.SystemClock{}.Now()
	var rout, rerr strings.Builder
	code = Main(ctx, []string{"reports", "--url", brokers[1].base + "/reports", "--user", op.IIN, "--pki", brokers[1].pki,
		"--from", now.Add(-time.Hour).Format(time.RFC3339), "--to", now.Add(time.Minute).Format(time.RFC3339)}, &rout, &rerr)
	if code != 0 || strings.Count(rout.String(), "\n") != 2*rounds+1 || !strings.Contains(rout.String(), u.IIN) {
		t.Errorf("a report over the shared journal: exit %d\n%s%s", code, rout.String(), rerr.String())
	}
	if seq, err := j.RequestIndex().IndexedThrough(ctx); err != nil || seq == 0 {
		t.Errorf("the shared request index: through %d, %v", seq, err)
	}
	if seq, _ := brokers[0].b.Store().IndexedThrough(ctx); seq != 0 {
		t.Errorf("the embedded store's request index was written (through %d) although journal.driver is postgres", seq)
	}
	code, out, errOut = runJournal("reindex", "--config", cfgFile)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("rebuilt, %d requests", 2*rounds)) {
		t.Errorf("journal reindex on the shared journal: exit %d\n%s%s", code, out, errOut)
	}
}
