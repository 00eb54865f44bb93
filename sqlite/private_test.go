//go:build unix

package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sio-pso/siobroker/internal/private"
)

// privateModes walks dir and reports every directory that is not 0700 and every file that is not
// 0600.
func privateModes(t *testing.T, dir string) {
	t.Helper()
	files, loose, err := private.Audit(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range loose {
		t.Error(l)
	}
	if files < 3 {
		t.Errorf("found %d files in %s; want the database, its -wal and -shm", files, dir)
	}
}

// TestStoreFilesArePrivate: under the common umask 0022 the store's directory is 0700 and the
// database, -wal and -shm 0600, while it is open and written to.
func TestStoreFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.MarkSeen(ctx, "m-1", "sender", time.Now()); err != nil {
		t.Fatal(err)
	}
	privateModes(t, dir)
}

// TestOpenTightensAnEarlierStore: a data directory 0755 with a database, -wal and -shm 0644, as an
// earlier version left them, is made private at open.
func TestOpenTightensAnEarlierStore(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.MarkSeen(ctx, "m-1", "sender", time.Now()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	// The last connection's close removed -wal and -shm; empty ones are what a crash leaves.
	for _, p := range []string{path + "-wal", path + "-shm"} {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if ok, err := db.MarkSeen(ctx, "m-1", "sender", time.Now()); err != nil || ok {
		t.Fatalf("MarkSeen of a message seen before the reopen = %v, %v; want false: the data was lost", ok, err)
	}
	privateModes(t, dir)
}
