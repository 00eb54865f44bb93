package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/sio-pso/siobroker"
)

func journalOf(t *testing.T, h *harness, requestID string) []siobroker.JournalRecord {
	t.Helper()
	all, err := h.db.Journal().Query(context.Background(), siobroker.JournalFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []siobroker.JournalRecord
	for _, r := range all {
		if r.RequestID == requestID {
			out = append(out, r)
		}
	}
	return out
}

// TestJournalAcceptedRequest: the raw signed request is journaled before anything else, then one
// exchange record per requested service with its four times, then the signed reply; the chain
// verifies.
func TestJournalAcceptedRequest(t *testing.T) {
	h := newHarness(t, nil)
	raw, info := h.build(t, reqSpec{basis: siobroker.BasisCourtAdmin, services: []int{1, 37, slowService}})
	reply, seen, err := h.handle(raw)
	if err != nil {
		t.Fatal(err)
	}
	recs := journalOf(t, h, seen.RequestID)
	if len(recs) != 5 {
		t.Fatalf("%d journal records, want request + 3 exchanges + reply: %+v", len(recs), recs)
	}
	if recs[0].Kind != siobroker.JournalRequest || !bytes.Equal(recs[0].Data, raw) ||
		recs[0].SignerIIN != seen.SignerIIN || recs[0].Organisation == "" || recs[0].MessageID != info.MessageID {
		t.Errorf("first record %+v, want the raw request with its signer and organisation", recs[0])
	}
	for i, svc := range []int{1, 37, slowService} {
		r := recs[1+i]
		if r.Kind != siobroker.JournalExchange || r.Service != svc || r.MessageID != info.MessageID || r.SignerIIN != seen.SignerIIN {
			t.Errorf("record %d = %+v, want the exchange of service %d", 1+i, r, svc)
			continue
		}
		var ex struct {
			Times        siobroker.ExchangeTimes `json:"times"`
			Status       siobroker.ResultStatus  `json:"status"`
			AnswerDigest string                  `json:"answerDigest"`
		}
		if err := json.Unmarshal(r.Data, &ex); err != nil {
			t.Fatal(err)
		}
		if ex.Times.Received.IsZero() || ex.Times.ReplySent.IsZero() {
			t.Errorf("service %d: received or reply-sent time missing: %+v", svc, ex.Times)
		}
		switch ex.Status {
		case siobroker.StatusOK:
			if ex.Times.Dispatched.IsZero() || ex.Times.Answered.IsZero() || ex.Times.Answered.Before(ex.Times.Dispatched) {
				t.Errorf("service %d answered: times %+v", svc, ex.Times)
			}
			if len(ex.AnswerDigest) != 64 {
				t.Errorf("service %d answered: the exchange names no answer digest: %s", svc, r.Data)
			}
		case siobroker.StatusDenied:
			if !ex.Times.Dispatched.IsZero() || ex.AnswerDigest != "" {
				t.Errorf("denied service %d was dispatched: %+v", svc, ex.Times)
			}
		case siobroker.StatusTimeout:
			if ex.Times.Dispatched.IsZero() || !ex.Times.Answered.IsZero() {
				t.Errorf("timed-out service %d: times %+v", svc, ex.Times)
			}
		}
		if _, off := r.At.Zone(); off != 5*3600 {
			t.Errorf("record time %s is not in Astana time", r.At)
		}
	}
	last := recs[4]
	if last.Kind != siobroker.JournalReply || !bytes.Equal(last.Data, reply.Bytes) {
		t.Errorf("last record %s, want the signed reply as sent", last.Kind)
	}
	if err := h.db.Journal().Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestJournalRefusals: refused requests are journaled too, with their fault code; input that is
// not even an envelope leaves a refusal record. Neither keeps the raw request: neither's signature
// verified (see TestUnauthenticatedRefusalKeepsDigestNotBody).
func TestJournalRefusals(t *testing.T) {
	h := newHarness(t, nil)
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	tampered := bytes.Replace(raw, []byte("<q:purpose>"), []byte("<q:purpose>x"), 1)
	if bytes.Equal(tampered, raw) {
		t.Fatal("the test request has no purpose to tamper with")
	}
	for _, tc := range []struct {
		name     string
		body     []byte
		code     siobroker.Code
		hasInput bool
	}{
		{"tampered", tampered, siobroker.CodeSigInvalid, false},
		{"doctype", []byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "a">]><x/>`), siobroker.CodeDoctype, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, seen, err := h.handle(tc.body)
			if siobroker.ErrorCode(err) != tc.code {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
			recs := journalOf(t, h, seen.RequestID)
			if len(recs) != 1 {
				t.Fatalf("%d records, want the refusal alone: %+v", len(recs), recs)
			}
			ref := recs[0]
			if ref.Kind != siobroker.JournalRefusal || ref.Code != string(tc.code) {
				t.Errorf("record %s %s, want a refusal with %s", ref.Kind, ref.Code, tc.code)
			}
			var data struct {
				Request []byte `json:"request"`
			}
			if err := json.Unmarshal(ref.Data, &data); err != nil {
				t.Fatal(err)
			}
			if tc.hasInput != bytes.Equal(data.Request, tc.body) {
				t.Errorf("refusal carries the raw request: %v, want %v", !tc.hasInput, tc.hasInput)
			}
		})
	}
}
