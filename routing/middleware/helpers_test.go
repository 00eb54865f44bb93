package middleware

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// logs is a slog.Handler that keeps every line as "message key=value ...".
type logs struct {
	mu    sync.Mutex
	lines []string
	attrs []slog.Attr
	root  *logs
}

func newLogs() (*logs, *slog.Logger) {
	l := &logs{}
	l.root = l
	return l, slog.New(l)
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithGroup(string) slog.Handler            { return l }
func (l *logs) WithAttrs(as []slog.Attr) slog.Handler {
	return &logs{attrs: append(append([]slog.Attr(nil), l.attrs...), as...), root: l.root}
}
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true }
	r.Attrs(add)
	for _, a := range l.attrs {
		add(a)
	}
	l.root.mu.Lock()
	defer l.root.mu.Unlock()
	l.root.lines = append(l.root.lines, b.String())
	return nil
}

// has reports whether a line contains every part.
func (l *logs) has(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		return true
	}
	return false
}

func (l *logs) want(t *testing.T, parts ...string) {
	t.Helper()
	if !l.has(parts...) {
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Errorf("no log line with %q; lines:\n%s", parts, strings.Join(l.lines, "\n"))
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var testAdapter = Adapter{Name: "unit", Clock: fixedClock{time.Date(2026, 12, 1, 10, 0, 0, 0, siobroker.Astana)}}

func testRequest(id string, service int) schemas.ServiceRequest {
	return schemas.ServiceRequest{RequestID: id, MessageID: "msg-" + id, Service: service, ReplyTo: "sio.reply.unit",
		Subject: siobroker.Subject{IIN: "810803325634"}}
}

// delivery is a message carrying req as Decode leaves it.
func delivery(req schemas.ServiceRequest) *message.Message {
	msg := message.NewMessage(watermill.NewUUID(), []byte("{}"))
	WithRequest(msg, req)
	return msg
}

// answering is a handler that answers result finally, and counts its calls.
func answering(calls *int, result siobroker.ServiceResult) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		*calls++
		req, _ := Request(msg)
		return one(testAdapter.Final(req, result))
	}
}

func failing(calls *int, err error) message.HandlerFunc {
	return func(*message.Message) ([]*message.Message, error) {
		*calls++
		return nil, err
	}
}

// must checks a handler's results in a test.
type must struct{ t *testing.T }

// answer returns the response of the single answer in msgs.
func (c must) answer(msgs []*message.Message, err error) (schemas.ServiceResponse, *answer) {
	t := c.t
	t.Helper()
	if err != nil {
		t.Fatalf("handler failed: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d answers, want 1", len(msgs))
	}
	a := answerOf(msgs[0])
	if a == nil {
		t.Fatal("the answer was not made by newAnswer")
	}
	return a.resp, a
}

var okResult = siobroker.ServiceResult{Status: siobroker.StatusOK, Reason: siobroker.ReasonOK}

// deadReason is what operators read of a dead letter's reason header, which must be one
// schemas.ParseDeadReason reads.
func deadReason(t *testing.T, m *message.Message) string {
	t.Helper()
	h := m.Metadata.Get(schemas.MetaDeadReason)
	r, ok := schemas.ParseDeadReason(h)
	if !ok {
		t.Fatalf("reason header %q is not a schemas.DeadReason", h)
	}
	return r.String()
}
