package middleware

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// TestDecode: a request goes down in the context; one that cannot be read, or names no reply
// topic, is dropped with a log line and the delivery succeeds.
func TestDecode(t *testing.T) {
	for _, tt := range []struct {
		name, payload string
		passed        bool
		log           []string
	}{
		{"request", `{"requestId":"r1","messageId":"m1","service":5,"replyTo":"sio.reply.x"}`, true, nil},
		{"not json", `{not json`, false, []string{"undecodable service request dropped", "queue=q", "transport_id=t-1"}},
		{"no reply topic", `{"requestId":"r2","messageId":"m2","service":5}`, false,
			[]string{"service request without reply topic dropped", "queue=q", "correlation_id=r2/5", "message_id=m2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs, logger := newLogs()
			passed := false
			h := Decode("q", logger)(func(msg *message.Message) ([]*message.Message, error) {
				req, ok := Request(msg)
				if !ok || req.RequestID != "r1" || req.Service != 5 || req.ReplyTo != "sio.reply.x" {
					t.Errorf("request below Decode: %+v, %v", req, ok)
				}
				passed = true
				return nil, nil
			})
			msgs, err := h(message.NewMessage("t-1", []byte(tt.payload)))
			if err != nil || len(msgs) != 0 {
				t.Fatalf("Decode = %v, %v; want nothing", msgs, err)
			}
			if passed != tt.passed {
				t.Errorf("handler below called: %v, want %v", passed, tt.passed)
			}
			if tt.log != nil {
				logs.want(t, tt.log...)
			}
		})
	}
}

// TestBelowDecodeOnly: a middleware that gets a message Decode did not read fails the delivery
// rather than answering nobody.
func TestBelowDecodeOnly(t *testing.T) {
	_, logger := newLogs()
	calls := 0
	for name, mw := range map[string]message.HandlerMiddleware{
		"Publish": Publish(nil), "Served": Served("q", nil, testAdapter, logger), "Dedup": Dedup(nil, logger),
		"Deadline": Deadline(), "Ledger": Ledger(nil, testAdapter, logger), "Retry": Retry(1, 0, logger),
	} {
		if _, err := mw(answering(&calls, okResult))(message.NewMessage("x", nil)); err != errNoRequest {
			t.Errorf("%s: %v, want errNoRequest", name, err)
		}
	}
	if calls != 0 {
		t.Errorf("the handler below ran %d times", calls)
	}
}
