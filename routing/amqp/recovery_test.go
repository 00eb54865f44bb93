package amqp

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/rabbitnode"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
)

// promptly is how soon after RabbitMQ accepts logins again every transport must be ready and a
// request answered.
const promptly = 5 * time.Second

// TestPromptRecoveryAfterLongOutage: RabbitMQ is away for longer than the default ReconnectMax,
// so that the reconnection back-off has grown to its longest; once it is back, a broker and an
// adapter transport are ready again, and a request is answered, within a few seconds rather than
// after the rest of a 30 s pause.
func TestPromptRecoveryAfterLongOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("an outage of over 30 s")
	}
	node := rabbitnode.Start(t)
	const service = 4
	cfg := Config{URL: node.URL(), Prefix: "test-" + watermill.NewShortUUID() + ".", Services: []int{service}} // the default back-off
	if err := Declare(ctxFor(t, 30*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	dials := &dialLog{waits: map[string]string{}}
	adapterTr := transportLogged(t, cfg, "", dials.logger("adapter"))
	rt := newAdapterRuntime(t, routing.AdapterConfig{Name: "prompt", Backends: map[int]adapters.Backend{
		service: newCounter().backend("prompt", service)}, Publisher: adapterTr.Publisher()})
	runRouter(t, func(r *message.Router) { rt.AddHandlers(r, adapterTr.Subscriber()) })
	brokerTr := transportLogged(t, cfg, "broker-prompt", dials.logger("broker"))
	d := newDispatcher(t, routing.DispatcherConfig{Publisher: brokerTr.Publisher(), ReplyTopic: brokerTr.ReplyTopic()})
	runRouter(t, func(r *message.Router) { d.AddHandlers(r, brokerTr.Subscriber()) })
	all := []*Transport{brokerTr, adapterTr}

	ask := func(id string) siobroker.ServiceResult {
		return d.Dispatch(ctxFor(t, 20*time.Second), []schemas.ServiceRequest{{RequestID: id, Service: service,
			Subject: siobroker.Subject{IIN: "750312300458"}}}, func(int) time.Duration { return promptly })[0].Result
	}
	if r := ask("before"); r.Status != siobroker.StatusOK {
		t.Fatalf("before the outage: %+v", r)
	}

	node.Stop()
	for i, tr := range all {
		waitFor(t, 10*time.Second, func() bool { return errors.Is(tr.Ready(), ErrNotConnected) }, fmt.Sprintf("transport %d not ready", i))
	}
	// The outage lasts until every connection's back-off has reached DefaultReconnectMax: each
	// has just failed an attempt and would sleep 15-30 s before the next, were it not for the
	// probe. RabbitMQ then boots in a few seconds, well within that pause.
	waitFor(t, 2*DefaultReconnectMax+30*time.Second, func() bool { return dials.allAt(4, DefaultReconnectMax.String()) },
		"every connection's back-off at its longest")
	node.Start() // returns once the node accepts logins
	back := time.Now()
	for i, tr := range all {
		waitFor(t, promptly, func() bool { return tr.Ready() == nil }, fmt.Sprintf("transport %d ready within %s", i, promptly))
	}
	t.Logf("ready %s after RabbitMQ accepted logins again", time.Since(back).Round(time.Millisecond))
	if r := ask("after"); r.Status != siobroker.StatusOK || time.Since(back) > 2*promptly {
		t.Fatalf("after the outage: %+v, %s after RabbitMQ was back", r, time.Since(back))
	}
}

// transportLogged is newTransport, or newBroker for instance, with logger.
func transportLogged(t *testing.T, cfg Config, instance string, logger watermill.LoggerAdapter) *Transport {
	t.Helper()
	var tr *Transport
	var err error
	if instance == "" {
		tr, err = New(ctxFor(t, 30*time.Second), cfg, logger)
	} else {
		cfg.Instance = instance
		tr, err = NewBrokerTransport(ctxFor(t, 30*time.Second), cfg, logger)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// dialLog keeps, per transport and connection, the back-off of its last failed dial.
type dialLog struct {
	mu    sync.Mutex
	waits map[string]string // "broker publishing" → "30s"
}

func (d *dialLog) logger(name string) watermill.LoggerAdapter {
	return dialLogger{d: d, fields: watermill.LogFields{"transport": name}}
}

// allAt reports whether n connections have failed a dial with back-off wait.
func (d *dialLog) allAt(n int, wait string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	at := 0
	for _, w := range d.waits {
		if w == wait {
			at++
		}
	}
	return at >= n
}

type dialLogger struct {
	d      *dialLog
	fields watermill.LogFields
}

func (l dialLogger) Error(msg string, _ error, fields watermill.LogFields) {
	if msg != "amqp: dial RabbitMQ failed, retrying" {
		return
	}
	all := l.fields.Add(fields)
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	l.d.waits[fmt.Sprint(all["transport"], " ", all["connection"])] = fmt.Sprint(all["wait"])
}
func (dialLogger) Info(string, watermill.LogFields)  {}
func (dialLogger) Debug(string, watermill.LogFields) {}
func (dialLogger) Trace(string, watermill.LogFields) {}
func (l dialLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return dialLogger{d: l.d, fields: l.fields.Add(fields)}
}
