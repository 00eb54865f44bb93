package amqp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/rabbitnode"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
)

// TestRabbitMQPermissions runs the README's rabbitmqctl lines ("Users and permissions") on a
// private RabbitMQ node, and then works under those users: the brokers declare the topology and
// the adapter answers through them, each refusal the README promises is ACCESS_REFUSED, and
// service messages forged by a user that may publish to the service queue (a broker's, without
// the key) are dead-lettered by the adapter with its source never asked, as is an answer forged
// by the adapter's user for another adapter's service at the broker; and the same for the case
// registry erdr, answered by its own adapter under its own user: forged case checks are
// dead-lettered unasked, and a verdict forged by another adapter is refused.
func TestRabbitMQPermissions(t *testing.T) {
	node := rabbitnode.Start(t)
	passwords := map[string]string{}
	for _, args := range readmePermissions(t, passwords) {
		if _, err := node.Ctl(args...); err != nil {
			t.Fatal(err)
		}
	}
	as := func(user, password string) Config {
		return Config{URL: node.URLAs(user, password, "sio"), ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
			DeliveryLimit: 5}
	}
	const service = 37
	services := []int{1, 5, 11, service}
	brokerCfg := func(instance, user, password string) Config {
		cfg := as(user, password)
		cfg.Instance, cfg.Services, cfg.Registries = instance, services, []string{"erdr"}
		return cfg
	}
	brokerA := brokerCfg("broker-a", "sio-broker-a", passwords["BROKER_A_PASSWORD"])
	brokerB := brokerCfg("broker-b", "sio-broker-b", passwords["BROKER_B_PASSWORD"])
	adapterCfg := as("sio-adapter-kgd", passwords["KGD_ADAPTER_PASSWORD"])
	adapterCfg.Services = []int{1, 5, service}

	// The brokers declare the topology, each under its own user, and bind their reply queues.
	for _, cfg := range []Config{brokerA, brokerB} {
		if err := Declare(ctxFor(t, 30*time.Second), cfg); err != nil {
			t.Fatalf("Declare as %s: %v", cfg.Instance, err)
		}
	}
	trA := newBroker(t, brokerA, "broker-a")
	trB := newBroker(t, brokerB, "broker-b")

	// The adapter, under its user and with its own key.
	master := msgauthtest.Master()
	key, err := master.Derive("kgd-adapter-1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := msgauth.NewAdapter(msgauth.AdapterConfig{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	refused := make(chan msgauth.Reason, 16)
	adapterTr := newTransport(t, adapterCfg)
	rt := newAdapterRuntime(t, routing.AdapterConfig{Name: "kgd-adapter-1", Auth: keys, Publisher: adapterTr.Publisher(),
		DeadLetters: adapterTr.DeadLetterTopic(), ObserveRefusal: func(r msgauth.Reason) { refused <- r },
		Backends: map[int]adapters.Backend{service: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			asked.Add(1)
			return siobroker.ServiceResult{Records: []siobroker.Record{{Type: "counter_check"}}}, nil
		})}})
	runRouter(t, func(r *message.Router) { rt.AddHandlers(r, adapterTr.Subscriber()) })

	late := make(chan routing.LateAnswer, 4)
	brokerRefused := make(chan msgauth.Reason, 4)
	d := newDispatcher(t, routing.DispatcherConfig{Publisher: trA.Publisher(), ReplyTopic: trA.ReplyTopic(),
		Auth: msgauthtest.Broker(), AdapterOf: func(n int) string {
			if n == service || n == 1 || n == 5 {
				return "kgd-adapter-1"
			}
			return "vehicles-adapter"
		},
		RegistryAdapterOf:    msgauthtest.AllRegistriesTo("erdr-adapter"),
		DeadLetters:          trA.DeadLetterTopic(),
		OnLateAnswer:         func(_ context.Context, a routing.LateAnswer) (bool, error) { late <- a; return true, nil },
		ObserveRefusedAnswer: func(_ int, r msgauth.Reason) { brokerRefused <- r }})
	runRouter(t, func(r *message.Router) { d.AddHandlers(r, trA.Subscriber()) })

	// The broker's own request is answered through sio.replies.
	out := d.Dispatch(ctxFor(t, 30*time.Second), []schemas.ServiceRequest{{RequestID: "real-1", Service: service,
		Subject: siobroker.Subject{BIN: "050540004455"}}}, func(int) time.Duration { return 15 * time.Second })
	if r := out[0].Result; r.Status != siobroker.StatusOK || len(r.Records) != 1 {
		t.Fatalf("the broker's own request: %+v", r)
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("the source was asked %d times, want 1", n)
	}

	// What the users may not do.
	for _, tt := range []struct {
		name string
		cfg  Config
		do   func(ch *amqp091.Channel) error
	}{
		{"an adapter reads another service's queue", adapterCfg, func(ch *amqp091.Channel) error {
			_, err := ch.Consume("sio.service.011", "", false, false, false, false, nil)
			return err
		}},
		{"an adapter reads a broker's reply queue", adapterCfg, func(ch *amqp091.Channel) error {
			_, _, err := ch.Get("sio.reply.broker-a", false)
			return err
		}},
		{"an adapter reads the dead-letter queue", adapterCfg, func(ch *amqp091.Channel) error {
			_, _, err := ch.Get("sio.dlq", false)
			return err
		}},
		{"an adapter publishes to a service queue", adapterCfg, func(ch *amqp091.Channel) error {
			return publishConfirmed(ch, "", "sio.service.037", amqp091.Publishing{Body: []byte("{}")})
		}},
		{"an adapter deletes its own queue", adapterCfg, func(ch *amqp091.Channel) error {
			_, err := ch.QueueDelete("sio.service.037", false, false, false)
			return err
		}},
		{"a broker reads another broker's reply queue", brokerA, func(ch *amqp091.Channel) error {
			_, err := ch.Consume("sio.reply.broker-b", "", false, false, false, false, nil)
			return err
		}},
		{"a broker takes a message of another broker's reply queue", brokerB, func(ch *amqp091.Channel) error {
			_, _, err := ch.Get("sio.reply.broker-a", false)
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := onChannel(t, tt.cfg, tt.do)
			var amqpErr *amqp091.Error
			if !errors.As(err, &amqpErr) || amqpErr.Code != amqp091.AccessRefused {
				t.Fatalf("err %v, want ACCESS_REFUSED", err)
			}
			t.Logf("refused: %s", amqpErr.Reason)
		})
	}

	// Service messages forged by a user allowed to publish to the service queue: broker-b's,
	// which has no key. Each asks for a reply to broker-b.
	req := schemas.ServiceRequest{RequestID: "forged", MessageID: "m-forged", Service: service, ReplyTo: trB.ReplyTopic(),
		Subject: siobroker.Subject{BIN: "050540004455"}, Deadline: time.Now().Add(time.Minute)}
	payload, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	forged := func(id string, sign func(m *message.Message)) *message.Message {
		m := message.NewMessage(id, payload)
		m.Metadata.Set(schemas.MetaRequestID, req.RequestID)
		m.Metadata.Set(schemas.MetaService, "37")
		m.Metadata.Set(schemas.MetaReplyTo, req.ReplyTo)
		sign(m)
		return m
	}
	other := msgauthtest.Broker() // the right master key, to show what an altered or old message does
	// The dead-letter reasons, in the broker's vocabulary (schemas.DeadReason); the details go to
	// the adapter's log.
	letters := map[string]string{
		"forged/unsigned":      "it carries no authenticator",
		"forged/other-adapter": "it was made for another adapter",
		"forged/altered":       "its authenticator does not match it (altered, or forged)",
		"forged/expired":       "it expired",
		"forged/wrong-master":  "it was made with a key not held",
	}
	wrongMaster, err := msgauth.NewBroker(msgauth.BrokerConfig{Master: mustMaster(t)})
	if err != nil {
		t.Fatal(err)
	}
	pub := trB.Publisher()
	for _, m := range []*message.Message{
		forged("forged/unsigned", func(*message.Message) {}),
		forged("forged/other-adapter", func(m *message.Message) {
			if err := other.SignRequest("vehicles-adapter", m.Metadata, m.Payload, req.Deadline); err != nil {
				t.Fatal(err)
			}
		}),
		forged("forged/altered", func(m *message.Message) {
			if err := other.SignRequest("kgd-adapter-1", m.Metadata, m.Payload, req.Deadline); err != nil {
				t.Fatal(err)
			}
			m.Payload = []byte(strings.Replace(string(m.Payload), "050540004455", "050540004456", 1))
		}),
		forged("forged/expired", func(m *message.Message) {
			// A message the broker did make, captured two hours ago.
			if err := other.SignRequest("kgd-adapter-1", m.Metadata, m.Payload, time.Now().Add(-2*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}),
		forged("forged/wrong-master", func(m *message.Message) {
			if err := wrongMaster.SignRequest("kgd-adapter-1", m.Metadata, m.Payload, req.Deadline); err != nil {
				t.Fatal(err)
			}
		}),
	} {
		if err := pub.Publish(schemas.ServiceTopic(service), m); err != nil {
			t.Fatalf("broker-b publishes %s to the service queue: %v", m.UUID, err)
		}
	}
	for i := range len(letters) {
		select {
		case <-refused:
		case <-time.After(15 * time.Second):
			t.Fatalf("%d of %d forged messages refused", i, len(letters))
		}
	}
	byID := map[string]DeadLetter{}
	waitFor(t, 15*time.Second, func() bool {
		ls, err := ListDeadLetters(ctxFor(t, 10*time.Second), brokerA, 20)
		if err != nil {
			t.Fatal(err)
		}
		clear(byID)
		for _, l := range ls {
			byID[l.MessageID] = l
		}
		return len(byID) >= len(letters)
	}, "the forged messages in the dead-letter queue")
	for id, want := range letters {
		l, ok := byID[id]
		if !ok || l.Queue != "sio.service.037" || !strings.HasSuffix(l.Reason, want) || !strings.Contains(l.Reason, "source is not asked") ||
			!strings.Contains(l.Reason, "adapter kgd-adapter-1") || strings.Contains(l.Reason, "050540004455") {
			t.Errorf("dead letter %s: %+v (found %v), want a reason with %q", id, l, ok, want)
		}
		t.Logf("dlq list: %s from %s: %s", l.MessageID, l.Queue, l.Reason)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the source was asked %d times, want once: a forged message reached it", n)
	}
	if depth := queueDepth(t, brokerB, "sio.reply.broker-b"); depth != 0 {
		t.Errorf("broker-b's reply queue holds %d answers to forged messages", depth)
	}

	// An answer the adapter's user forges for a service routed to another adapter, made with its
	// own key: the broker refuses it, and takes it for no late answer.
	answer, _ := json.Marshal(schemas.ServiceResponse{RequestID: "nobody", Service: 11, Adapter: "kgd-adapter-1",
		Result: siobroker.ServiceResult{Service: 11, Status: siobroker.StatusOK, Reason: siobroker.ReasonOK}})
	am := message.NewMessage(watermill.NewUUID(), answer)
	am.Metadata.Set(schemas.MetaCorrelation, "nobody/11")
	keys.SignAnswer(key, am.Metadata, am.Payload)
	if err := adapterTr.Publisher().Publish(trA.ReplyTopic(), am); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-brokerRefused:
		if r != msgauth.ReasonWrongAdapter {
			t.Errorf("the forged answer was refused as %s, want %s", r, msgauth.ReasonWrongAdapter)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the forged answer was not refused")
	}
	select {
	case a := <-late:
		t.Fatalf("the forged answer was taken for a late one: %+v", a)
	case <-time.After(300 * time.Millisecond):
	}

	registryUnderItsUser(t, registryCase{as: as("sio-adapter-erdr", passwords["ERDR_ADAPTER_PASSWORD"]), master: master,
		dispatcher: d, brokerB: trB, brokerA: brokerA, brokerRefused: brokerRefused, kgdKeys: keys, kgdTr: adapterTr, replyA: trA.ReplyTopic()})
}

// registryCase is what the registry part of TestRabbitMQPermissions works with.
type registryCase struct {
	as            Config // the erdr adapter's user
	master        msgauth.Master
	dispatcher    *routing.Dispatcher // broker-a's, which routes erdr to erdr-adapter
	brokerB       *Transport          // a user that may publish case checks, without the key
	brokerA       Config
	brokerRefused chan msgauth.Reason
	kgdKeys       *msgauth.Adapter // another adapter, with its own key and user
	kgdTr         *Transport
	replyA        string
}

// registryUnderItsUser serves the case registry erdr under the README's sio-adapter-erdr user:
// broker-a's check is answered; case checks forged by broker-b's user are dead-lettered with the
// registry never asked; a verdict forged by the kgd adapter's user is refused by broker-a.
func registryUnderItsUser(t *testing.T, c registryCase) {
	c.as.Registries = []string{"erdr"}
	tr := newTransport(t, c.as)
	key, err := c.master.Derive("erdr-adapter")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := msgauth.NewAdapter(msgauth.AdapterConfig{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	refused := make(chan msgauth.Reason, 8)
	rr, err := routing.NewRegistryRuntime(routing.RegistryConfig{Name: "erdr", Publisher: tr.Publisher(), Clock: siobroker.SystemClock{},
		Logger: quietLogger, Auth: keys, DeadLetters: tr.DeadLetterTopic(), ObserveRefusal: func(r msgauth.Reason) { refused <- r },
		Registry: adapters.CaseRegistryFunc(func(_ context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
			asked.Add(1)
			return schemas.CaseCheckResponse{RequestID: req.RequestID, Found: true, InProceedings: true}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	runRouter(t, func(r *message.Router) { rr.AddHandlers(r, tr.Subscriber()) })

	resp, err := c.dispatcher.CheckCase(ctxFor(t, 30*time.Second), "erdr", schemas.CaseCheckRequest{RequestID: "case-real", MessageID: "m-case",
		Basis: siobroker.BasisCriminal, SignerIIN: "750312300458", Case: siobroker.CaseRef{Number: "251234567890123"}}, 15*time.Second)
	if err != nil || !resp.Found || !resp.InProceedings || resp.Registry != "erdr" {
		t.Fatalf("broker-a's case check: %+v, %v", resp, err)
	}

	check := schemas.CaseCheckRequest{RequestID: "case-forged", Basis: siobroker.BasisCriminal, SignerIIN: "750312300458",
		Case: siobroker.CaseRef{Number: "251234567890123"}, ReplyTo: c.brokerB.ReplyTopic(), Deadline: time.Now().Add(time.Minute)}
	payload, err := json.Marshal(check)
	if err != nil {
		t.Fatal(err)
	}
	letters := map[string]string{
		"case-forged/unsigned":       "it carries no authenticator",
		"case-forged/other-registry": "it was made for another case registry",
	}
	for id, sign := range map[string]func(meta message.Metadata){
		"case-forged/unsigned": func(message.Metadata) {},
		"case-forged/other-registry": func(meta message.Metadata) {
			// A check the broker made for another registry of the same adapter, put on erdr's queue.
			if err := msgauthtest.Broker().SignCaseCheck("erdr-adapter", "courts", meta, payload, check.Deadline); err != nil {
				t.Fatal(err)
			}
		},
	} {
		m := message.NewMessage(id, payload)
		m.Metadata.Set(schemas.MetaRequestID, check.RequestID)
		m.Metadata.Set(schemas.MetaReplyTo, check.ReplyTo)
		sign(m.Metadata)
		if err := c.brokerB.Publisher().Publish(schemas.RegistryTopic("erdr"), m); err != nil {
			t.Fatalf("broker-b publishes %s to the registry's queue: %v", id, err)
		}
	}
	for i := range len(letters) {
		select {
		case <-refused:
		case <-time.After(15 * time.Second):
			t.Fatalf("%d of %d forged case checks refused", i, len(letters))
		}
	}
	byID := map[string]DeadLetter{}
	waitFor(t, 15*time.Second, func() bool {
		ls, err := ListDeadLetters(ctxFor(t, 10*time.Second), c.brokerA, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if _, ok := letters[l.MessageID]; ok {
				byID[l.MessageID] = l
			}
		}
		return len(byID) == len(letters)
	}, "the forged case checks in the dead-letter queue")
	for id, want := range letters {
		l := byID[id]
		if l.Queue != "sio.registry.erdr" || !strings.HasSuffix(l.Reason, want) || !strings.Contains(l.Reason, "adapter erdr-adapter") ||
			strings.Contains(l.Reason, "251234567890123") || strings.Contains(l.Reason, "750312300458") {
			t.Errorf("dead letter %s: %+v, want a reason with %q", id, l, want)
		}
		t.Logf("dlq list: %s from %s: %s", l.MessageID, l.Queue, l.Reason)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the registry was asked %d times, want once: a forged case check reached it", n)
	}

	// A verdict "found, in proceedings" the kgd adapter's user forges with its own key.
	verdict, _ := json.Marshal(schemas.CaseCheckResponse{RequestID: "case-nobody", Found: true, InProceedings: true, Registry: "erdr"})
	vm := message.NewMessage(watermill.NewUUID(), verdict)
	vm.Metadata.Set(schemas.MetaCorrelation, "case-nobody/case")
	c.kgdKeys.SignCaseAnswer(msgauth.Key{}, "erdr", vm.Metadata, vm.Payload)
	if err := c.kgdTr.Publisher().Publish(c.replyA, vm); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-c.brokerRefused:
		if r != msgauth.ReasonWrongAdapter {
			t.Errorf("the forged verdict was refused as %s, want %s", r, msgauth.ReasonWrongAdapter)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the forged verdict was not refused")
	}
}

// readmePermissions returns the rabbitmqctl command lines of the README's "Users and permissions"
// block, each as its arguments (without "rabbitmqctl"), with the shell's quoting and line
// continuations undone and each $VARIABLE given a fresh password, recorded in passwords.
func readmePermissions(t *testing.T, passwords map[string]string) [][]string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Users and permissions\n")
	if !ok {
		t.Fatal("README.md has no section \"Users and permissions\"")
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatal("the README's section \"Users and permissions\" has no sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	block = strings.ReplaceAll(block, "\\\n", " ")
	var out [][]string
	for _, line := range strings.Split(block, "\n") {
		words := shellWords(t, line, func(name string) string {
			if _, ok := passwords[name]; !ok {
				b := make([]byte, 12)
				_, _ = rand.Read(b)
				passwords[name] = hex.EncodeToString(b)
			}
			return passwords[name]
		})
		if len(words) == 0 {
			continue
		}
		if words[0] != "rabbitmqctl" {
			t.Fatalf("README line %q is not a rabbitmqctl command", line)
		}
		out = append(out, words[1:])
	}
	if len(out) < 7 {
		t.Fatalf("the README's block has %d rabbitmqctl lines", len(out))
	}
	return out
}

// shellWords splits line as sh would: single quotes verbatim, double quotes and bare words with
// $NAME expanded by expand.
func shellWords(t *testing.T, line string, expand func(string) string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated ' in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				t.Fatalf("unterminated \" in %q", line)
			}
			cur.WriteString(expandVars(line[i+1:i+1+j], expand))
			i += j + 1
			inWord = true
		case c == '$':
			j := i + 1
			for j < len(line) && (line[j] == '_' || line[j] >= 'A' && line[j] <= 'Z' || line[j] >= '0' && line[j] <= '9') {
				j++
			}
			cur.WriteString(expand(line[i+1 : j]))
			i = j - 1
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func expandVars(s string, expand func(string) string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		b.WriteString(expand(s[i+1 : j]))
		i = j - 1
	}
	return b.String()
}

// onChannel runs do on a channel of a new connection as cfg's user, and returns its error, or the
// error that closed the channel meanwhile (a refused publish closes it).
func onChannel(t *testing.T, cfg Config, do func(ch *amqp091.Channel) error) error {
	t.Helper()
	conn, err := amqp091.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if err := do(ch); err != nil {
		return err
	}
	select {
	case e := <-closed:
		if e != nil {
			return e
		}
	case <-time.After(2 * time.Second):
	}
	return nil
}

// publishConfirmed publishes on ch in confirm mode and waits for the confirm; the channel's error
// when the server closes it instead.
func publishConfirmed(ch *amqp091.Channel, exchange, key string, p amqp091.Publishing) error {
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if err := ch.Confirm(false); err != nil {
		return err
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), exchange, key, true, false, p)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ok, err := dc.WaitContext(ctx); ok && err == nil {
		return nil
	}
	select {
	case e := <-closed:
		if e != nil {
			return e
		}
	case <-time.After(2 * time.Second):
	}
	return errors.New("not confirmed")
}

// queueDepth is the number of messages ready in queue, read as cfg's user (who must be allowed to
// see it: a passive declare needs no permission).
func queueDepth(t *testing.T, cfg Config, queue string) int {
	t.Helper()
	conn, err := amqp091.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// mustMaster is a fresh master key: another deployment's.
func mustMaster(t *testing.T) msgauth.Master {
	t.Helper()
	m, err := msgauth.NewMaster()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
