package middleware

import (
	"encoding/json"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// TestAnswerMessage: an answer carries the response as its payload and the request's ids in its
// metadata, gets a new transport id each time, and carries whether it is final and its settle
// hooks off the wire, called once.
func TestAnswerMessage(t *testing.T) {
	req := testRequest("r1", 7)
	m1, err := testAdapter.Final(req, okResult)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := testAdapter.Provisional(req, errorResult(7, "no"))
	if m1.UUID == m2.UUID {
		t.Error("two answers share a transport id")
	}
	var resp schemas.ServiceResponse
	if err := json.Unmarshal(m1.Payload, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.RequestID != "r1" || resp.Service != 7 || resp.Adapter != "unit" || !resp.AnsweredAt.Equal(testAdapter.Clock.Now()) ||
		resp.Result.Status != siobroker.StatusOK {
		t.Errorf("payload %+v", resp)
	}
	for k, want := range map[string]string{schemas.MetaRequestID: "r1", schemas.MetaService: "7",
		schemas.MetaCorrelation: "r1/7", schemas.MetaMessageID: "msg-r1"} {
		if got := m1.Metadata.Get(k); got != want {
			t.Errorf("metadata %s = %q, want %q", k, got, want)
		}
	}
	if len(m1.Metadata) != 4 {
		t.Errorf("metadata %v: only the request's ids go on the wire", m1.Metadata)
	}
	if !answerOf(m1).final || answerOf(m2).final {
		t.Error("Final and Provisional mixed up")
	}
	calls := 0
	onSettled(m1, func(published bool) {
		if !published {
			t.Error("settled unpublished")
		}
		calls++
	})
	settle(m1, true)
	settle(m1, true)
	if calls != 1 {
		t.Errorf("settle hook called %d times, want 1", calls)
	}
}
