package middleware

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// TestDeadline: below Deadline the context ends at the request's deadline, or not at all for a
// request without one; above it, the delivery's own context is back.
func TestDeadline(t *testing.T) {
	deadline := time.Now().Add(time.Hour)
	for _, d := range []time.Time{deadline, {}} {
		req := testRequest("t1", 1)
		req.Deadline = d
		msg := delivery(req)
		before := msg.Context()
		var below context.Context
		_, err := Deadline()(func(msg *message.Message) ([]*message.Message, error) {
			below = msg.Context()
			if got, ok := below.Deadline(); ok != !d.IsZero() || !got.Equal(d) {
				t.Errorf("deadline below: %v %v, want %v", got, ok, d)
			}
			if _, ok := Request(msg); !ok {
				t.Error("the request is gone below Deadline")
			}
			return nil, nil
		})(msg)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Context() != before {
			t.Error("the delivery's context was not given back")
		}
		if !d.IsZero() && below.Err() == nil {
			t.Error("the deadline's context outlives the handler")
		}
	}
}
