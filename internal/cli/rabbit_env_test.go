package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TestDLQListWrongPrefix: dlq list against a dead-letter queue RabbitMQ does not have (a prefix
// that is not the running broker's) names the queue, the RabbitMQ, the amqp.prefix in force and
// where it came from (the file or SIOBROKER_AMQP_PREFIX), and how to fix it. It needs the
// machine's RabbitMQ; under CI=true its absence is a failure.
func TestDLQListWrongPrefix(t *testing.T) {
	prefix := amqpPrefix(t) // fresh: no queue of it exists
	file := writeBrokerConfig(t, fmt.Sprintf("transport: amqp\namqp:\n  url: %q\n  prefix: %q\n", testAMQPURL, prefix))

	code, out, errOut := runMainArgs("dlq", "list", "--config", file)
	t.Logf("from the file:\n%s", errOut)
	queue := prefix + "sio.dlq"
	for _, want := range []string{
		fmt.Sprintf("siobroker dlq list: RabbitMQ has no queue %q (NOT_FOUND", queue), "nothing was listed",
		"the configuration " + file + " gave",
		fmt.Sprintf("amqp.prefix %q (from %s)", prefix, file),
		fmt.Sprintf("amqp.url %q (from %s)", "amqp://guest:xxxxx@127.0.0.1:5672/", file),
		"set\n  amqp.prefix and amqp.url in " + file + ", or SIOBROKER_AMQP_PREFIX and SIOBROKER_AMQP_URL",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the error lacks %q", want)
		}
	}
	if code != 1 || out != "" || strings.Contains(errOut, "guest:guest") {
		t.Errorf("exit %d, stdout %q (want 1, nothing, and no password)", code, out)
	}

	// The environment overrides the file, as for serve, and the error says so.
	envPrefix := prefix + "env."
	t.Setenv("SIOBROKER_AMQP_PREFIX", envPrefix)
	code, _, errOut = runMainArgs("dlq", "list", "--config", file)
	t.Logf("from the environment:\n%s", errOut)
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("has no queue %q", envPrefix+"sio.dlq")) ||
		!strings.Contains(errOut, fmt.Sprintf("amqp.prefix %q (from SIOBROKER_AMQP_PREFIX)", envPrefix)) {
		t.Errorf("exit %d: the error does not name the environment's prefix", code)
	}

	// A configuration on the in-process transport is told it has no dead-letter queue at all.
	t.Setenv("SIOBROKER_TRANSPORT", "gochannel")
	if _, _, errOut = runMainArgs("dlq", "list", "--config", file); !strings.Contains(errOut, `transport "gochannel" (from SIOBROKER_TRANSPORT)`) {
		t.Errorf("transport gochannel: %s", errOut)
	}
}

// TestAdapterEnvOverrides: siobroker adapter takes RabbitMQ's URL and the queue prefix from
// SIOBROKER_AMQP_URL and SIOBROKER_AMQP_PREFIX over its file, as the broker does: the file below
// names a RabbitMQ nobody listens on and a prefix without queues, and the adapter serves the
// environment's. Without the environment's queues it fails, naming the prefix and its source.
func TestAdapterEnvOverrides(t *testing.T) {
	prefix := amqpPrefix(t)
	file := filepath.Join(t.TempDir(), "adapter.yaml")
	key := adapterKey(t, filepath.Join(t.TempDir(), "transport.key"), "envtest")
	text := "name: envtest\ntransport: {amqp_url: \"amqp://guest:guest@127.0.0.1:1/\", prefix: \"file-only.\", prefetch: 1, concurrency: 1, " +
		"message_key_file: \"" + key + "\"}\ndemo: {seed: 1, people: 5, organisations: 2}\nservices: {1: {backend: demo}}\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIOBROKER_AMQP_URL", testAMQPURL)
	t.Setenv("SIOBROKER_AMQP_PREFIX", prefix)

	// No queue yet: the adapter refuses to start, naming what it tried.
	code, _, errOut := runMainArgs("adapter", "--config", file)
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf(`prefix \"%s\" (from SIOBROKER_AMQP_PREFIX)`, prefix)) ||
		!strings.Contains(errOut, "(from SIOBROKER_AMQP_URL)") || !strings.Contains(errOut, prefix+"sio.service.001") {
		t.Fatalf("without the queues: exit %d\n%s", code, errOut)
	}

	declareQueue(t, prefix+"sio.service.001")
	declareReplyExchange(t, prefix+"sio.replies") // as a broker declares it; the adapter answers through it
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- Main(ctx, []string{"adapter", "--config", file}, out, errb) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "siobroker adapter envtest serving services [1]") {
		select {
		case code := <-done:
			t.Fatalf("the adapter exited %d\n%s", code, errb.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the adapter did not serve the environment's queue:\n%s", errb.String())
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("the adapter exited %d\n%s", code, errb.String())
	}
	for _, env := range []string{"SIOBROKER_AMQP_URL", "SIOBROKER_AMQP_PREFIX"} {
		if !strings.Contains(errb.String(), "env="+env) {
			t.Errorf("the log does not say %s was applied:\n%s", env, errb.String())
		}
	}
}

// declareQueue declares a durable queue on the machine's RabbitMQ, as a broker would; the
// cleanup of amqpPrefix deletes it.
// declareReplyExchange declares the reply exchange name on the machine's RabbitMQ, and deletes it
// after the test.
func declareReplyExchange(t *testing.T, name string) {
	t.Helper()
	conn, err := amqp091.Dial(testAMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(name, amqp091.ExchangeDirect, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if conn, err := amqp091.Dial(testAMQPURL); err == nil {
			if ch, err := conn.Channel(); err == nil {
				_ = ch.ExchangeDelete(name, false, false)
			}
			_ = conn.Close()
		}
	})
}

func declareQueue(t *testing.T, name string) {
	t.Helper()
	conn, err := amqp091.Dial(testAMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
}
