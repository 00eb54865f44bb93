package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIntegrationReplayMarksShared: two brokers' journals on one database share the replay
// marks: a key one recorded is not new to the other, of concurrent marks of one key exactly one
// is new, and pruning forgets only the marks older than the cutoff.
func TestIntegrationReplayMarksShared(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	a, b := openTest(t, dsn).ReplayMarks(), openTest(t, dsn).ReplayMarks()
	at := time.Now()
	if fresh, err := a.MarkOnce(ctx, "once:test:id:1", at); err != nil || !fresh {
		t.Fatalf("first mark: %v %v", fresh, err)
	}
	if fresh, err := b.MarkOnce(ctx, "once:test:id:1", at); err != nil || fresh {
		t.Fatalf("the same key at the other broker: %v %v, want not new", fresh, err)
	}

	var wg sync.WaitGroup
	var newCount atomic.Int32
	for i := range 8 {
		m := a
		if i%2 == 1 {
			m = b
		}
		wg.Go(func() {
			fresh, err := m.MarkOnce(ctx, "once:test:id:race", at)
			if err != nil {
				t.Error(err)
			}
			if fresh {
				newCount.Add(1)
			}
		})
	}
	wg.Wait()
	if n := newCount.Load(); n != 1 {
		t.Fatalf("%d concurrent marks of one key were new, want 1", n)
	}

	old := at.Add(-48 * time.Hour)
	for i := range 3 {
		if _, err := a.MarkOnce(ctx, fmt.Sprintf("once:test:old:%d", i), old); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.ForgetBefore(ctx, at.Add(-24*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("ForgetBefore: %d %v, want 3", n, err)
	}
	if fresh, err := b.MarkOnce(ctx, "once:test:old:0", at); err != nil || !fresh {
		t.Fatalf("a pruned key: %v %v, want new", fresh, err)
	}
	if fresh, err := b.MarkOnce(ctx, "once:test:id:1", at); err != nil || fresh {
		t.Fatalf("a recent key after pruning: %v %v, want not new", fresh, err)
	}
}
