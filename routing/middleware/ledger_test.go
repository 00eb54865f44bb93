package middleware

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
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

func (c fakeClaim) Answered(_ context.Context, at time.Time) error {
	if c.l.answeredErr != nil {
		return c.l.answeredErr
	}
	c.l.end("answered", at)
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
			h := Ledger(l, testAdapter, logger)(func(msg *message.Message) ([]*message.Message, error) {
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
			if tt.ended == "answered" && !l.at.Equal(answerOf(msgs[0]).resp.AnsweredAt) {
				t.Errorf("answered at %v, want the answer's time", l.at)
			}
		})
	}
}

// TestLedgerStates: a copy answered before, or held elsewhere until the deadline, is dropped
// without asking the source; one held for a while is asked once the other process answered or
// let go; a ledger that cannot be read gets a provisional ADAPTER_ERROR without asking.
func TestLedgerStates(t *testing.T) {
	taken, busy, answered := siobroker.LedgerTaken, siobroker.LedgerBusy, siobroker.LedgerAnswered
	for _, tt := range []struct {
		name   string
		l      *fakeLedger
		asked  int
		answer siobroker.ResultStatus // of the answer; "" for none
		log    string
	}{
		{"answered before", &fakeLedger{states: []siobroker.LedgerState{answered}}, 0, "",
			"redelivered request already answered by an adapter process; the copy is dropped"},
		{"held until the deadline", &fakeLedger{states: []siobroker.LedgerState{busy}}, 0, "",
			"another adapter process held the request until its deadline; the copy is dropped"},
		{"held, then let go", &fakeLedger{states: []siobroker.LedgerState{busy, busy, taken}}, 1, siobroker.StatusOK, ""},
		{"held, then answered", &fakeLedger{states: []siobroker.LedgerState{busy, answered}}, 0, "", "already answered"},
		{"unreadable", &fakeLedger{err: errors.New("connection refused")}, 0, siobroker.StatusError,
			"the ledger cannot be read; the source is not asked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs, logger := newLogs()
			asked := 0
			msg := delivery(testRequest("l2", 2))
			ctx, cancel := context.WithTimeout(msg.Context(), 200*time.Millisecond) // as Deadline gives it
			defer cancel()
			msg.SetContext(ctx)
			msgs, err := Ledger(tt.l, testAdapter, logger)(answering(&asked, okResult))(msg)
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
				if tt.l.err != nil && (a.final || resp.Result.Reason != siobroker.ReasonAdapterError) {
					t.Errorf("unreadable ledger: %+v, final %v", resp.Result, a.final)
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
	msgs, err := Ledger(l, testAdapter, logger)(answering(&calls, okResult))(delivery(testRequest("l3", 2)))
	if err != nil {
		t.Fatal(err)
	}
	settle(msgs[0], true)
	if l.ended != "released" {
		t.Errorf("claim %q, want released after the record failed", l.ended)
	}
	logs.want(t, "answer not recorded in the ledger", "db gone", "correlation_id=l3/2")
}
