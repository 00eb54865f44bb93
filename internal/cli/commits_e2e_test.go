package cli

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

// commitsPerRequest is how many write transactions the embedded store commits for one
// synchronous request of one service, answered, on the default configuration (issue 20: the
// commits were a third of the broker's CPU under load). Each is a write of the WAL and an fsync
// (store.synchronous: full); under concurrent requests the group commit shares them, but each
// still makes its request wait for one commit more. They are: the replay marks with the request's
// journal record (and the signer's authorisation between them); the request's hold for delivery;
// the service's answer, kept before RabbitMQ is told it arrived; the reply's journal records with
// the end of the hold. Change it only with the measurement that justifies it
// (docs/benchmarks.md), and cmd/siobench's requestCommits with it.
const commitsPerRequest = 4

// TestCommitsPerRequest: a synchronous one-service request on the embedded default commits
// commitsPerRequest write transactions. The fewest of several requests sent one after another
// is taken: the first request also records its user's last request (once a minute) and learns
// the signer's certificate, and the broker's background jobs may commit between requests.
func TestCommitsPerRequest(t *testing.T) {
	e := privateBroker(t, siobroker.SystemClock{})
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	signer := e.signer(t, u)
	store := e.b.Store()
	var counts []uint64
	var walBytes []int64 // what each request wrote to the WAL, for the log: pages, not commits, are the commits' cost
	least := ^uint64(0)
	walSize := func() int64 {
		fi, err := os.Stat(filepath.Join(e.cfg.DataDir, sqlite.FileName+"-wal"))
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	for range 6 {
		raw := signedRequest(t, signer, signing.PlacementWSSE, newInfo(), e.query(1))
		before, wal := store.Commits(), walSize()
		status, body := post(t, e.url, raw)
		n := store.Commits() - before
		walBytes = append(walBytes, walSize()-wal)
		if status != http.StatusOK {
			t.Fatalf("HTTP %d %s", status, truncate(body))
		}
		counts = append(counts, n)
		least = min(least, n)
	}
	t.Logf("commits of each request: %v; bytes each wrote to the WAL (a checkpoint in between reads as 0 or less): %v", counts, walBytes)
	if least != commitsPerRequest {
		t.Errorf("a one-service request commits %d write transactions, want %d (each request: %v)", least, commitsPerRequest, counts)
	}
}
