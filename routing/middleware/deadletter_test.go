package middleware

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// TestDeadLetter: a request given up on goes to the dead-letter topic as it came, with its
// metadata and why (the reason without the subject's number), and the failure goes on up; other
// outcomes do not. A dead letter that cannot be published fails the delivery.
func TestDeadLetter(t *testing.T) {
	req := testRequest("dl1", 7)
	req.Deadline = time.Now().Add(time.Minute)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	cause := adapters.Transient(fmt.Errorf("source for subject 810803325634 (ИВАНОВ ИВАН, John Smith): %w", refused))
	gave := &givenUp{attempts: 3, last: &SourceError{Err: cause, Text: "source for subject [subject] (ИВАНОВ ИВАН, John Smith): connection refused"}}

	logs, logger := newLogs()
	var out []published
	msg := delivery(req)
	msg.UUID = "dl1/7"
	msg.Metadata.Set(schemas.MetaRequestID, "dl1")
	calls := 0
	_, err := DeadLetter("sio.dlq", recordPublish(&out, nil), testAdapter, logger)(failing(&calls, gave))(msg)
	if err != gave {
		t.Fatalf("err %v, want the given-up failure passed up", err)
	}
	if len(out) != 1 {
		t.Fatalf("%d dead letters", len(out))
	}
	p := out[0]
	reason := p.msg.Metadata.Get(schemas.MetaDeadReason)
	if p.topic != "sio.dlq" || p.msg.UUID != "dl1/7" || string(p.msg.Payload) != string(msg.Payload) ||
		p.msg.Metadata.Get(schemas.MetaRequestID) != "dl1" || p.msg.Metadata.Get(schemas.MetaDeadTopic) != schemas.ServiceTopic(7) ||
		p.msg.Metadata.Get(schemas.MetaDeadAttempts) != "3" ||
		p.msg.Metadata.Get(schemas.MetaDeadAt) != testAdapter.Clock.Now().Format(time.RFC3339) ||
		reason != "source-failing adapter=unit service=7 attempts=3 error=connection-refused" {
		t.Fatalf("dead letter %s to %s: %v", p.msg.UUID, p.topic, p.msg.Metadata)
	}
	logs.want(t, "request dead-lettered after its attempts", "request_id=dl1", "attempts=3", "topic=sio.dlq",
		"the source failed transiently 3 times (adapter unit, service 7); last error: connection refused")

	// Not given up on: nothing is dead-lettered.
	for _, e := range []error{nil, &SourceError{Err: errors.New("syntax")}, errors.New("other")} {
		out = nil
		next := failing(&calls, e)
		if e == nil {
			next = answering(&calls, okResult)
		}
		if _, err := DeadLetter("sio.dlq", recordPublish(&out, nil), testAdapter, logger)(next)(delivery(req)); err != e || len(out) != 0 {
			t.Errorf("%v: err %v, %d dead letters", e, err, len(out))
		}
	}

	// The dead letter cannot be published: the delivery fails, unanswered.
	out = nil
	_, err = DeadLetter("sio.dlq", recordPublish(&out, errors.New("transport down")), testAdapter, logger)(failing(&calls, gave))(delivery(req))
	if err == nil || err.Error() != "dead-letter dl1 service 7: transport down" {
		t.Fatalf("err %v", err)
	}
}
