package middleware

import (
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
)

// TestServed: a service the adapter serves on the queue goes down; another is answered
// ADAPTER_ERROR at once, naming the routing table, and provisionally.
func TestServed(t *testing.T) {
	logs, logger := newLogs()
	calls := 0
	h := Served("sio.shared", []int{1, 2}, testAdapter, logger)(answering(&calls, okResult))

	resp, _ := must{t}.answer(h(delivery(testRequest("s1", 2))))
	if calls != 1 || resp.Result.Status != siobroker.StatusOK {
		t.Fatalf("served service: %+v after %d calls", resp.Result, calls)
	}

	resp, a := must{t}.answer(h(delivery(testRequest("s2", 3))))
	r := resp.Result
	if calls != 1 || r.Service != 3 || r.Status != siobroker.StatusError || r.Reason != siobroker.ReasonAdapterError ||
		!strings.Contains(r.Message, "adapter unit does not serve service 3 on queue sio.shared; check the routing table") {
		t.Fatalf("unserved service: %+v after %d calls", r, calls)
	}
	if a.final {
		t.Error("a refusal is final: it would be remembered")
	}
	logs.want(t, "does not serve on this queue", "queue=sio.shared", "service=3", "correlation_id=s2/3")
}
