package cli

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/hrfeed"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestHRFeedE2E: a broker configured with an HR system's key (hr.keys_file) takes its feeds both
// ways (§15): a dismissal POSTed to /hr/feed with the system's HMAC blocks the user before the
// answer comes back, and one dropped in hr.dir blocks the user as soon as the broker's poll finds
// it — the test waits for the refusal itself, with a generous bound, rather than timing it; a
// feed with another key is refused with 401 and blocks nobody.
func TestHRFeedE2E(t *testing.T) {
	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	key := []byte("the key the operator shares with the HR system, 32+ bytes")
	keys := filepath.Join(dir, "hr-keys.yaml")
	if err := os.WriteFile(keys, []byte("systems:\n  mvd-hr: "+hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	drop := filepath.Join(dir, "hr-in")
	if err := os.Mkdir(drop, 0o750); err != nil {
		t.Fatal(err)
	}
	e, err := startE2EWith(dir, siobroker.SystemClock{}, func(cfg *config.Broker) {
		cfg.HR = config.HR{KeysFile: keys, Dir: drop, Poll: 100 * time.Millisecond, HTTP: true}
	})
	if err != nil {
		t.Fatalf("start a broker with the HR feed: %v", err)
	}
	defer e.b.Close()
	byHTTP := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	var byFolder devpki.User
	for _, u := range e.manifest.Users {
		if u.Status == devpki.StatusValid && u.IIN != byHTTP.IIN {
			byFolder = u
			break
		}
	}
	feed := func(iin string) []byte {
		b, _ := json.Marshal(hrfeed.Feed{System: "mvd-hr", SentAt: time.Now(), Records: []hrfeed.Record{
			{ID: "e2e-" + iin, Type: hrfeed.Dismissal, IIN: iin, Order: "№ 7-к", OrderDate: time.Now().Format("2006-01-02")}}})
		return b
	}
	postFeed := func(body []byte, mac string) int {
		req, _ := http.NewRequest(http.MethodPost, e.base+"/hr/feed", strings.NewReader(string(body)))
		req.Header.Set(hrfeed.HeaderSystem, "mvd-hr")
		req.Header.Set(hrfeed.HeaderSignature, mac)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body := feed(byHTTP.IIN)
	if code := postFeed(body, hrfeed.MAC([]byte("not the key"), body)); code != http.StatusUnauthorized {
		t.Fatalf("a feed under another key: HTTP %d", code)
	}
	code, stdout, stderr := runSend(t, e.sendArgs(byHTTP)...)
	wantSendOK(t, code, stdout, stderr)
	if code := postFeed(body, hrfeed.MAC(key, body)); code != http.StatusOK {
		t.Fatalf("the feed: HTTP %d", code)
	}
	code, stdout, stderr = runSend(t, e.sendArgs(byHTTP)...)
	wantSendFault(t, code, stdout, stderr, siobroker.CodeUserBlocked, byHTTP.IIN)

	code, stdout, stderr = runSend(t, e.sendArgs(byFolder)...)
	wantSendOK(t, code, stdout, stderr)
	body = feed(byFolder.IIN)
	if err := os.WriteFile(filepath.Join(drop, "feed.json"), body, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(drop, "feed.json"+hrfeed.MACSuffix), []byte("mvd-hr "+hrfeed.MAC(key, body)), 0o640); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, stdout, stderr = runSend(t, e.sendArgs(byFolder)...)
		if code != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the user dismissed by the folder's feed still makes requests")
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantSendFault(t, code, stdout, stderr, siobroker.CodeUserBlocked, byFolder.IIN)
}
