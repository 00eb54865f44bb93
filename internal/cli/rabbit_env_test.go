package cli

import (
	"fmt"
	"strings"
	"testing"
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
