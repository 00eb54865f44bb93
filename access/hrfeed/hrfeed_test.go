package hrfeed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/sqlite"
)

var key = []byte("a key shared with the HR system of the МВД, 32 bytes+")

type fixture struct {
	db   *sqlite.DB
	reg  *users.Registry
	p    *Processor
	dir  string
	user map[string]string // name → IIN
}

func iin(t *testing.T, prefix string) string {
	t.Helper()
	s, ok := siobroker.CompleteIIN(prefix)
	if !ok {
		t.Fatalf("no IIN for %s", prefix)
	}
	return s
}

// setup registers three active users in a real store and returns a processor for the HR system
// "mvd-hr".
func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := users.New(db, siobroker.SystemClock{}, nil)
	f := &fixture{db: db, reg: reg, user: map[string]string{
		"dismissed": iin(t, "85010130012"), "moved": iin(t, "90020240012"), "absent": iin(t, "75031230045"),
	}}
	for _, id := range f.user {
		if _, err := reg.Apply(ctx, siobroker.Application{Kind: siobroker.ApplyRegister, IIN: id, Reason: "заявка", By: "operator",
			User: siobroker.User{FullName: "СОТРУДНИК " + id, Organisation: "ДП г. Астаны", ERDRCode: "1975", Department: "СУ",
				Position: "следователь", WorkPhone: "+7 7172 710000", MobilePhone: "+7 701 0000000", Email: "s@police.kz",
				WorkAddress: "г. Астана", Role: 3, ConsentAt: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	f.p, err = NewProcessor(Systems{"mvd-hr": key}, db, reg, db.Journal(), siobroker.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.dir = t.TempDir()
	if err := os.Chmod(f.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	return f
}

// watcher watches the fixture's folder for its processor.
func (f *fixture) watcher(t *testing.T) *Watcher {
	t.Helper()
	w, err := NewWatcher(f.dir, f.p, 0)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (f *fixture) feed(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(Feed{System: "mvd-hr", SentAt: time.Now(), Records: []Record{
		{ID: "r-1", Type: Dismissal, IIN: f.user["dismissed"], Order: "№ 123-к", OrderDate: "2026-12-07"},
		{ID: "r-2", Type: Move, IIN: f.user["moved"], Order: "№ 124-к", OrderDate: "2026-12-07", Department: "УКП", Position: "старший следователь"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFolderFeedBlocksAtOnce: a dismissal dropped in the watched folder blocks the user as soon
// as the feed is complete — shown by waiting for the refusal with a generous bound, not by
// timing — a move becomes a move application due in 24 hours (§14), a user the feed does not
// name is untouched, and the feed is moved to done/ with its outcome and journaled.
func TestFolderFeedBlocksAtOnce(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := f.watcher(t)
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	body := f.feed(t)
	if err := os.WriteFile(filepath.Join(f.dir, "2026-12-07.json"), body, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "2026-12-07.json"+MACSuffix), []byte("mvd-hr "+MAC(key, body)+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // generous: the poll is a fifth of a second
	for {
		_, err := f.reg.Authorize(ctx, f.user["dismissed"])
		if siobroker.ErrorCode(err) == siobroker.CodeUserBlocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dismissed user is not blocked: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Moved aside once processed: wait for the outcome file, then for the feed to leave.
	for {
		matches, _ := filepath.Glob(filepath.Join(f.dir, DoneDir, "*-2026-12-07.json"))
		_, stillThere := os.Stat(filepath.Join(f.dir, "2026-12-07.json"))
		if len(matches) == 1 && os.IsNotExist(stillThere) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the feed was not moved to done/: %v", matches)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The rest of the feed is read once it is processed whole: the dismissal's block is applied
	// as its entry is read, the move after it.
	if _, err := f.reg.Authorize(ctx, f.user["absent"]); err != nil {
		t.Fatalf("a user the feed does not name was touched: %v", err)
	}
	pending, err := f.db.SubmittedApplications(ctx, true)
	if err != nil || len(pending) != 1 || pending[0].Application.Kind != siobroker.ApplyMove || pending[0].Application.IIN != f.user["moved"] ||
		pending[0].Application.User.Position != "старший следователь" || pending[0].Application.By != "hr:mvd-hr" ||
		pending[0].Deadline.Sub(pending[0].Application.At) != MoveDeadline {
		t.Fatalf("pending after the feed: %+v, %v", pending, err)
	}
	recs, err := f.db.Journal().Query(ctx, siobroker.JournalFilter{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.Code == "hr-feed" && strings.Contains(string(r.Data), `"channel":"folder:2026-12-07.json"`) && strings.Contains(string(r.Data), `"status":"blocked"`) {
			found = true
		}
	}
	if !found {
		t.Fatalf("the feed is not journaled: %d records", len(recs))
	}
}

// TestFolderRefusesForgedAndWritableFeeds: a feed whose MAC is not the system's key's, and one
// that anyone may write, go to failed/ and block nobody.
func TestFolderRefusesForgedAndWritableFeeds(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	w := f.watcher(t)
	body := f.feed(t)
	os.WriteFile(filepath.Join(f.dir, "forged.json"), body, 0o640)
	os.WriteFile(filepath.Join(f.dir, "forged.json"+MACSuffix), []byte("mvd-hr "+MAC([]byte("another key"), body)), 0o640)
	os.WriteFile(filepath.Join(f.dir, "open.json"), body, 0o640)
	os.WriteFile(filepath.Join(f.dir, "open.json"+MACSuffix), []byte("mvd-hr "+MAC(key, body)), 0o640)
	if err := os.Chmod(filepath.Join(f.dir, "open.json"), 0o666); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, "incomplete.json"), body, 0o640) // no MAC yet: left alone
	if err := w.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Authorize(ctx, f.user["dismissed"]); err != nil {
		t.Fatalf("a refused feed blocked the user: %v", err)
	}
	failed, _ := filepath.Glob(filepath.Join(f.dir, FailedDir, "*.outcome.json"))
	if len(failed) != 2 {
		t.Fatalf("failed/ holds %v", failed)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "incomplete.json")); err != nil {
		t.Fatalf("a feed without its MAC was taken: %v", err)
	}
}

// TestHTTPFeed: over a real HTTP server, a feed with the system's MAC is applied and answered
// with its outcomes; a wrong MAC is 401 and changes nothing; a feed sent again a day later is
// refused (it cannot block again a user unblocked since).
func TestHTTPFeed(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	srv := httptest.NewServer(f.p.Handler())
	defer srv.Close()
	post := func(body []byte, mac string) (*http.Response, map[string]json.RawMessage) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(body)))
		req.Header.Set(HeaderSystem, "mvd-hr")
		req.Header.Set(HeaderSignature, mac)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]json.RawMessage
		json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	body := f.feed(t)
	if resp, _ := post(body, MAC([]byte("wrong"), body)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong MAC: %d", resp.StatusCode)
	}
	if _, err := f.reg.Authorize(ctx, f.user["dismissed"]); err != nil {
		t.Fatalf("an unauthentic feed blocked the user: %v", err)
	}
	resp, m := post(body, MAC(key, body))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(m["outcomes"]), `"status":"blocked"`) ||
		!strings.Contains(string(m["outcomes"]), `"status":"submitted"`) {
		t.Fatalf("the feed: %d %s", resp.StatusCode, m["outcomes"])
	}
	if _, err := f.reg.Authorize(ctx, f.user["dismissed"]); siobroker.ErrorCode(err) != siobroker.CodeUserBlocked {
		t.Fatalf("the dismissed user: %v", err)
	}
	// The same feed again (a capture replayed) is refused: the user unblocked since stays so.
	if _, err := f.reg.Apply(ctx, siobroker.Application{Kind: siobroker.ApplyUnblock, IIN: f.user["dismissed"], Reason: "ошибка кадров", By: "operator"}); err != nil {
		t.Fatal(err)
	}
	if resp, m := post(body, MAC(key, body)); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(m["error"]), "taken before") {
		t.Fatalf("the feed again: %d %s", resp.StatusCode, m["error"])
	}
	if _, err := f.reg.Authorize(ctx, f.user["dismissed"]); err != nil {
		t.Fatalf("a replayed feed blocked again: %v", err)
	}
	old, _ := json.Marshal(Feed{System: "mvd-hr", SentAt: time.Now().Add(-MaxAge - time.Hour), Records: []Record{
		{ID: "r-1", Type: Dismissal, IIN: f.user["absent"], Order: "№ 1", OrderDate: "2026-12-05"}}})
	if resp, m := post(old, MAC(key, old)); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(m["error"]), "sent_at") {
		t.Fatalf("an old feed: %d %s", resp.StatusCode, m["error"])
	}
	if _, err := f.reg.Authorize(ctx, f.user["absent"]); err != nil {
		t.Fatal(fmt.Errorf("an old feed blocked: %w", err))
	}
}

// TestFolderFeedWaitsForItsMAC: a feed whose MAC file exists but is still empty (its writer created
// it and has not written it yet) is left for a later scan, not refused; once written it is taken.
func TestFolderFeedWaitsForItsMAC(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	w := f.watcher(t)
	body := f.feed(t)
	name := filepath.Join(f.dir, "2026-12-07.json")
	if err := os.WriteFile(name, body, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name+MACSuffix, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := w.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if failed, _ := filepath.Glob(filepath.Join(f.dir, FailedDir, "*")); len(failed) > 0 {
		t.Fatalf("a feed whose MAC was still being written was refused: %v", failed)
	}
	if _, err := os.Stat(name); err != nil {
		t.Fatalf("the feed left the folder before its MAC was written: %v", err)
	}
	if err := os.WriteFile(name+MACSuffix, []byte("mvd-hr "+MAC(key, body)+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := w.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Authorize(ctx, f.user["dismissed"]); siobroker.ErrorCode(err) != siobroker.CodeUserBlocked {
		t.Fatalf("the dismissed user is not blocked once the MAC is written: %v", err)
	}
}
