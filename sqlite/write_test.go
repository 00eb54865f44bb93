package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// holdTurn takes this process's turn to write, so that the writes started meanwhile queue up and
// are committed as one batch by whichever takes the turn next; the returned func gives it back
// once n writes are queued.
func holdTurn(t *testing.T, db *DB) (release func(n int)) {
	t.Helper()
	db.writes <- struct{}{}
	return func(n int) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			db.queued.Lock()
			queued := len(db.queued.ops)
			db.queued.Unlock()
			if queued >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d writes queued, want %d", queued, n)
			}
			time.Sleep(time.Millisecond)
		}
		<-db.writes
	}
}

// TestBatchedWritesFailAlone: writes queued together commit in one transaction, and the one that
// fails undoes only its own statements.
func TestBatchedWritesFailAlone(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	at := time.Date(2026, 12, 3, 23, 0, 0, 0, siobroker.Astana)
	release := holdTurn(t, db)

	errFailed := errors.New("this write fails after its insert")
	errs := make([]error, 6)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			errs[i] = db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO seen_messages(message_id, sender_id, seen_at, seen_unix) VALUES (?, 's', ?, ?)`,
					fmt.Sprintf("m-%d", i), siobroker.FormatTime(at), at.Unix()); err != nil {
					return err
				}
				if i == 3 {
					return errFailed
				}
				return nil
			})
		})
	}
	release(len(errs))
	wg.Wait()
	for i, err := range errs {
		want := error(nil)
		if i == 3 {
			want = errFailed
		}
		if !errors.Is(err, want) {
			t.Errorf("write %d: %v, want %v", i, err, want)
		}
		var n int
		if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM seen_messages WHERE message_id = ?`, fmt.Sprintf("m-%d", i)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if wantN := map[bool]int{true: 0, false: 1}[i == 3]; n != wantN {
			t.Errorf("write %d left %d rows, want %d", i, n, wantN)
		}
	}
}

// TestQueuedWriteCancelled: a caller that gives up while its write is still queued gets its
// context's error, and its write never runs.
func TestQueuedWriteCancelled(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	db.writes <- struct{}{} // hold the turn: the write stays queued
	cctx, cancel := context.WithCancel(ctx)
	ran := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- db.write(cctx, func(context.Context, *sql.Tx) error { ran <- struct{}{}; return nil })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.queued.Lock()
		queued := len(db.queued.ops)
		db.queued.Unlock()
		if queued == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the write was not queued")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	err := <-done
	<-db.writes
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled queued write: %v, want context.Canceled", err)
	}
	// The next batch skips it.
	if _, err := db.MarkSeen(ctx, "after", "s", time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
		t.Error("the cancelled write ran")
	default:
	}
}

// TestConcurrentJournalAppendsKeepTheChain: appends committed in batches still form one chain.
func TestConcurrentJournalAppendsKeepTheChain(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	j := db.Journal()
	at := time.Date(2026, 12, 3, 23, 0, 0, 0, siobroker.Astana)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			recs := []siobroker.JournalRecord{
				{At: at, Kind: siobroker.JournalRequest, RequestID: fmt.Sprintf("r-%d", i), Data: []byte("a")},
				{At: at, Kind: siobroker.JournalReply, RequestID: fmt.Sprintf("r-%d", i), Data: []byte("b")},
			}
			if _, err := j.Append(ctx, recs...); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seq, _, err := j.Head(ctx)
	if err != nil || seq != 80 {
		t.Fatalf("head %d, %v; want 80 records", seq, err)
	}
	if err := j.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	// Each append's two records are adjacent: a batch never interleaves them.
	got, err := j.Query(ctx, siobroker.JournalFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(got); i += 2 {
		if got[i].RequestID != got[i+1].RequestID {
			t.Fatalf("records %d and %d belong to %s and %s", got[i].Seq, got[i+1].Seq, got[i].RequestID, got[i+1].RequestID)
		}
	}
}
