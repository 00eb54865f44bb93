package config

import (
	"strings"
	"testing"
)

// TestAMQPURLProblems: amqp.url takes one URI or one per RabbitMQ node, comma-separated; each is
// checked, named by position, and no password is repeated.
func TestAMQPURLProblems(t *testing.T) {
	for _, ok := range []string{
		"amqp://guest:guest@127.0.0.1:5672/",
		"amqp://u:p@rabbit1:5672/sio, amqp://u:p@rabbit2:5672/sio,amqps://v:q@rabbit3/sio",
	} {
		if errs := AMQPURLProblems("amqp.url", ok); len(errs) > 0 {
			t.Errorf("%q: %v", ok, errs)
		}
	}
	for bad, want := range map[string]string{
		"":    "required",
		" , ": "required",
		"amqp://u:secret@rabbit1/,http://u:secret@x/": "URL 2 of 2",
		"amqp://u:secret@[::1/,amqp://u:secret@x/":    "URL 1 of 2",
		"amqp:///vhost": "with a host",
	} {
		errs := AMQPURLProblems("amqp.url", bad)
		if len(errs) != 1 {
			t.Errorf("%q: %d problems %v, want 1", bad, len(errs), errs)
			continue
		}
		if msg := errs[0].Error(); !strings.Contains(msg, want) || strings.Contains(msg, "secret") {
			t.Errorf("%q: %q, want it to say %q without the password", bad, msg, want)
		}
	}
}
