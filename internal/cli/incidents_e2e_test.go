package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite/sqlitetest"
)

// TestJournalFailureIncidentE2E: a real broker whose store (and journal) another process holds
// locked refuses a request SIO-UNAVAILABLE; the broker opens a journal-failure incident by itself,
// dated from that failure, once the store takes writes again, without any request waiting for it.
func TestJournalFailureIncidentE2E(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, sharedBroker(t).pki, filepath.Join(dir, "pki"))
	e, err := startE2EWith(dir, siobroker.SystemClock{}, func(cfg *config.Broker) {
		cfg.Store.WriteTimeout = 300 * time.Millisecond // the request's refusal comes soon
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.b.Close() })
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)

	release := sqlitetest.HoldWriteLock(t, dir)
	locked := time.Now()
	code, out, _ := runSend(t, e.sendArgs(u)...)
	if code != sendExitFault || !strings.Contains(out, "fault SIO-UNAVAILABLE") {
		t.Fatalf("send against a locked store exited %d: %s; want SIO-UNAVAILABLE", code, out)
	}
	release()

	inc := waitIncident(t, e, siobroker.IncidentJournalFailure, 30*time.Second)
	if inc.StartedAt.Before(locked.Truncate(time.Millisecond)) || inc.Affected < 1 || inc.LastError == "" || inc.Reason == "" {
		t.Fatalf("the journal-failure incident: %+v", inc)
	}
}
