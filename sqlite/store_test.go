package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

func TestMarkSeenOncePerMessageID(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)

	// Concurrent copies of one message: exactly one may pass.
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			ok, err := db.MarkSeen(ctx, "m-1", "sender", now)
			if err != nil {
				t.Error(err)
			}
			if ok {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("%d copies accepted, want 1", fresh.Load())
	}

	n, err := db.ForgetSeenBefore(ctx, now.Add(time.Second))
	if err != nil || n != 1 {
		t.Fatalf("ForgetSeenBefore = %d, %v; want 1", n, err)
	}
	if ok, err := db.MarkSeen(ctx, "m-1", "sender", now); err != nil || !ok {
		t.Fatalf("after pruning, MarkSeen = %v, %v; want true", ok, err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.MarkSeen(ctx, "m-2", "s", time.Now()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if ok, _ := db.MarkSeen(ctx, "m-2", "s", time.Now()); ok {
		t.Fatal("a messageId seen before the restart was accepted again")
	}
}

// TestMarkRequest: both replay marks in one transaction, each reported.
func TestMarkRequest(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 3, 23, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		id, digest          string
		wantID, wantContent bool
	}{
		{"m-1", "d-1", true, true},
		{"m-1", "d-2", false, false}, // a replayed id records nothing more...
		{"m-2", "d-2", true, true},   // ...so d-2 is still new here
		{"m-3", "d-1", true, false},  // seen content under a new id
	} {
		id, content, err := db.MarkRequest(ctx, siobroker.ReplayMark{Key: c.id, SenderID: "sender", Digest: c.digest, At: now})
		if err != nil || id != c.wantID || content != c.wantContent {
			t.Errorf("MarkRequest(%s, %s) = %v, %v, %v; want %v, %v", c.id, c.digest, id, content, err, c.wantID, c.wantContent)
		}
	}
}

// TestNewerStoreRefused: a store whose schema is newer than this version's migrations (made or
// upgraded by a newer siobroker, then opened by an older one) is not opened: some of its state
// would be where this version does not look.
func TestNewerStoreRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err := Open(ctx, dir); !errors.Is(err, ErrNewerStore) {
		if err == nil {
			db.Close()
		}
		t.Fatalf("Open of a newer store = %v, want ErrNewerStore", err)
	}
}
