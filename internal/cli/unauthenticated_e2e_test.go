package cli

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/operator/metrics"
	"github.com/sio-pso/siobroker/sqlite"
)

// TestUnauthenticatedRefusalsJournalBoundedE2E: 50 unsigned posts of almost 1 MiB with an old
// messageDate, to the real HTTP server, grow the journal database by less than 1 MiB (they grew
// it by 50 MiB when each refusal kept its body): the first 30 (journal.unauthenticated_refusals'
// default per client) are journaled by size, digest and prefix, the rest counted, and the
// metrics count all 50.
func TestUnauthenticatedRefusalsJournalBoundedE2E(t *testing.T) {
	e := privateBroker(t, siobroker.SystemClock{})
	db := filepath.Join(e.cfg.DataDir, sqlite.FileName)
	before := dbSize(t, db)
	head, _, err := e.b.Store().Journal().Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	info := newInfo()
	info.MessageDate = info.MessageDate.Add(-time.Hour)
	raw := signedRequest(t, nil, "", info, e.query(1))
	pad := int(e.cfg.HTTP.MaxBodyBytes) - len(raw) - 64
	body := bytes.Replace(raw, []byte("<q:purpose>e2e"), []byte("<q:purpose>e2e"+strings.Repeat("x", pad)), 1)
	if len(body) < 1<<20-1024 || len(body) > int(e.cfg.HTTP.MaxBodyBytes) {
		t.Fatalf("body of %d bytes, want just under the %d-byte limit", len(body), e.cfg.HTTP.MaxBodyBytes)
	}
	const posts = 50
	for range posts {
		status, reply := post(t, e.url, body)
		wantFault(t, status, reply, http.StatusInternalServerError, siobroker.CodeReplayDate)
	}

	recs, err := e.b.Store().Journal().Query(context.Background(), siobroker.JournalFilter{AfterSeq: head})
	if err != nil {
		t.Fatal(err)
	}
	perClient := e.cfg.Journal.UnauthenticatedRefusals.PerClientPerMinute
	var data int
	for _, r := range recs {
		data += len(r.Data)
		if r.Kind != siobroker.JournalRefusal || r.Code != string(siobroker.CodeReplayDate) {
			// A minute may have turned during the posts: then a summary, and a second allowance.
			if r.Code != broker.RefusalSummaryCode {
				t.Errorf("record %s %s, want a refusal", r.Kind, r.Code)
			}
		}
	}
	if len(recs) < perClient || len(recs) > 2*perClient+2 {
		t.Errorf("%d records for %d refusals, want %d one by one (%d if a minute turned) and the rest counted",
			len(recs), posts, perClient, 2*perClient)
	}
	if data > 64<<10 {
		t.Errorf("the records hold %d bytes of data for %d refusals of %d bytes", data, posts, len(body))
	}
	grew := dbSize(t, db) - before
	t.Logf("the journal database grew by %d bytes for %d refusals of %d bytes", grew, posts, len(body))
	if grew > 1<<20 {
		t.Errorf("the journal database grew by %d bytes for %d unauthenticated refusals, want less than 1 MiB", grew, posts)
	}

	families, err := metrics.Scrape(t.Context(), e.ops(t)+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if got := metricSum(families, metrics.Prefix+"unauthenticated_refusals_total"); got != posts {
		t.Errorf("siobroker_unauthenticated_refusals_total = %v, want %d", got, posts)
	}
	if got := metricSum(families, metrics.Prefix+"unauthenticated_refusals_summarised_total"); got < posts-2*float64(perClient) || got > posts-float64(perClient) {
		t.Errorf("siobroker_unauthenticated_refusals_summarised_total = %v, want %d", got, posts-perClient)
	}
}

// dbSize is the logical size of an SQLite database: its pages, those in the write-ahead log
// included, as a reader sees them. The files' sizes would not do: the log grows by whole pages
// for every commit of anything, and is reused after a checkpoint.
func dbSize(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()`).Scan(&n); err != nil {
		t.Fatalf("size of %s: %v", path, err)
	}
	return n
}
