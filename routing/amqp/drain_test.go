package amqp

import (
	"testing"
	"time"

	"github.com/rabbitmq/amqp091-go"
)

// TestDrainReturnsEnds: draining a channel's returns after an ack ends whether they are empty,
// hold the message's return among others, or were closed because the connection was lost right
// after the ack (a closed channel hands out empty returns for ever: the publish spun a core until
// CI's timeout in TestNoFalseDeadLettersAcrossRestarts).
func TestDrainReturnsEnds(t *testing.T) {
	buffered := func(ids ...string) chan amqp091.Return {
		c := make(chan amqp091.Return, len(ids))
		for _, id := range ids {
			c <- amqp091.Return{MessageId: id}
		}
		return c
	}
	closedAfter := func(ids ...string) chan amqp091.Return {
		c := buffered(ids...)
		close(c)
		return c
	}
	for _, tc := range []struct {
		name    string
		returns chan amqp091.Return
		want    bool
	}{
		{"empty", buffered(), false},
		{"another message's return", buffered("m-2"), false},
		{"its return among others", buffered("m-2", "m-1", "m-3"), true},
		{"closed", closedAfter(), false},
		{"closed after its return", closedAfter("m-1"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan bool, 1)
			go func() { got <- drainReturns(tc.returns, "m-1") }()
			select {
			case returned := <-got:
				if returned != tc.want {
					t.Errorf("returned = %v, want %v", returned, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("draining the returns did not end")
			}
		})
	}
}
