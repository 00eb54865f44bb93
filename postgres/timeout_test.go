package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sio-pso/siobroker"
)

// TestAppendFailsWhileTableLocked: with another session holding the journal's table locked, an
// append fails with the write timeout's error instead of waiting for the lock, nothing is
// appended, and the journal takes appends again once the lock is given back.
func TestAppendFailsWhileTableLocked(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	const timeout = time.Second
	j, err := OpenJournalWith(ctx, dsn, JournalOptions{WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	at := time.Date(2026, 12, 7, 1, 0, 0, 0, siobroker.Astana)
	rec := siobroker.JournalRecord{At: at, Kind: siobroker.JournalRequest, RequestID: "r-1"}

	for _, lock := range []struct{ name, sql string }{
		{"the table locked whole", `LOCK TABLE sio_journal IN ACCESS EXCLUSIVE MODE`},
		{"the journal's advisory lock held", fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, lockKey)},
	} {
		t.Run(lock.name, func(t *testing.T) {
			other, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close(ctx)
			tx, err := other.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, lock.sql); err != nil {
				t.Fatalf("%s: %v", lock.sql, err)
			}
			for name, appendFn := range map[string]func() error{
				"Append":     func() error { _, err := j.Append(ctx, rec); return err },
				"AppendOnce": func() error { _, err := j.AppendOnce(ctx, rec); return err },
			} {
				start := time.Now()
				err := appendFn()
				took := time.Since(start)
				t.Logf("%s failed after %s: %v", name, took.Round(time.Millisecond), err)
				if !errors.Is(err, siobroker.ErrWriteTimeout) {
					t.Errorf("%s with %s: %v, want an error wrapping ErrWriteTimeout", name, lock.name, err)
				}
				// Not a performance target: an append that waits for the lock beyond its
				// timeout hangs the request it serves, which is what this guards against.
				if took > 3*timeout {
					t.Errorf("%s failed after %s, want within its write timeout (%s) and a margin", name, took, timeout)
				}
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	if seq, _, err := j.Head(ctx); err != nil || seq != 0 {
		t.Fatalf("journal head %d, %v after failed appends; want nothing appended", seq, err)
	}
	if _, err := j.Append(ctx, rec); err != nil {
		t.Fatalf("append once the locks are free: %v", err)
	}
}
