package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// TestWriteTogetherOneCommit: the writes of a WriteTogether (replay marks, a journal record, a
// nested WriteTogether) are one commit, and are all there after it.
func TestWriteTogetherOneCommit(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	j := db.Journal()
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)
	before := db.Commits()
	err := db.WriteTogether(ctx, func(ctx context.Context) error {
		idFresh, contentFresh, err := db.MarkRequest(ctx, siobroker.ReplayMark{Key: "m-1", SenderID: "s", Digest: "d-1", At: at, RequestID: "r-1"})
		if err != nil || !idFresh || !contentFresh {
			t.Errorf("marks: %v %v %v", idFresh, contentFresh, err)
		}
		if _, err := j.Append(ctx, siobroker.JournalRecord{At: at, Kind: siobroker.JournalRequest, RequestID: "r-1", Data: []byte("q")}); err != nil {
			return err
		}
		return db.WriteTogether(ctx, func(ctx context.Context) error {
			_, err := j.AppendOnce(ctx, siobroker.JournalRecord{At: at, Kind: siobroker.JournalReply, RequestID: "r-1", Data: []byte("a")})
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := db.Commits() - before; n != 1 {
		t.Errorf("%d commits, want 1", n)
	}
	if seq, _, err := j.Head(ctx); err != nil || seq != 2 {
		t.Errorf("journal head %d, %v; want 2 records", seq, err)
	}
	if err := j.Verify(ctx); err != nil {
		t.Error(err)
	}
	// Committed: a second mark of the same id is a replay.
	if idFresh, _, err := db.MarkRequest(ctx, siobroker.ReplayMark{Key: "m-1", Digest: "d-2", At: at}); err != nil || idFresh {
		t.Errorf("the id marked together is not remembered: fresh %v, %v", idFresh, err)
	}
}

// TestWriteTogetherAllOrNothing: when its function fails, none of a WriteTogether's writes is
// made; a write within it that fails undoes only its own statements, and the rest commits.
func TestWriteTogetherAllOrNothing(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	j := db.Journal()
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)
	errStop := errors.New("the request was refused after its writes")
	err := db.WriteTogether(ctx, func(ctx context.Context) error {
		if _, _, err := db.MarkRequest(ctx, siobroker.ReplayMark{Key: "m-1", Digest: "d-1", At: at}); err != nil {
			return err
		}
		if _, err := j.Append(ctx, siobroker.JournalRecord{At: at, Kind: siobroker.JournalRequest, RequestID: "r-1"}); err != nil {
			return err
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("WriteTogether: %v, want %v", err, errStop)
	}
	if seq, _, _ := j.Head(ctx); seq != 0 {
		t.Errorf("journal head %d after a failed WriteTogether, want nothing appended", seq)
	}
	if idFresh, _, err := db.MarkRequest(ctx, siobroker.ReplayMark{Key: "m-1", Digest: "d-1", At: at}); err != nil || !idFresh {
		t.Errorf("the marks of a failed WriteTogether were kept: fresh %v, %v", idFresh, err)
	}

	errWrite := errors.New("this write fails after its insert")
	err = db.WriteTogether(ctx, func(ctx context.Context) error {
		werr := db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO seen_messages(message_id, sender_id, seen_at, seen_unix) VALUES ('m-2', 's', '', 0)`); err != nil {
				return err
			}
			return errWrite
		})
		if !errors.Is(werr, errWrite) {
			t.Errorf("the failing write: %v", werr)
		}
		_, err := j.Append(ctx, siobroker.JournalRecord{At: at, Kind: siobroker.JournalRequest, RequestID: "r-2"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM seen_messages WHERE message_id = 'm-2'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the failed write left %d rows (%v)", n, err)
	}
	if seq, _, _ := j.Head(ctx); seq != 1 {
		t.Errorf("journal head %d, want the one record appended beside the failed write", seq)
	}
}

// TestWriteTogetherBatched: WriteTogethers queued together share a commit with the plain writes
// beside them (group commit), and one that fails does not undo the others.
func TestWriteTogetherBatched(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	j := db.Journal()
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)
	release := holdTurn(t, db)
	before := db.Commits()
	errFailed := errors.New("refused")
	errs := make([]error, 5)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			id := string(rune('a' + i))
			errs[i] = db.WriteTogether(ctx, func(ctx context.Context) error {
				if _, _, err := db.MarkRequest(ctx, siobroker.ReplayMark{Key: id, Digest: id, At: at}); err != nil {
					return err
				}
				if _, err := j.Append(ctx, siobroker.JournalRecord{At: at, Kind: siobroker.JournalRequest, RequestID: id}); err != nil {
					return err
				}
				if i == 2 {
					return errFailed
				}
				return nil
			})
		})
	}
	release(len(errs))
	wg.Wait()
	for i, err := range errs {
		if want := map[bool]error{true: errFailed}[i == 2]; !errors.Is(err, want) {
			t.Errorf("WriteTogether %d: %v, want %v", i, err, want)
		}
	}
	if n := db.Commits() - before; n != 1 {
		t.Errorf("%d commits, want 1", n)
	}
	if seq, _, _ := j.Head(ctx); seq != 4 {
		t.Errorf("journal head %d, want 4 records", seq)
	}
	if err := j.Verify(ctx); err != nil {
		t.Error(err)
	}
}
