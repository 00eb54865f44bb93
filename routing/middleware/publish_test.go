package middleware

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

type published struct {
	ctx   context.Context
	topic string
	msg   *message.Message
}

// recordPublish is a PublishFunc that records what it is given and fails with err.
func recordPublish(out *[]published, err error) PublishFunc {
	return func(ctx context.Context, topic string, m *message.Message) error {
		*out = append(*out, published{ctx, topic, m})
		return err
	}
}

type ctxMark struct{}

// TestPublish: the answers below go to the request's reply topic, with
// the delivery's context as Publish found it; none goes up. Each is settled, published or not.
// A failed publish or a failed handler fails the delivery.
func TestPublish(t *testing.T) {
	req := testRequest("p1", 3)
	req.Deadline = time.Now().Add(time.Minute)
	broken := errors.New("transport down")
	for _, tt := range []struct {
		name       string
		handlerErr error
		publishErr error
		published  int
		settled    string
	}{
		{"published", nil, nil, 1, "true"},
		{"publish fails", nil, broken, 1, "false"},
		{"handler fails", broken, nil, 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out []published
			var settled string
			msg := delivery(req)
			msg.SetContext(context.WithValue(msg.Context(), ctxMark{}, "delivery"))
			h := Publish(recordPublish(&out, tt.publishErr))(func(msg *message.Message) ([]*message.Message, error) {
				msg.SetContext(context.WithValue(msg.Context(), ctxMark{}, "below")) // as Deadline does
				if tt.handlerErr != nil {
					return nil, tt.handlerErr
				}
				m, err := testAdapter.Final(req, okResult)
				onSettled(m, func(p bool) {
					if p {
						settled = "true"
					} else {
						settled = "false"
					}
				})
				return []*message.Message{m}, err
			})
			msgs, err := h(msg)
			if len(msgs) != 0 {
				t.Errorf("%d messages went up", len(msgs))
			}
			if (err != nil) != (tt.handlerErr != nil || tt.publishErr != nil) || (err != nil && !errors.Is(err, broken)) {
				t.Errorf("err = %v", err)
			}
			if len(out) != tt.published {
				t.Fatalf("%d published, want %d", len(out), tt.published)
			}
			if settled != tt.settled {
				t.Errorf("settled %q, want %q", settled, tt.settled)
			}
			if len(out) == 0 {
				return
			}
			p := out[0]
			if p.topic != req.ReplyTo || p.ctx.Value(ctxMark{}) != "delivery" || p.msg.Metadata.Get("sio_correlation") != "p1/3" {
				t.Errorf("published to %s with %v: %v", p.topic, p.ctx.Value(ctxMark{}), p.msg.Metadata)
			}
			if tt.publishErr != nil && err.Error() != "publish answer to p1 service 3: transport down" {
				t.Errorf("error text %q", err)
			}
		})
	}
}
