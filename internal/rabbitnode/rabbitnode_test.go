package rabbitnode

import (
	"context"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TestPersistentMessagesSurviveStopAndKill: a persistent message on a quorum queue of a private
// node is still there after an orderly stop and after a kill, each followed by a start on the
// same port and database.
func TestPersistentMessagesSurviveStopAndKill(t *testing.T) {
	n := Start(t)
	publish(t, n, "one")
	n.Stop()
	if n.Running() {
		t.Fatal("running after Stop")
	}
	if err := n.login(); err == nil {
		t.Fatal("a login succeeded while the node is stopped")
	}
	n.Start()
	publish(t, n, "two")
	n.Kill()
	n.Start()
	conn, err := amqp091.Dial(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		d, ok, err := ch.Get("survivors", true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			time.Sleep(100 * time.Millisecond) // the quorum queue may still be recovering
			continue
		}
		got = append(got, string(d.Body))
	}
	if len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Fatalf("after the restarts the queue holds %q, want [one two]", got)
	}
}

func publish(t *testing.T, n *Node, body string) {
	t.Helper()
	conn, err := amqp091.Dial(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("survivors", true, false, false, false, amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "survivors", true, false,
		amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dc.WaitContext(ctx); !ok || err != nil {
		t.Fatalf("not confirmed: %v %v", ok, err)
	}
}
