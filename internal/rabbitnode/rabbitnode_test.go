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

// TestClusterReplicatesQuorumQueues: three private nodes form one cluster; a quorum queue
// declared on one has a member on each, and its messages survive the kill of its leader.
func TestClusterReplicatesQuorumQueues(t *testing.T) {
	if testing.Short() {
		t.Skip("boots three RabbitMQ nodes")
	}
	c := StartCluster(t, 3)
	publish(t, c.Nodes[0], "before")
	qs, err := c.Queues("survivors")
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 1 || len(qs[0].Members) != 3 {
		t.Fatalf("queues %+v, want survivors with 3 members", qs)
	}
	leader := c.Node(qs[0].Leader)
	if leader == nil {
		t.Fatalf("leader %q is not a node of the cluster", qs[0].Leader)
	}
	leader.Kill()
	var other *Node
	for _, n := range c.Nodes {
		if n != leader {
			other = n
			break
		}
	}
	// While the queue has no leader, basic.get fails with a connection exception (internal_error,
	// nodedown): dial again, as a client would.
	deadline := time.Now().Add(60 * time.Second)
	for {
		body, err := getOne(other, "survivors")
		if err == nil && body != "" {
			if body != "before" {
				t.Fatalf("got %q", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message is not on the queue a minute after its leader was killed (%v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	after, err := c.Queues("survivors")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s killed; queue now %+v", leader.Name(), after)
	if len(after) != 1 || after[0].Leader == leader.Name() {
		t.Errorf("after the kill: %+v, want a new leader", after)
	}
}

// getOne takes one message of queue on node n, "" when it is empty.
func getOne(n *Node, queue string) (string, error) {
	conn, err := amqp091.Dial(n.URL())
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return "", err
	}
	d, ok, err := ch.Get(queue, true)
	if err != nil || !ok {
		return "", err
	}
	return string(d.Body), nil
}
