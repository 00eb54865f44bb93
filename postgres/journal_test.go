package postgres

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/pgtest"
	"github.com/sio-pso/siobroker/journal/journaltest"
)

// testDSN returns a DSN to a fresh schema of the tests' PostgreSQL (internal/pgtest).
func testDSN(t *testing.T) string { return pgtest.Schema(t, "sio_test_") }

func openTest(t *testing.T, dsn string) *Journal {
	t.Helper()
	j, err := OpenJournal(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close) // runs before the schema's cleanup, which was registered first
	return j
}

// tamperJournal is the PostgreSQL journal with the suite's hooks for raw SQL.
type tamperJournal struct {
	*Journal
}

func (j tamperJournal) RawUpdate(ctx context.Context, seq int64, r siobroker.JournalRecord) error {
	data := r.Data
	if data == nil {
		data = []byte{}
	}
	_, err := j.pool.Exec(ctx, `UPDATE sio_journal SET at = $1, at_unix_ms = $2, kind = $3, request_id = $4,
			message_id = $5, signer_iin = $6, organisation = $7, service = $8, code = $9, data = $10,
			prev_hash = $11, hash = $12
		WHERE seq = $13`,
		r.At, r.At.UnixMilli(), string(r.Kind), r.RequestID, r.MessageID, r.SignerIIN, r.Organisation,
		r.Service, r.Code, data, r.PrevHash, r.Hash, seq)
	return err
}

func (j tamperJournal) RawDelete(ctx context.Context, seq int64) error {
	_, err := j.pool.Exec(ctx, `DELETE FROM sio_journal WHERE seq = $1`, seq)
	return err
}

func (j tamperJournal) Bypass(ctx context.Context, fn func() error) error {
	if _, err := j.pool.Exec(ctx, `ALTER TABLE sio_journal DISABLE TRIGGER USER`); err != nil {
		return err
	}
	ferr := fn()
	if _, err := j.pool.Exec(ctx, `ALTER TABLE sio_journal ENABLE TRIGGER USER`); err != nil {
		return err
	}
	return ferr
}

func TestSuite(t *testing.T) {
	journaltest.RunStoreSuite(t, func(t *testing.T) siobroker.Journal {
		return tamperJournal{openTest(t, testDSN(t))}
	})
}

func TestTruncateRefused(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, testDSN(t))
	if _, err := j.Append(ctx, journaltest.Record(siobroker.JournalRequest, 0, "r")); err != nil {
		t.Fatal(err)
	}
	if _, err := j.pool.Exec(ctx, `TRUNCATE sio_journal`); err == nil {
		t.Fatal("the database accepted TRUNCATE of the journal")
	} else if !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("TRUNCATE refused with %v; want the trigger's message", err)
	}
	if seq, _, err := j.Head(ctx); err != nil || seq != 1 {
		t.Fatalf("Head = %d, %v; want 1", seq, err)
	}
}

// The hash does not cover the timestamptz column; Verify checks it against at_unix_ms.
func TestVerifyChecksTimestamp(t *testing.T) {
	ctx := context.Background()
	j := tamperJournal{openTest(t, testDSN(t))}
	for i := range 3 {
		if _, err := j.Append(ctx, journaltest.Record(siobroker.JournalRequest, i, "r")); err != nil {
			t.Fatal(err)
		}
	}
	err := j.Bypass(ctx, func() error {
		// at and at_unix_ms must agree (a CHECK): move both, as a forger would, and the hash breaks;
		// the CHECK alone refuses moving one.
		_, err := j.pool.Exec(ctx, `UPDATE sio_journal SET at = at + interval '1 hour' WHERE seq = 2`)
		return err
	})
	if err == nil {
		t.Fatal("the CHECK let at and at_unix_ms disagree")
	}
	if err := j.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// Opening creates the schema once, whoever comes first; reopening keeps the journal.
func TestOpenConcurrentlyAndReopen(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	var wg sync.WaitGroup
	js := make([]*Journal, 4)
	errs := make([]error, 4)
	for i := range js {
		wg.Go(func() { js[i], errs[i] = OpenJournal(ctx, dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		js[i].Close()
	}
	j := openTest(t, dsn)
	if _, err := j.Append(ctx, journaltest.Record(siobroker.JournalRequest, 0, "r")); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = openTest(t, dsn)
	if seq, _, err := j.Head(ctx); err != nil || seq != 1 {
		t.Fatalf("after reopening Head = %d, %v; want 1", seq, err)
	}
}

// Two brokers, each with its own pool, append concurrently to one journal: one valid chain.
func TestTwoBrokers(t *testing.T) {
	const perBroker, writers, appends = 2, 4, 40
	ctx := context.Background()
	dsn := testDSN(t)
	brokers := []*Journal{openTest(t, dsn), openTest(t, dsn)}
	var wg sync.WaitGroup
	for _, b := range brokers {
		for w := range writers {
			wg.Go(func() {
				for i := range appends {
					recs := []siobroker.JournalRecord{journaltest.Record(siobroker.JournalRequest, i, "r")}
					if i%5 == 0 {
						recs = append(recs, journaltest.Record(siobroker.JournalReply, i, "r"))
					}
					out, err := b.Append(ctx, recs...)
					if err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
					if len(out) == 2 && out[1].Seq != out[0].Seq+1 {
						t.Errorf("the records of one Append got Seq %d and %d", out[0].Seq, out[1].Seq)
					}
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := int64(perBroker * writers * (appends + appends/5))
	for i, b := range brokers {
		if seq, _, err := b.Head(ctx); err != nil || seq != want {
			t.Fatalf("broker %d: Head = %d, %v; want %d", i, seq, err, want)
		}
		if err := b.Verify(ctx); err != nil {
			t.Fatalf("broker %d: %v", i, err)
		}
	}
}

// The deployment the package documents: a role that owns nothing and may only SELECT and INSERT
// opens the journal created by its owner, appends, and can neither change records nor disable
// the triggers.
func TestLeastPrivilegeRole(t *testing.T) {
	if pgtest.BaseDSN() != pgtest.DefaultDSN {
		t.Skip("logs in as a new role: needs the default DSN, with trust authentication")
	}
	ctx := context.Background()
	dsn := testDSN(t)
	owner := openTest(t, dsn)
	if _, err := owner.Append(ctx, journaltest.Record(siobroker.JournalRequest, 0, "r")); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := owner.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	role := schema + "_broker"
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`GRANT USAGE ON SCHEMA ` + schema + ` TO ` + role,
		`GRANT SELECT, INSERT ON sio_journal TO ` + role,
	} {
		if _, err := owner.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), pgtest.BaseDSN())
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		for _, q := range []string{`DROP OWNED BY ` + role, `DROP ROLE ` + role} {
			if _, err := conn.Exec(context.Background(), q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	broker := openTest(t, u.String())
	out, err := broker.Append(ctx, journaltest.Record(siobroker.JournalReply, 1, "r"))
	if err != nil || out[0].Seq != 2 {
		t.Fatalf("Append as the broker's role = %+v, %v", out, err)
	}
	for _, q := range []string{
		`ALTER TABLE sio_journal DISABLE TRIGGER USER`,
		`UPDATE sio_journal SET code = 'x'`,
		`DELETE FROM sio_journal`,
		`TRUNCATE sio_journal`,
		`DROP TABLE sio_journal`,
	} {
		if _, err := broker.pool.Exec(ctx, q); err == nil {
			t.Errorf("the broker's role may %s", q)
		}
	}
	if err := broker.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
