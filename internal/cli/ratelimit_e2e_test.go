package cli

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/operator/metrics"
)

// TestClientRateLimitedE2E: http.limits reaches the real server. A client address past its burst
// (a rate too slow to earn a token during the test) is answered 429 SIO-RATE-LIMITED, counted in
// siobroker_rate_limited_total{scope="client_rate"} and not journaled; the posts within the burst
// were read and refused as usual (journaled).
func TestClientRateLimitedE2E(t *testing.T) {
	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	e, err := startE2EWith(dir, siobroker.SystemClock{}, func(c *config.Broker) {
		c.HTTP.Limits = config.Limits{PerClientRate: 0.001, PerClientBurst: 2, PerClientConcurrent: 4}
	})
	if err != nil {
		t.Fatalf("start a private broker: %v", err)
	}
	t.Cleanup(func() {
		if err := e.b.Close(); err != nil {
			t.Errorf("close the private broker: %v", err)
		}
	})
	head, _, err := e.b.Store().Journal().Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	junk := []byte(`<not-soap/>`)
	for range 2 {
		status, reply := post(t, e.url, junk)
		wantFault(t, status, reply, http.StatusInternalServerError, siobroker.CodeNotSOAP)
	}
	for range 3 {
		status, reply := post(t, e.url, junk)
		wantFault(t, status, reply, http.StatusTooManyRequests, siobroker.CodeRateLimited)
	}
	recs, err := e.b.Store().Journal().Query(context.Background(), siobroker.JournalFilter{AfterSeq: head})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Code == string(siobroker.CodeRateLimited) {
			t.Errorf("a per-client refusal was journaled: %+v", r)
		}
	}
	if len(recs) != 2 {
		t.Errorf("%d journal records, want the 2 refusals read within the burst", len(recs))
	}
	families, err := metrics.Scrape(t.Context(), e.base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if got := metricSum(families, metrics.Prefix+"rate_limited_total"); got != 3 {
		t.Errorf("siobroker_rate_limited_total = %v, want 3", got)
	}
}
