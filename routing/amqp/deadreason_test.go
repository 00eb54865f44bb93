package amqp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/httpsource"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
)

// personalWords are what a source's error quoted: a person's names in Cyrillic and Latin, an
// IIN, an address.
var personalWords = []string{"ИВАНОВ", "Иван", "Smith", "John", "810803325634", "Абая", "Астана", "кв. 5"}

const personalText = "ИВАНОВ Иван Иванович (John Smith), ИИН 810803325634, г. Астана, ул. Абая 12, кв. 5"

// rawDeadReasons reads the reason header of every letter in the dead-letter queue as RabbitMQ
// holds it, and puts the letters back.
func rawDeadReasons(t *testing.T, ctx context.Context, cfg Config) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := withDLQ(ctx, cfg, 10, func(_ *amqp091.Channel, d amqp091.Delivery) (bool, error) {
		out[d.MessageId], _ = d.Headers[schemas.MetaDeadReason].(string)
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDeadLetterReasonKeepsNoSourceText: a source whose errors quote a person (names in Cyrillic
// and Latin, an IIN, an address) fails transiently until the adapter gives up. The reason the
// dead letter carries in RabbitMQ, and the one `dlq list` and the dashboard show
// (ListDeadLetters), hold none of it: they say what failed, how often, where, and the class of
// the last error (an HTTP status here; a bare error is "an error, see the adapter's log"). A
// letter whose reason is free text (an earlier version's) is listed without its text.
func TestDeadLetterReasonKeepsNoSourceText(t *testing.T) {
	const service = 15
	cfg := testConfig(t, []int{service}, nil)
	ctx := ctxFor(t, 60*time.Second)
	if err := Declare(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	adapterTr := newTransport(t, cfg)
	rt := newAdapterRuntime(t, routing.AdapterConfig{Name: "gbd-fl", Backends: map[int]adapters.Backend{
		service: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			if req.RequestID == "personal-503" {
				return siobroker.ServiceResult{}, adapters.Transient(fmt.Errorf("ГБД ФЛ about %s: %w", personalText,
					&httpsource.StatusError{Method: "GET", URL: "https://gbd.example/person", Status: "503 " + personalText, Code: 503}))
			}
			return siobroker.ServiceResult{}, adapters.Transient(errors.New("ГБД ФЛ: " + personalText))
		}),
	}, Publisher: adapterTr.Publisher(), Attempts: 3, Backoff: 5 * time.Millisecond, DeadLetters: adapterTr.DeadLetterTopic()})
	runRouter(t, func(r *message.Router) { rt.AddHandlers(r, adapterTr.Subscriber()) })
	d := startBroker(t, cfg, "broker-reason")

	for _, id := range []string{"personal-503", "personal-text"} {
		out := d.Dispatch(ctx, []schemas.ServiceRequest{{RequestID: id, Service: service, Subject: siobroker.Subject{IIN: "810803325634"}}},
			func(int) time.Duration { return 20 * time.Second })
		if r := out[0].Result; r.Status != siobroker.StatusError || strings.Contains(r.Message, "Иван") {
			t.Fatalf("%s: result %+v, want ADAPTER_ERROR without the source's text", id, r)
		}
	}
	// An earlier version's letter, its reason the source's text.
	conn, err := amqp091.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	dlq := cfg
	dlq.setDefaults()
	if err := ch.PublishWithContext(ctx, "", dlq.name(dlq.DeadLetterQueue), true, false, amqp091.Publishing{MessageId: "legacy/15",
		DeliveryMode: amqp091.Persistent, Body: []byte(`{}`), Headers: amqp091.Table{
			schemas.MetaDeadReason: "the source failed transiently 3 times (adapter old); last error: " + personalText,
			schemas.MetaDeadTopic:  schemas.ServiceTopic(service),
		}}); err != nil {
		t.Fatal(err)
	}

	var letters []DeadLetter
	waitFor(t, 15*time.Second, func() bool {
		letters, err = ListDeadLetters(ctx, cfg, 10)
		return err == nil && len(letters) == 3
	}, "three letters in the dead-letter queue")
	want := map[string]string{
		"personal-503/15":  "the source failed transiently 3 times (adapter gbd-fl, service 15); last error: HTTP status 503",
		"personal-text/15": "the source failed transiently 3 times (adapter gbd-fl, service 15); last error: an error (see the adapter's log)",
		"legacy/15":        unrecognisedReason,
	}
	for _, l := range letters {
		t.Logf("dlq list: %s: %s", l.MessageID, l.Reason)
		for _, w := range personalWords {
			if strings.Contains(l.Reason, w) {
				t.Errorf("dlq list shows %q for %s", w, l.MessageID)
			}
		}
		if l.Reason != want[l.MessageID] || l.Queue != cfg.name(schemas.ServiceTopic(service)) {
			t.Errorf("dead letter %s from %s: reason %q, want %q", l.MessageID, l.Queue, l.Reason, want[l.MessageID])
		}
	}
	raw := rawDeadReasons(t, ctx, cfg)
	for id, header := range raw {
		for _, w := range personalWords {
			if id != "legacy/15" && strings.Contains(header, w) {
				t.Errorf("the reason RabbitMQ holds for %s quotes %q: %q", id, w, header)
			}
		}
	}
	if h := raw["personal-503/15"]; h != "source-failing adapter=gbd-fl service=15 attempts=3 error=http-status http-status=503" {
		t.Errorf("reason header %q", h)
	}
}
