package broker

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/ratelimit"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// TestPerSignerRateLimit: a signer past its burst is refused SIO-RATE-LIMITED, journaled as a
// refusal of its IIN, reaching no service; another signer is served meanwhile; the refused request
// sent again as it was, once a token is earned, is served (its replay marks were not taken).
func TestPerSignerRateLimit(t *testing.T) {
	var limited atomic.Int32
	h := newHarnessWith(t, harnessOpts{perSigner: ratelimit.Limits{Rate: 1, Burst: 2},
		observeSignerLimited: func() { limited.Add(1) }})
	for i := range 2 {
		raw, _ := h.build(t, reqSpec{services: []int{1}})
		if _, _, err := h.handle(raw); err != nil {
			t.Fatalf("request %d within the burst: %v", i, err)
		}
	}
	served := h.called(1)
	raw, info := h.build(t, reqSpec{services: []int{1}})
	_, seen, err := h.handle(raw)
	var e *siobroker.Error
	if !errors.As(err, &e) || e.Code != siobroker.CodeRateLimited {
		t.Fatalf("past the burst: %v, want %s", err, siobroker.CodeRateLimited)
	}
	if seen.SignerIIN != userSigner.IIN() {
		t.Errorf("refusal of signer %q, want %q", seen.SignerIIN, userSigner.IIN())
	}
	recs := h.journalOf(t, info.MessageID)
	if len(recs) != 1 || recs[0].Kind != siobroker.JournalRefusal || recs[0].Code != string(siobroker.CodeRateLimited) ||
		recs[0].SignerIIN != userSigner.IIN() {
		t.Errorf("journal of the refused request: %+v, want one refusal %s of its signer", recs, siobroker.CodeRateLimited)
	}
	if h.called(1) != served {
		t.Error("a refused request reached a service")
	}
	if limited.Load() != 1 {
		t.Errorf("ObserveSignerLimited told %d times, want 1", limited.Load())
	}
	other, _ := h.build(t, reqSpec{signer: ecdsaSigner, services: []int{1}})
	if _, _, err := h.handle(other); err != nil {
		t.Fatalf("another signer while the first is limited: %v", err)
	}
	h.clock.Advance(time.Second)
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("the refused request sent again a second later: %v", err)
	}
}

// TestPerSignerRateLimitAsyncChannelV10: the gateway's AsyncChannel v10 calls count against their
// signer's limit too, refused after the signature and before the call is served.
func TestPerSignerRateLimitAsyncChannelV10(t *testing.T) {
	h := newHarnessWith(t, harnessOpts{perSigner: ratelimit.Limits{Rate: 1, Burst: 2}})
	c := acClient{t: t, h: h, signer: userSigner, placement: signing.PlacementWSSEToken}
	id, err := c.sendMessage(soap.ACMessageInfo{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.status(id); err != nil {
		t.Fatalf("the second call, within the burst: %v", err)
	}
	_, err = c.status(id)
	wantCode(t, err, siobroker.CodeRateLimited)
	h.clock.Advance(time.Second)
	if _, err := c.status(id); err != nil {
		t.Fatalf("a second later: %v", err)
	}
}
