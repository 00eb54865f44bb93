package broker

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/ratelimit"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// TestPerSignerRateLimit: a signer past its burst is refused SIO-RATE-LIMITED with a Retry-After
// cause, journaled as a refusal of its IIN and messageId (a digest, not the raw request), reaching
// no service; another signer is served meanwhile; the refused request sent again as it was, once
// a token is earned, is served (its replay marks were not taken).
func TestPerSignerRateLimit(t *testing.T) {
	var limited atomic.Int32
	h := newHarnessWith(t, harnessOpts{perSigner: ratelimit.Limits{Rate: 1, Burst: 2},
		observeSignerLimited: func(s ratelimit.Scope) {
			if s == ratelimit.ScopeRate {
				limited.Add(1)
			}
		}})
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
	if got := soap.RetryAfterSeconds(err); got != 1 {
		t.Errorf("Retry-After %d s, want 1 (one token at 1/s)", got)
	}
	if seen.SignerIIN != userSigner.IIN() {
		t.Errorf("refusal of signer %q, want %q", seen.SignerIIN, userSigner.IIN())
	}
	recs := h.journalOf(t, info.MessageID)
	if len(recs) != 1 || recs[0].Kind != siobroker.JournalRefusal || recs[0].Code != string(siobroker.CodeRateLimited) ||
		recs[0].SignerIIN != userSigner.IIN() {
		t.Fatalf("journal of the refused request: %+v, want one refusal %s of its signer", recs, siobroker.CodeRateLimited)
	}
	var data struct {
		Request []byte      `json:"request"`
		Body    *BodyDigest `json:"body"`
	}
	if err := json.Unmarshal(recs[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Request != nil || data.Body == nil || data.Body.Size != len(raw) {
		t.Errorf("refusal data %s: want the body's digest (size %d), not the raw request", recs[0].Data, len(raw))
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

// TestPerSignerRefusalsBounded: a signer's flood past its rate is journaled one by one up to the
// per-client budget of the minute, then counted into one summary of the signer, so that the
// journal does not grow at the pace of the flood. Every refusal is in one or the other.
func TestPerSignerRefusalsBounded(t *testing.T) {
	h := newHarnessWith(t, harnessOpts{perSigner: ratelimit.Limits{Rate: 0.001, Burst: 1},
		unauthenticated: UnauthenticatedLimits{PerClientPerMinute: 2, TotalPerMinute: 10}})
	h.clock.Set(h.clock.Now().Truncate(time.Minute).Add(time.Second))
	const refused = 5
	for i := range 1 + refused {
		raw, _ := h.build(t, reqSpec{services: []int{1}})
		_, _, err := h.handle(raw)
		if want := siobroker.CodeRateLimited; (i == 0) != (err == nil) || (i > 0 && siobroker.ErrorCode(err) != want) {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	h.clock.Advance(time.Minute)
	h.broker.FlushRefusalSummaries(context.Background())
	individual, summaries := 0, []RefusalSummary{}
	for _, r := range refusals(t, h) {
		switch r.Code {
		case string(siobroker.CodeRateLimited):
			individual++
			if r.SignerIIN != userSigner.IIN() || r.MessageID == "" {
				t.Errorf("refusal %+v: want its signer and messageId", r)
			}
		case RefusalSummaryCode:
			var s RefusalSummary
			if err := json.Unmarshal(r.Data, &s); err != nil {
				t.Fatal(err)
			}
			summaries = append(summaries, s)
		}
	}
	if individual != 2 || len(summaries) != 1 || summaries[0].Signer != userSigner.IIN() || summaries[0].Client != "" ||
		summaries[0].Count != refused-2 || summaries[0].Codes[string(siobroker.CodeRateLimited)] != refused-2 {
		t.Fatalf("%d refusals one by one and summaries %+v; want 2, and one summary of signer %s with %d",
			individual, summaries, userSigner.IIN(), refused-2)
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
