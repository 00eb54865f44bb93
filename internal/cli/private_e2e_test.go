//go:build unix

package cli

import (
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sio-pso/siobroker/internal/private"
)

// TestE2EServeDataDirPrivate runs the built binary's serve, started under the common umask 0022,
// on a fresh data directory, sends it a request so that the journal is written, stops it, and
// walks the data directory: every directory 0700, every file 0600 (the store, the development
// PKI and its keys, the demo subjects).
func TestE2EServeDataDirPrivate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	addr := loopbackAddr(t)
	// The child inherits the umask; the test process may have another (a command run in process
	// before set 0077).
	old := syscall.Umask(0o022)
	p := startProcess(t, "serve", []string{"SIOBROKER_OPERATOR_LISTEN=" + loopbackAddr(t)}, "serve", "--dev", "--listen", addr, "--data", data)
	syscall.Umask(old)
	p.waitFor(t, "siobroker listening on", 2*time.Minute)

	// An unsigned request: refused, and journaled as a refusal.
	resp, err := http.Post("http://"+addr+"/SyncChannel/v10", "text/xml; charset=utf-8", strings.NewReader("<not-soap/>"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of SIGTERM")
	}
	files, loose, err := private.Audit(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range loose {
		t.Error(l)
	}
	// broker.db, demo-subjects.json and the development PKI: ca, its key, CRL, broker and five
	// users with their keys, demo.json.
	if files < 15 {
		t.Errorf("saw %d files under %s; want the store, the demo subjects and the development PKI", files, data)
	}
}
