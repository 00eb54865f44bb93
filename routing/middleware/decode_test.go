package middleware

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker/schemas"
)

// TestDecode: a request goes down in the context; one that cannot be read, or names no reply
// topic, is dropped with a log line when there is no dead-letter topic, and put on it with its
// reason when there is one; the delivery succeeds either way. A dead letter that cannot be
// published fails the delivery.
func TestDecode(t *testing.T) {
	for _, tt := range []struct {
		name, payload string
		passed        bool
		log           []string
		reason        string
	}{
		{"request", `{"requestId":"r1","messageId":"m1","service":5,"replyTo":"sio.reply.x"}`, true, nil, ""},
		{"not json", `{not json`, false, []string{"undecodable service request", "queue=q", "transport_id=t-1"},
			"not-a-request adapter=unit error=json"},
		{"no reply topic", `{"requestId":"r2","messageId":"m2","service":5}`, false,
			[]string{"service request without reply topic", "queue=q", "correlation_id=r2/5", "message_id=m2"},
			"no-reply-topic adapter=unit service=5"},
	} {
		for _, dlq := range []string{"", "sio.dlq"} {
			t.Run(tt.name+"/dlq="+dlq, func(t *testing.T) {
				logs, logger := newLogs()
				passed := false
				var out []published
				poison := Poison{Topic: dlq, Publish: recordPublish(&out, nil), Adapter: testAdapter}
				h := Decode("q", poison, logger)(func(msg *message.Message) ([]*message.Message, error) {
					req, ok := Request(msg)
					if !ok || req.RequestID != "r1" || req.Service != 5 || req.ReplyTo != "sio.reply.x" {
						t.Errorf("request below Decode: %+v, %v", req, ok)
					}
					passed = true
					return nil, nil
				})
				in := message.NewMessage("t-1", []byte(tt.payload))
				in.Metadata.Set("kept", "yes")
				msgs, err := h(in)
				if err != nil || len(msgs) != 0 {
					t.Fatalf("Decode = %v, %v; want nothing", msgs, err)
				}
				if passed != tt.passed {
					t.Errorf("handler below called: %v, want %v", passed, tt.passed)
				}
				if tt.log == nil {
					if len(out) != 0 {
						t.Errorf("a good request was dead-lettered: %+v", out)
					}
					return
				}
				if dlq == "" {
					logs.want(t, append(tt.log, "dropped (no dead-letter queue)")...)
					if len(out) != 0 {
						t.Errorf("published %d dead letters without a dead-letter topic", len(out))
					}
					return
				}
				logs.want(t, append(tt.log, "dead-lettered", "topic=sio.dlq")...)
				if len(out) != 1 {
					t.Fatalf("%d dead letters, want 1", len(out))
				}
				m := out[0].msg
				if out[0].topic != "sio.dlq" || m.UUID != "t-1" || string(m.Payload) != tt.payload || m.Metadata.Get("kept") != "yes" ||
					m.Metadata.Get(schemas.MetaDeadReason) != tt.reason || m.Metadata.Get(schemas.MetaDeadTopic) != "q" ||
					m.Metadata.Get(schemas.MetaDeadAt) != testAdapter.Clock.Now().Format(time.RFC3339) {
					t.Errorf("dead letter to %s: %s %q %v", out[0].topic, m.UUID, m.Payload, m.Metadata)
				}
			})
		}
	}

	// The dead letter cannot be published: the delivery fails, so that the message comes back.
	var out []published
	_, logger := newLogs()
	poison := Poison{Topic: "sio.dlq", Publish: recordPublish(&out, errors.New("transport down")), Adapter: testAdapter}
	_, err := Decode("q", poison, logger)(func(*message.Message) ([]*message.Message, error) {
		t.Error("handler below called")
		return nil, nil
	})(message.NewMessage("t-2", []byte("garbage")))
	if err == nil || !strings.Contains(err.Error(), "transport down") {
		t.Fatalf("err %v, want the failed dead letter", err)
	}
}

// TestBelowDecodeOnly: a middleware that gets a message Decode did not read fails the delivery
// rather than answering nobody.
func TestBelowDecodeOnly(t *testing.T) {
	_, logger := newLogs()
	calls := 0
	for name, mw := range map[string]message.HandlerMiddleware{
		"Publish": Publish(nil), "Served": Served("q", nil, testAdapter, logger), "Dedup": Dedup(nil, logger),
		"Deadline": Deadline(), "Ledger": Ledger(nil, testAdapter, Poison{}, logger), "Retry": Retry(1, 0, logger),
	} {
		if _, err := mw(answering(&calls, okResult))(message.NewMessage("x", nil)); err != errNoRequest {
			t.Errorf("%s: %v, want errNoRequest", name, err)
		}
	}
	if calls != 0 {
		t.Errorf("the handler below ran %d times", calls)
	}
}
