package cli

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestIndexHintsGiveTheJournalsIndex: a broker hands its request index the query of every request
// it journals (app.Broker.IndexHints), and the background catch-up folds them from those hints
// instead of reading the journaled envelopes again. Over requests in every signature placement,
// on the synchronous channel and both asynchronous ones (SendMessage on /AsyncChannel/v10, and
// the gateway's sendMessage), the index built live from hints (and brought to the journal's end
// once the broker stopped) holds, entry for entry, what `journal reindex` builds from the journal
// alone.
func TestIndexHintsGiveTheJournalsIndex(t *testing.T) {
	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, dir+"/pki")
	e, err := startE2EWith(dir, siobroker.SystemClock{}, func(c *config.Broker) { c.Reports.IndexEvery = 100 * time.Millisecond })
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			e.b.Close()
		}
	})
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	signer := e.signer(t, u)

	sent := 0
	for _, p := range []signing.Placement{signing.PlacementWSSE, signing.PlacementWSSEToken, signing.PlacementWSSETokenTimestamp, signing.PlacementEnveloped} {
		raw := signedRequest(t, signer, p, newInfo(), e.query(1, 5))
		if status, body := post(t, e.url, raw); status != http.StatusOK {
			t.Fatalf("%s: HTTP %d\n%s", p, status, truncate(body))
		}
		sent++
	}
	raw := signedRequest(t, signer, signing.PlacementWSSE, newInfo(), e.query(11))
	if status, body := post(t, e.base+app.AsyncPath, raw); status != http.StatusOK {
		t.Fatalf("asynchronous SendMessage: HTTP %d\n%s", status, truncate(body))
	}
	sent++
	mi := soap.ACMessageInfo{ServiceID: "SIO_PSO_QUERY", MessageType: soap.ACRequest, MessageDate: siobroker.SystemClock{}.Now(), SenderID: "SIO_PSO_E2E"}
	doc := soap.NewACSendMessage(uuid.NewString(), mi, e.query(37))
	if err := signer.Sign(doc, signing.PlacementWSSE); err != nil {
		t.Fatal(err)
	}
	if raw, err = soap.Serialize(doc); err != nil {
		t.Fatal(err)
	}
	if status, body := post(t, e.base+app.AsyncPath, raw); status != http.StatusOK {
		t.Fatalf("the gateway's sendMessage: HTTP %d\n%s", status, truncate(body))
	}
	sent++

	hints := e.b.IndexHints()
	deadline := time.Now().Add(30 * time.Second)
	for hints.Taken() < uint64(sent) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests journaled; the index took %d hints and read %d envelopes itself", sent, hints.Taken(), hints.Missed())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if hints.Missed() != 0 {
		t.Errorf("the index read %d journaled envelopes itself; every one was hinted", hints.Missed())
	}
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true

	ctx := context.Background()
	db, err := app.OpenStore(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	entries := func() map[string]siobroker.RequestEntry {
		out := map[string]siobroker.RequestEntry{}
		if err := db.ScanRequests(ctx, siobroker.RequestFilter{}, func(int) error { return nil }, func(r siobroker.RequestEntry) error {
			out[r.RequestID] = r
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// The asynchronous requests may have been answered after the broker's last catch-up: what is
	// left of the journal is folded first (exchange and reply records only, every request record
	// having been folded from its hint above), then compared with a rebuild.
	indexer, err := app.NewIndexer(e.cfg, db.Journal(), db, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := indexer.CatchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	live := entries()
	if len(live) != sent {
		t.Fatalf("%d entries in the index, want %d", len(live), sent)
	}
	for id, r := range live {
		if r.Basis != siobroker.BasisCriminal || r.Subject.IIN != e.subject || len(r.Services) == 0 || r.Note != "" {
			t.Errorf("%s: %+v", id, r)
		}
	}
	if _, err := indexer.Rebuild(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if rebuilt := entries(); !reflect.DeepEqual(live, rebuilt) {
		t.Errorf("the index from hints differs from the journal's:\nlive    %+v\nrebuilt %+v", live, rebuilt)
	}
}
