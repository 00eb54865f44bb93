package broker

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/ratelimit"
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
