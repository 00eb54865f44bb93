package middleware

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// fakeLedger answers Take from a script of states (the last repeats) and records how the claim
// ended.
type fakeLedger struct {
	mu          sync.Mutex
	states      []siobroker.LedgerState
	takes       int
	err         error // of Take
	answeredErr error // of Answered
	ended       string
	at          time.Time
	payload     []byte                 // recorded by Answered
	kept        siobroker.LedgerAnswer // what Answer gives
	answerErr   error                  // of Answer
}

func (l *fakeLedger) Answer(context.Context, string) (siobroker.LedgerAnswer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.kept, l.answerErr
}

func (l *fakeLedger) Take(ctx context.Context, key string) (siobroker.LedgerClaim, siobroker.LedgerState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.takes++
	if l.err != nil {
		return nil, 0, l.err
	}
	state := l.states[0]
	if len(l.states) > 1 {
		l.states = l.states[1:]
	}
	if state != siobroker.LedgerTaken {
		return nil, state, nil
	}
	return fakeClaim{l}, state, nil
}

func (l *fakeLedger) end(how string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended == "" {
		l.ended, l.at = how, at
	}
}

type fakeClaim struct{ l *fakeLedger }

func (c fakeClaim) Answered(_ context.Context, at time.Time, payload []byte) error {
	if c.l.answeredErr != nil {
		return c.l.answeredErr
	}
	c.l.end("answered", at)
	c.l.mu.Lock()
	c.l.payload = payload
	c.l.mu.Unlock()
	return nil
}
func (c fakeClaim) Release() { c.l.end("released", time.Time{}) }

// TestLedgerClaimEndsWithTheAnswer: under a claim the handler runs, and the claim ends only once
// Publish is done with the answer: answered when a final answer went out, released otherwise.
func TestLedgerClaimEndsWithTheAnswer(t *testing.T) {
	for _, tt := range []struct {
		name      string
		final     bool
		fails     bool
		published bool
		ended     string
	}{
		{"final answer out", true, false, true, "answered"},
		{"final answer not out", true, false, false, "released"},
		{"provisional answer out", false, false, true, "released"},
		{"delivery failed", true, true, false, "released"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, logger := newLogs()
			l := &fakeLedger{states: []siobroker.LedgerState{siobroker.LedgerTaken}}
			h := Ledger(l, testAdapter, Poison{}, logger)(func(msg *message.Message) ([]*message.Message, error) {
				req, _ := Request(msg)
				if tt.fails {
					return nil, errors.New("dead letter not published")
				}
				if tt.final {
					return one(testAdapter.Final(req, okResult))
				}
				return one(testAdapter.Provisional(req, okResult))
			})
			msgs, err := h(delivery(testRequest("l1", 2)))
			if tt.fails {
				if err == nil || l.ended != "released" {
					t.Fatalf("failed delivery: %v, claim %q", err, l.ended)
				}
				return
			}
			if err != nil || len(msgs) != 1 {
				t.Fatalf("%v, %v", msgs, err)
			}
			if l.ended != "" {
				t.Fatalf("the claim ended (%s) before Publish was done with the answer", l.ended)
			}
			settle(msgs[0], tt.published)
			if l.ended != tt.ended {
				t.Fatalf("claim %q, want %q", l.ended, tt.ended)
			}
			if tt.ended == "answered" && (!l.at.Equal(answerOf(msgs[0]).resp.AnsweredAt) || string(l.payload) != string(msgs[0].Payload)) {
				t.Errorf("answered at %v with %q, want the answer's time and payload %q", l.at, l.payload, msgs[0].Payload)
			}
		})
	}
}

// keptAnswer is what the ledger holds of an answer to req, as Answered recorded it.
func keptAnswer(t *testing.T, req schemas.ServiceRequest) siobroker.LedgerAnswer {
	t.Helper()
	m, err := testAdapter.Final(req, siobroker.ServiceResult{Service: req.Service, Status: siobroker.StatusOK,
		Reason: siobroker.ReasonOK, Records: []siobroker.Record{{Type: "person"}}})
	if err != nil {
		t.Fatal(err)
	}
	return siobroker.LedgerAnswer{Owner: "adapter-x", AnsweredAt: testAdapter.Clock.Now(), Payload: m.Payload}
}

// TestLedgerStates: a copy answered before is answered again from the answer the ledger kept,
// without asking the source; one held elsewhere until the deadline is dropped; one held for a
// while is asked once the other process let go, or answered from the ledger once it answered; a
// ledger that cannot be read, or whose answer cannot be, gets a provisional ADAPTER_ERROR
// without asking.
func TestLedgerStates(t *testing.T) {
	taken, busy, answered := siobroker.LedgerTaken, siobroker.LedgerBusy, siobroker.LedgerAnswered
	kept := keptAnswer(t, testRequest("l2", 2))
	for _, tt := range []struct {
		name   string
		l      *fakeLedger
		asked  int
		answer siobroker.ResultStatus // of the answer; "" for none
		log    string
	}{
		{"answered before", &fakeLedger{states: []siobroker.LedgerState{answered}, kept: kept}, 0, siobroker.StatusOK,
			"redelivered request answered again from the answer the ledger kept; the source is not asked"},
		{"held until the deadline", &fakeLedger{states: []siobroker.LedgerState{busy}}, 0, "",
			"another adapter process held the request until its deadline; the copy is dropped"},
		{"held, then let go", &fakeLedger{states: []siobroker.LedgerState{busy, busy, taken}}, 1, siobroker.StatusOK, ""},
		{"held, then answered", &fakeLedger{states: []siobroker.LedgerState{busy, answered}, kept: kept}, 0, siobroker.StatusOK,
			"answered again from the answer the ledger kept"},
		{"unreadable", &fakeLedger{err: errors.New("connection refused")}, 0, siobroker.StatusError,
			"the ledger cannot be read; the source is not asked"},
		{"answer unreadable", &fakeLedger{states: []siobroker.LedgerState{answered}, answerErr: errors.New("connection reset")}, 0,
			siobroker.StatusError, "its answer cannot be read from the ledger; the source is not asked"},
		{"answer to another request", &fakeLedger{states: []siobroker.LedgerState{answered}, kept: keptAnswer(t, testRequest("other", 2))}, 0,
			siobroker.StatusError, "not to this request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs, logger := newLogs()
			asked := 0
			msg := delivery(testRequest("l2", 2))
			ctx, cancel := context.WithTimeout(msg.Context(), 200*time.Millisecond) // as Deadline gives it
			defer cancel()
			msg.SetContext(ctx)
			msgs, err := Ledger(tt.l, testAdapter, Poison{}, logger)(answering(&asked, okResult))(msg)
			if err != nil || asked != tt.asked {
				t.Fatalf("err %v, source asked %d times, want %d", err, asked, tt.asked)
			}
			if tt.answer == "" {
				if len(msgs) != 0 {
					t.Fatalf("%d answers to a dropped copy", len(msgs))
				}
			} else {
				resp, a := must{t}.answer(msgs, err)
				if resp.Result.Status != tt.answer {
					t.Fatalf("answer %+v", resp.Result)
				}
				if tt.answer == siobroker.StatusError && (a.final || resp.Result.Reason != siobroker.ReasonAdapterError) {
					t.Errorf("unreadable ledger: %+v, final %v", resp.Result, a.final)
				}
				if tt.asked == 0 && tt.answer == siobroker.StatusOK {
					// From the ledger: the answer kept, as it was, to this copy's reply topic.
					if string(msgs[0].Payload) != string(tt.l.kept.Payload) || !a.final ||
						msgs[0].Metadata.Get(schemas.MetaCorrelation) != "l2/2" || msgs[0].Metadata.Get(schemas.MetaRequestID) != "l2" {
						t.Errorf("answer from the ledger %q %v, want %q", msgs[0].Payload, msgs[0].Metadata, tt.l.kept.Payload)
					}
				}
			}
			if tt.log != "" {
				logs.want(t, tt.log, "correlation_id=l2/2")
			}
		})
	}
}

// TestLedgerAnsweredFails: an answer that is out but not recorded is only logged.
func TestLedgerAnsweredFails(t *testing.T) {
	logs, logger := newLogs()
	l := &fakeLedger{states: []siobroker.LedgerState{siobroker.LedgerTaken}, answeredErr: errors.New("db gone")}
	calls := 0
	msgs, err := Ledger(l, testAdapter, Poison{}, logger)(answering(&calls, okResult))(delivery(testRequest("l3", 2)))
	if err != nil {
		t.Fatal(err)
	}
	settle(msgs[0], true)
	if l.ended != "released" {
		t.Errorf("claim %q, want released after the record failed", l.ended)
	}
	logs.want(t, "answer not recorded in the ledger", "db gone", "correlation_id=l3/2")
}

// TestLedgerAnswerForgotten: a copy of a request answered so long ago that the ledger has
// forgotten its answer is not answered, and the source is not asked: it goes to the dead-letter
// topic with why, or, without one, is dropped with a log line. The delivery succeeds either way.
func TestLedgerAnswerForgotten(t *testing.T) {
	answeredAt := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	forgotten := siobroker.LedgerAnswer{Owner: "adapter-x", AnsweredAt: answeredAt}
	for _, dlq := range []string{"", "sio.dlq"} {
		t.Run("dlq="+dlq, func(t *testing.T) {
			logs, logger := newLogs()
			var out []published
			l := &fakeLedger{states: []siobroker.LedgerState{siobroker.LedgerAnswered}, kept: forgotten}
			asked := 0
			msg := delivery(testRequest("l4", 2))
			msg.UUID = "l4/2"
			poison := Poison{Topic: dlq, Publish: recordPublish(&out, nil), Adapter: testAdapter}
			msgs, err := Ledger(l, testAdapter, poison, logger)(answering(&asked, okResult))(msg)
			if err != nil || len(msgs) != 0 || asked != 0 {
				t.Fatalf("answers %d, err %v, source asked %d times; want none, nil, 0", len(msgs), err, asked)
			}
			reason := "answered by adapter process adapter-x at 2026-11-30T09:00:00Z, but the ledger no longer keeps that answer"
			if dlq == "" {
				logs.want(t, "redelivered request whose earlier answer was forgotten dropped (no dead-letter queue)", "correlation_id=l4/2", reason)
				if len(out) != 0 {
					t.Errorf("%d dead letters without a dead-letter topic", len(out))
				}
				return
			}
			logs.want(t, "redelivered request whose earlier answer was forgotten dead-lettered", "correlation_id=l4/2", "topic=sio.dlq")
			if len(out) != 1 {
				t.Fatalf("%d dead letters, want 1", len(out))
			}
			m := out[0].msg
			if out[0].topic != "sio.dlq" || m.UUID != "l4/2" || !strings.HasPrefix(deadReason(t, m), reason) ||
				m.Metadata.Get(schemas.MetaDeadTopic) != schemas.ServiceTopic(2) {
				t.Errorf("dead letter to %s: %s %v", out[0].topic, m.UUID, m.Metadata)
			}
		})
	}
}

// TestLedgerRowGone: a row pruned between Take and Answer is a forgotten answer too, whose reason
// names no process or time it does not know.
func TestLedgerRowGone(t *testing.T) {
	_, logger := newLogs()
	var out []published
	l := &fakeLedger{states: []siobroker.LedgerState{siobroker.LedgerAnswered}}
	asked := 0
	poison := Poison{Topic: "sio.dlq", Publish: recordPublish(&out, nil), Adapter: testAdapter}
	msgs, err := Ledger(l, testAdapter, poison, logger)(answering(&asked, okResult))(delivery(testRequest("l5", 2)))
	if err != nil || len(msgs) != 0 || asked != 0 || len(out) != 1 {
		t.Fatalf("answers %d, err %v, asked %d, dead letters %d", len(msgs), err, asked, len(out))
	}
	if r := deadReason(t, out[0].msg); !strings.HasPrefix(r, "answered by an adapter process, but the ledger no longer keeps that answer") {
		t.Errorf("reason %q", r)
	}
}
