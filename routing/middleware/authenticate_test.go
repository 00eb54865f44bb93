package middleware

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
)

// TestAuthenticate: a service message the broker made for this adapter goes down with the key
// that made it, and every answer coming up is authenticated with that key; any other message is
// dead-lettered with the reason, which names no value of its payload, and nothing below runs. The
// expiry is checked against Auth.Now.
func TestAuthenticate(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	payload := []byte(`{"requestId":"r1","service":5,"replyTo":"sio.reply.x","subject":{"iin":"810803325634"}}`)
	newMessage := func(sign bool, deadline time.Time) *message.Message {
		m := message.NewMessage("t-1", payload)
		m.Metadata.Set(schemas.MetaRequestID, "r1")
		m.Metadata.Set(schemas.MetaService, "5")
		m.Metadata.Set(schemas.MetaReplyTo, "sio.reply.x")
		if sign {
			if err := msgauthtest.Broker().SignRequest(msgauthtest.Adapter, m.Metadata, m.Payload, deadline); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	for _, tt := range []struct {
		name   string
		msg    *message.Message
		reason msgauth.Reason
	}{
		{"authentic", newMessage(true, now), ""},
		{"unauthenticated", newMessage(false, now), msgauth.ReasonMissing},
		{"expired", newMessage(true, now.Add(-msgauth.DefaultValidity-time.Second)), msgauth.ReasonExpired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs, logger := newLogs()
			var out []published
			var told []msgauth.Reason
			auth := Auth{Keys: msgauthtest.AdapterKeys(msgauthtest.Adapter), Now: func() time.Time { return now },
				Refused: func(r msgauth.Reason) { told = append(told, r) }}
			poison := Poison{Topic: "sio.dlq", Publish: recordPublish(&out, nil), Adapter: testAdapter}
			passed := false
			h := Authenticate("sio.service.005", auth, poison, logger)(SignAnswers(auth)(func(msg *message.Message) ([]*message.Message, error) {
				passed = true
				return one(testAdapter.Final(testRequest("r1", 5), okResult))
			}))
			answers, err := h(tt.msg)
			if err != nil {
				t.Fatalf("handler: %v", err)
			}
			if tt.reason == "" {
				if !passed || len(answers) != 1 || len(out) != 0 {
					t.Fatalf("passed %v, %d answers, %d dead letters", passed, len(answers), len(out))
				}
				a := answers[0]
				if err := msgauthtest.Broker().CheckAnswer(msgauthtest.Adapter, a.Metadata, a.Payload, now); err != nil {
					t.Errorf("the answer is not authenticated: %v", err)
				}
				return
			}
			if passed || len(answers) != 0 {
				t.Fatalf("a refused message went down (passed %v, %d answers)", passed, len(answers))
			}
			if len(out) != 1 || out[0].topic != "sio.dlq" {
				t.Fatalf("dead letters %+v", out)
			}
			header := out[0].msg.Metadata.Get(schemas.MetaDeadReason)
			reason, ok := schemas.ParseDeadReason(header)
			if !ok || reason.Category != schemas.DeadUnauthenticated || reason.Auth != tt.reason || reason.Adapter != "unit" ||
				!strings.Contains(reason.String(), "not authenticated by the broker") || strings.Contains(header, "810803325634") ||
				out[0].msg.Metadata.Get(schemas.MetaDeadTopic) != "sio.service.005" {
				t.Errorf("dead letter reason %q (%+v, %v), metadata %v", header, reason, ok, out[0].msg.Metadata)
			}
			if len(told) != 1 || told[0] != tt.reason {
				t.Errorf("told %v, want %s", told, tt.reason)
			}
			logs.want(t, "unauthenticated service message dead-lettered", "auth_refusal="+string(tt.reason), "auth_refusals=1")
		})
	}
}
