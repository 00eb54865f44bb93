package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/internal/rabbitnode"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// rabbitE2E is a broker and an adapter process (the `adapter` command's code path) on a private
// RabbitMQ node.
type rabbitE2E struct {
	node *rabbitnode.Node
	e    e2eBroker
	u    devpki.User
	// killableAt: RabbitMQ 3.10 loses a quorum queue killed within about a second of its
	// creation (the queue exists, and times out), which a deployment never sees: its queues are
	// declared long before a crash. Kill waits until the broker's queues are that old.
	killableAt time.Time
}

// quorumSettle is how long new quorum queues are left before their node is killed.
const quorumSettle = 3 * time.Second

// kill kills the node once the queues are settled.
func (r *rabbitE2E) kill() {
	time.Sleep(time.Until(r.killableAt))
	r.node.Kill()
}

func startRabbitE2E(t *testing.T, configure func(*rabbitE2E)) *rabbitE2E {
	t.Helper()
	node := rabbitnode.Start(t)
	src := sharedBroker(t)
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	copyDir(t, src.pki, pki)
	cfg := testConfig(dir)
	cfg.Transport = "amqp"
	cfg.AMQP.URL, cfg.AMQP.Prefix, cfg.AMQP.Instance = node.URL(), "e2e.", "broker-1"
	cfg.Routing.RoutesFile = routesWithDefaultTimeout(t, dir, 4*time.Second)
	cfg.Routing.AsyncTimeout = 3 * time.Minute
	// Back within seconds of RabbitMQ, not up to the default 30 s, so that the load's requests
	// are delivered well inside the test's limits even on a busy machine.
	cfg.AMQP.ReconnectMax = 3 * time.Second
	r := &rabbitE2E{node: node}
	r.e = *src
	r.e.cfg = cfg
	if configure != nil {
		configure(r)
	}
	cfg = r.e.cfg
	// startBroker's context bounds the broker's life, not only its start; Close stops it.
	b, err := app.Start(context.Background(), cfg, siobroker.SystemClock{}, testLogger())
	if err != nil {
		t.Fatalf("start a broker on the private RabbitMQ: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	r.killableAt = time.Now().Add(quorumSettle) // the queues were declared by now
	r.e.b, r.e.base, r.e.url, r.e.pki = b, b.BaseURL(), b.BaseURL()+cfg.Endpoint, pki
	r.u, _ = r.e.caseUser(t, siobroker.BasisCriminal)

	file := filepath.Join(dir, "adapter.yaml")
	yaml := fmt.Sprintf("name: demo-restart\ntransport: {amqp_url: %q, prefix: %q, prefetch: 2, concurrency: 2, reconnect_max: 3s, message_key_file: %q}\n"+
		"services:\n  1: {backend: demo}\n  5: {backend: demo}\n"+
		"case_registries:\n  names: [erdr, courts, aisoip]\n  demo_pki: %s\n", node.URL(), cfg.AMQP.Prefix, adapterKey(t, cfg.MessageKeyPath(), "demo"), pki)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	adapterCtx, stopAdapter := context.WithCancel(context.Background())
	adapterDone := make(chan struct{})
	go func() {
		defer close(adapterDone)
		var out strings.Builder
		errb := &syncBuffer{}
		if testing.Verbose() {
			errb.echo = os.Stderr
		}
		if code := Main(adapterCtx, []string{"adapter", "--config", file}, &out, errb); code != 0 {
			t.Errorf("adapter exited %d: %s", code, errb.String())
		}
	}()
	t.Cleanup(func() {
		stopAdapter()
		select {
		case <-adapterDone:
		case <-time.After(60 * time.Second):
			t.Error("the adapter did not stop")
		}
	})
	r.waitServing(t, 60*time.Second, "the adapter to serve")
	return r
}

// waitServing sends until a request is answered.
func (r *rabbitE2E) waitServing(t *testing.T, within time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, out, errs := runSend(t, r.e.sendArgs(r.u, "--services", "1,5")...)
		if code == sendExitOK && strings.Count(out, ": ok ") == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: send exited %d\n%s%s", what, code, out, errs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

var (
	replyIDLine     = regexp.MustCompile(`(?m)^reply (\S+) to `)
	serviceLine     = regexp.MustCompile(`(?m)^service (\d+): (\S+) (\S+)`)
	notAcceptedRefu = regexp.MustCompile(`fault SIO-UNAVAILABLE: .*not accepted`)
	// signerLimited: the load is one signer's, and while its services are slow to answer (RabbitMQ
	// or the adapter reconnecting) its asynchronous requests pile up in front of the worker up to
	// http.limits.per_signer_concurrent. That is the limit at work, not a lost request.
	signerLimited = regexp.MustCompile(`fault SIO-RATE-LIMITED: .*in flight`)
)

// outcome of one request of the load.
type outcome struct {
	kind  string // "sync", "async"
	state string // "answered", "pending" (fetch id later), "refused" (SIO-UNAVAILABLE or the signer's limit, not accepted)
	id    string // the id to fetch, when pending
}

// sendOne sends a synchronous or asynchronous request for services 1 and 5 and classifies the
// answer; anything but an answer, a pending result or a clear refusal fails the test.
func (r *rabbitE2E) sendOne(t *testing.T, async bool) outcome {
	args := r.e.sendArgs(r.u, "--services", "1,5")
	o := outcome{kind: "sync"}
	if async {
		args = append(args, "--async")
		o.kind = "async"
	}
	code, out, errs := runSend(t, args...)
	switch {
	case code == sendExitFault && (notAcceptedRefu.MatchString(out) || signerLimited.MatchString(out)):
		o.state = "refused"
	case code != sendExitOK:
		t.Errorf("%s send exited %d:\n%s%s", o.kind, code, out, errs)
		o.state = "failed"
	case async:
		o.state, o.id = "pending", strings.TrimSpace(out)
	default:
		o.state = "answered"
		for _, m := range serviceLine.FindAllStringSubmatch(out, -1) {
			switch {
			case m[2] == "ok":
			case m[2] == "timeout" && strings.Contains(out, "fetch the complete result on the asynchronous channel"):
				o.state = "pending"
			default:
				t.Errorf("sync request: service %s ended %s %s, an accepted request lost its answer:\n%s", m[1], m[2], m[3], out)
				o.state = "failed"
			}
		}
		if o.state == "pending" {
			m := replyIDLine.FindStringSubmatch(out)
			if m == nil {
				t.Errorf("no reply id in:\n%s", out)
			}
			o.id = m[1]
		}
	}
	return o
}

// fetchDelivered fetches the signed result of a pending request until it is there (a request
// that never gets one is an error: it was lost), checks that it holds both services, and returns
// the services that did not end ok.
func (r *rabbitE2E) fetchDelivered(t *testing.T, o outcome, deadline time.Time) (notOK []string) {
	t.Helper()
	for {
		code, out, errs := runCmd(t, r.e.asyncArgs("fetch", r.u.IIN, o.id)...)
		if code == sendExitOK {
			for _, m := range serviceLine.FindAllStringSubmatch(out, -1) {
				if m[2] != "ok" {
					notOK = append(notOK, fmt.Sprintf("service %s %s %s", m[1], m[2], m[3]))
				}
			}
			if n := len(serviceLine.FindAllString(out, -1)); n != 2 {
				t.Errorf("%s request %s: %d services in the result:\n%s", o.kind, o.id, n, out)
			}
			return notOK
		}
		if time.Now().After(deadline) {
			t.Errorf("%s request %s accepted before or during the outage was never delivered: exit %d\n%s%s", o.kind, o.id, code, out, errs)
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestRabbitMQRestartE2E: a broker and an adapter process run a load of synchronous and
// asynchronous requests on a private RabbitMQ node, which is killed and started again. The
// broker and the adapter reconnect by themselves. While RabbitMQ is down new requests get a
// clear SIO-UNAVAILABLE fault saying they were not accepted, and /healthz says not ready. Every
// request accepted is answered, or is pending and delivered after the restart: a synchronous
// reply that went out without a service names the asynchronous result that then holds all of
// them, and every asynchronous request ends DELIVERED with every service answered.
func TestRabbitMQRestartE2E(t *testing.T) {
	r := startRabbitE2E(t, nil)

	var mu sync.Mutex
	var outcomes []outcome
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; i < 500; i++ { // bounded; stop ends it long before
				select {
				case <-stop:
					return
				default:
				}
				o := r.sendOne(t, w == 2)
				if o.state == "refused" {
					time.Sleep(200 * time.Millisecond) // as a client told to retry later would
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		})
	}
	accepted := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if o.state == "answered" || o.state == "pending" {
				n++
			}
		}
		return n
	}
	waitAccepted := func(n int, within time.Duration, what string) {
		deadline := time.Now().Add(within)
		for accepted() < n {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitAccepted(6, 60*time.Second, "the load to run")

	r.kill()
	status, _, body := do(t, "GET", r.e.ops(t)+"/readyz", nil)
	if status != 503 || !strings.Contains(string(body), `"transport"`) {
		t.Errorf("/readyz while RabbitMQ is down = %d %s, want 503 naming the transport check", status, body)
	}
	if status, _, _ := do(t, "GET", r.e.base+"/healthz", nil); status != 200 {
		t.Errorf("/healthz (liveness) while RabbitMQ is down = %d, want 200: the process is alive", status)
	}
	for _, async := range []bool{false, true} {
		args := r.e.sendArgs(r.u, "--services", "1,5")
		if async {
			args = append(args, "--async")
		}
		code, out, _ := runSend(t, args...)
		if code != sendExitFault || !notAcceptedRefu.MatchString(out) || !strings.Contains(out, "RabbitMQ") {
			t.Errorf("a new request (async %v) while RabbitMQ is down: exit %d: %s; want SIO-UNAVAILABLE, not accepted, naming RabbitMQ", async, code, out)
		}
	}
	// Status and fetch read the store: an asynchronous request accepted before the outage can
	// be asked about during it.
	mu.Lock()
	var acceptedAsync string
	for _, o := range outcomes {
		if o.kind == "async" && o.state == "pending" {
			acceptedAsync = o.id
		}
	}
	mu.Unlock()
	if acceptedAsync != "" {
		code, out, errs := runCmd(t, r.e.asyncArgs("status", r.u.IIN, acceptedAsync)...)
		if code != sendExitOK {
			t.Errorf("status of %s while RabbitMQ is down: exit %d, want it answered from the store:\n%s%s", acceptedAsync, code, out, errs)
		}
	}
	time.Sleep(2 * time.Second) // the load keeps knocking while RabbitMQ is down
	r.node.Start()
	// The broker and the adapter reconnect with back-off (up to 30 s between attempts).
	deadline := time.Now().Add(90 * time.Second)
	for {
		status, _, _ = do(t, "GET", r.e.ops(t)+"/readyz", nil)
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after the restart = %d, want 200", status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitAccepted(accepted()+6, 90*time.Second, "the load to be accepted again after the restart")
	close(stop)
	wg.Wait()

	tally := map[string]int{}
	// Past routing.async_timeout: a request still waiting for a service by then is answered with
	// that service's timeout, which fetchDelivered reports, rather than left pending.
	deadline = time.Now().Add(r.e.cfg.Routing.AsyncTimeout + time.Minute)
	for _, o := range outcomes {
		tally[o.kind+" "+o.state]++
		if o.state == "pending" {
			if notOK := r.fetchDelivered(t, o, deadline); len(notOK) > 0 {
				t.Errorf("%s request %s accepted around the restart ended without its services' answers: %v", o.kind, o.id, notOK)
			}
		}
	}
	t.Logf("outcomes: %v", tally)
	if tally["sync answered"] == 0 || tally["async pending"] == 0 {
		t.Errorf("the load did not exercise both channels: %v", tally)
	}
}

// syncBuffer collects a process's log for the test, and echoes it when the test is verbose.
type syncBuffer struct {
	mu   sync.Mutex
	b    strings.Builder
	echo io.Writer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.echo != nil {
		_, _ = s.echo.Write(p)
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDeadLetterAfterAttemptsE2E: an adapter process whose HTTP source answers 503 asks it
// retry.attempts times, then answers the broker ADAPTER_ERROR at once and puts the request in
// the dead-letter queue; `siobroker dlq list` shows it with the queue and the reason; once the
// source is back, `siobroker dlq replay` sends it back and the adapter asks the source again.
func TestDeadLetterAfterAttemptsE2E(t *testing.T) {
	prefix := amqpPrefix(t)
	var healthy atomic.Bool
	var calls atomic.Int32
	source := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !healthy.Load() {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":{"vehicles":[{"plate":"123ABC02"}]}}`)
	}))
	defer source.Close()

	src := sharedBroker(t)
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	copyDir(t, src.pki, pki)
	cfg := testConfig(dir)
	cfg.Transport = "amqp"
	cfg.AMQP.URL, cfg.AMQP.Prefix, cfg.AMQP.Instance, cfg.AMQP.ClassicQueues = testAMQPURL, prefix, prefix+"broker", true
	b, err := app.Start(context.Background(), cfg, siobroker.SystemClock{}, testLogger())
	if err != nil {
		t.Fatalf("start a broker on RabbitMQ: %v", err)
	}
	defer b.Close()
	brokerYAML := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(brokerYAML, []byte(fmt.Sprintf("data_dir: %q\ntransport: amqp\namqp:\n  url: %q\n  prefix: %q\n", cfg.DataDir, testAMQPURL, prefix)), 0o600); err != nil {
		t.Fatal(err)
	}

	adapterYAML := filepath.Join(dir, "adapter.yaml")
	yaml := fmt.Sprintf("name: flaky\ntransport: {amqp_url: %q, prefix: %q, message_key_file: %q}\nretry: {attempts: 3, backoff: 10ms}\n"+
		"services:\n  5: {backend: http, url: %q, timeout: 2s, record_type: vehicle, records_path: data.vehicles, fields: {plate_number: plate}}\n"+
		"case_registries:\n  names: [erdr, courts, aisoip]\n  demo_pki: %s\n", testAMQPURL, prefix, adapterKey(t, cfg.MessageKeyPath(), "demo"), source.URL+"/vehicles", pki)
	if err := os.WriteFile(adapterYAML, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	adapterCtx, stopAdapter := context.WithCancel(context.Background())
	adapterDone := make(chan struct{})
	go func() {
		defer close(adapterDone)
		var out, errb strings.Builder
		if code := Main(adapterCtx, []string{"adapter", "--config", adapterYAML}, &out, &errb); code != 0 {
			t.Errorf("adapter exited %d: %s", code, errb.String())
		}
	}()
	defer func() {
		stopAdapter()
		select {
		case <-adapterDone:
		case <-time.After(40 * time.Second):
			t.Error("the adapter did not stop")
		}
	}()

	e := *src
	e.b, e.cfg, e.base, e.url, e.pki = b, cfg, b.BaseURL(), b.BaseURL()+cfg.Endpoint, pki
	u, _ := e.caseUser(t, siobroker.BasisCriminal)
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The adapter may still be starting: its case registries answer once it consumes.
		code, o, errs := runSend(t, e.sendArgs(u, "--services", "5")...)
		out = o
		if code == sendExitOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("send exited %d\n%s%s", code, o, errs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(out, "\nservice 5: error ADAPTER_ERROR") || calls.Load() != 3 {
		t.Fatalf("after %d calls of the source, the reply says:\n%s\nwant ADAPTER_ERROR after 3", calls.Load(), out)
	}

	code, list, errs := runCmd(t, "dlq", "list", "--config", brokerYAML)
	if code != 0 || !strings.Contains(list, "1 dead letter(s)") || !strings.Contains(list, "from "+prefix+"sio.service.005") ||
		!strings.Contains(list, "reason the source failed transiently 3 times (adapter flaky, service 5); last error: HTTP status 503") || !strings.Contains(list, "given up after 3 attempts") {
		t.Fatalf("dlq list: exit %d\n%s%s", code, list, errs)
	}
	t.Logf("dlq list:\n%s", list)

	healthy.Store(true)
	code, replay, errs := runCmd(t, "dlq", "replay", "--config", brokerYAML, "--by", "operator Askarov")
	if code != 0 || !strings.Contains(replay, "1 dead letter(s) sent back") {
		t.Fatalf("dlq replay: exit %d\n%s%s", code, replay, errs)
	}
	// The replay is an operator's action, in the broker's journal as the dashboard's replay is.
	ops, err := b.Store().Journal().Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalOperator}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].Code != "ok" || !strings.Contains(string(ops[0].Data), `"action":"replay","channel":"cli","by":"operator Askarov","max":100,"replayed":1`) {
		t.Fatalf("operator records after dlq replay: %+v", ops)
	}
	deadline = time.Now().Add(20 * time.Second)
	for calls.Load() != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the replayed request did not reach the source again: %d calls", calls.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, list, _ = runCmd(t, "dlq", "list", "--config", brokerYAML); code != 0 || !strings.Contains(list, "0 dead letter(s)") {
		t.Fatalf("dlq list after the replay: exit %d\n%s", code, list)
	}
	// The replayed request's answer reaches the broker long after the reply went out: nobody
	// receives it, and it is journaled as a late record, with the signer of the request's own
	// journal record.
	deadline = time.Now().Add(20 * time.Second)
	for {
		recs, err := b.Store().Journal().Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalLate}})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 && recs[0].Service == 5 && recs[0].Code == "ok/OK" && strings.Contains(string(recs[0].Data), "123ABC02") &&
			recs[0].SignerIIN == u.IIN && recs[0].RequestID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("late records in the journal: %+v", recs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
