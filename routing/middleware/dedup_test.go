package middleware

import (
	"errors"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

type mapMemory struct {
	mu sync.Mutex
	m  map[string]schemas.ServiceResponse
}

func (m *mapMemory) Get(key string) (schemas.ServiceResponse, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.m[key]
	return r, ok
}

func (m *mapMemory) Put(key string, resp schemas.ServiceResponse) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[key]; !ok {
		m.m[key] = resp
	}
}

// TestDedup: a final answer is remembered on its way up, and a copy of its request gets it again
// (in a new message) without the handler below; a provisional answer and a failure are not
// remembered, so a copy is asked again.
func TestDedup(t *testing.T) {
	logs, logger := newLogs()
	memory := &mapMemory{m: map[string]schemas.ServiceResponse{}}
	calls := 0
	var next message.HandlerFunc
	h := Dedup(memory, logger)(func(msg *message.Message) ([]*message.Message, error) { return next(msg) })

	next = answering(&calls, okResult)
	first, err := h(delivery(testRequest("d1", 4)))
	resp, _ := must{t}.answer(first, err)
	again, err := h(delivery(testRequest("d1", 4)))
	resp2, a := must{t}.answer(again, err)
	if calls != 1 || resp2.RequestID != resp.RequestID || !resp2.AnsweredAt.Equal(resp.AnsweredAt) || resp2.Result.Status != resp.Result.Status || !a.final || again[0].UUID == first[0].UUID {
		t.Fatalf("copy: %+v (first %+v) after %d calls", resp2, resp, calls)
	}
	logs.want(t, "redelivered request answered from the earlier answer", "correlation_id=d1/4")

	next = func(msg *message.Message) ([]*message.Message, error) {
		calls++
		req, _ := Request(msg)
		return one(testAdapter.Provisional(req, errorResult(req.Service, "gave up")))
	}
	for range 2 {
		must{t}.answer(h(delivery(testRequest("d2", 4))))
	}
	next = failing(&calls, errors.New("publish failed"))
	for range 2 {
		if _, err := h(delivery(testRequest("d3", 4))); err == nil {
			t.Fatal("the failure went missing")
		}
	}
	if calls != 5 {
		t.Errorf("%d calls, want 5: provisional answers and failures are not remembered", calls)
	}
	if _, ok := memory.Get("d2/4"); ok {
		t.Error("a provisional answer was remembered")
	}
	if r, _ := memory.Get("d1/4"); r.Result.Status != siobroker.StatusOK {
		t.Errorf("remembered %+v", r)
	}
}
