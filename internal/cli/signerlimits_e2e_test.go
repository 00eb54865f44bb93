package cli

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestSignerConcurrencyLimitE2E: http.limits.per_signer_concurrent reaches the real server. With
// one request in flight allowed, a signer whose request waits for a service that does not answer
// has its next request answered HTTP 429 with Retry-After 1 and a SIO-RATE-LIMITED fault saying
// why, counted as signer_concurrent and journaled as its refusal; another signer is served
// meanwhile; once the waiting request has ended (its client gave up), the signer is served again.
func TestSignerConcurrencyLimitE2E(t *testing.T) {
	e := limitedBroker(t, func(c *config.Broker) {
		c.HTTP.Limits.PerSignerConcurrent = 1
		// Service 1 routed to an adapter nothing runs: on the in-process transport its requests
		// are dropped, and waited for up to two minutes.
		c.Routing.RoutesFile = routesEdited(t, t.TempDir(), "1: {queue: sio.service.001, adapter: demo, backend: demo}",
			"1: {queue: sio.service.001, adapter: silent, backend: demo, timeout: 2m}")
	})
	prosecutor := findUserByRole(t, e.manifest, 1)
	signer := e.signer(t, prosecutor)
	request := func(services ...int) ([]byte, string) {
		info := newInfo()
		return signedRequest(t, signer, signing.PlacementWSSE, info, e.query(services...)), info.MessageID
	}
	journal := e.b.Store().Journal()
	head, _, err := journal.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// journaled finds the records of the signer's request messageID of the given kind, since head.
	journaled := func(iin, messageID string, kind siobroker.JournalKind) []siobroker.JournalRecord {
		t.Helper()
		recs, err := journal.Query(context.Background(), siobroker.JournalFilter{SignerIIN: iin, AfterSeq: head, Kinds: []siobroker.JournalKind{kind}})
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(recs, func(r siobroker.JournalRecord) bool { return r.MessageID != messageID })
	}

	held, heldID := request(1)
	ctx, giveUp := context.WithCancel(t.Context())
	defer giveUp()
	heldDone := make(chan error, 1)
	go func() {
		_, _, _, err := postAs(ctx, clientAt(t, "127.0.0.1", 1), e.url, held)
		heldDone <- err
	}()
	// In flight once it is journaled as received: it then holds its signer's slot until it ends.
	for deadline := time.Now().Add(30 * time.Second); len(journaled(prosecutor.IIN, heldID, siobroker.JournalRequest)) == 0; {
		select {
		case err := <-heldDone:
			t.Fatalf("the request for the silent service ended before it was journaled: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the request for the silent service was not journaled within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	c := clientAt(t, "127.0.0.1", 1)
	refused, refusedID := request(5)
	status, retry, reply, err := postAs(t.Context(), c, e.url, refused)
	if err != nil {
		t.Fatal(err)
	}
	f := wantFault(t, status, reply, http.StatusTooManyRequests, siobroker.CodeRateLimited)
	if retry != "1" || !strings.Contains(f.Message, "in flight") {
		t.Errorf("Retry-After %q and message %q; want 1 and the requests in flight named", retry, f.Message)
	}
	if recs := journaled(prosecutor.IIN, refusedID, siobroker.JournalRefusal); len(recs) != 1 || recs[0].Code != string(siobroker.CodeRateLimited) {
		t.Errorf("journal of the refused request: %+v, want one refusal %s", recs, siobroker.CodeRateLimited)
	}
	wantMetric(t, scrape(t, e), 1, "siobroker_rate_limited_total", `scope="signer_concurrent"`)

	other, otherCase := otherCaseUser(t, e, prosecutor.IIN)
	raw := signedRequest(t, e.signer(t, other), signing.PlacementWSSE, newInfo(), e.queryFor(otherCase, 5))
	if status, _, reply, err := postAs(t.Context(), c, e.url, raw); err != nil || status != http.StatusOK {
		t.Fatalf("another signer while the first is at its limit: %v, HTTP %d %s", err, status, truncate(reply))
	}

	giveUp()
	if err := <-heldDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("the held request, given up: %v", err)
	}
	// The broker notices the client gone and ends the request: then the signer is served again.
	// Until then its requests are refused as above, and nothing else.
	for deadline := time.Now().Add(30 * time.Second); ; {
		status, _, reply, err := postAs(t.Context(), c, e.url, refused)
		if err != nil {
			t.Fatal(err)
		}
		if status == http.StatusOK {
			break
		}
		wantFault(t, status, reply, http.StatusTooManyRequests, siobroker.CodeRateLimited)
		if time.Now().After(deadline) {
			t.Fatal("the signer was still at its limit 30 s after its request in flight was given up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// otherCaseUser returns a valid demo user other than iin with a criminal case, and that case.
func otherCaseUser(t *testing.T, e *e2eBroker, iin string) (devpki.User, devpki.Case) {
	t.Helper()
	for _, u := range e.manifest.Users {
		if c, ok := firstCase(u, siobroker.BasisCriminal); ok && u.Status == devpki.StatusValid && u.IIN != iin {
			return u, c
		}
	}
	t.Fatalf("no valid demo user but %s has a criminal case", iin)
	return devpki.User{}, devpki.Case{}
}
