package sqlite

import (
	"context"
	"database/sql"
	"testing"
)

// TestSynchronousOption: the store commits with synchronous=FULL unless told otherwise, on every
// connection of its pool; an unknown setting is refused.
func TestSynchronousOption(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		opts Options
		want int // PRAGMA synchronous: 1 normal, 2 full
	}{
		{Options{}, 2},
		{Options{Synchronous: SynchronousFull}, 2},
		{Options{Synchronous: SynchronousNormal}, 1},
	} {
		db, err := OpenWith(ctx, t.TempDir(), c.opts)
		if err != nil {
			t.Fatal(err)
		}
		// Several connections at once, so that the pool opens more than one.
		conns := make([]*sql.Conn, 3)
		for i := range conns {
			if conns[i], err = db.db.Conn(ctx); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := conns[i].QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != c.want {
				t.Errorf("%+v: connection %d runs synchronous=%d, want %d", c.opts, i, n, c.want)
			}
		}
		for _, conn := range conns {
			conn.Close()
		}
		if n, err := db.Synchronous(ctx); err != nil || n != c.want {
			t.Errorf("%+v: Synchronous() = %d, %v; want %d", c.opts, n, err, c.want)
		}
		db.Close()
	}
	if _, err := OpenWith(ctx, t.TempDir(), Options{Synchronous: "extra"}); err == nil {
		t.Error("synchronous \"extra\" was accepted")
	}
}
