package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/jackc/pgx/v5"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/signing/devpki"
)

const testAMQPURL = "amqp://guest:guest@127.0.0.1:5672/"

// amqpPrefix returns a fresh queue-name prefix on the machine's RabbitMQ and deletes the queues
// and exchanges it names after the test. Under CI=true an unreachable server fails the test.
func amqpPrefix(t testing.TB) string {
	t.Helper()
	conn, err := amqp091.DialConfig(testAMQPURL, amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("RabbitMQ at 127.0.0.1:5672: %v", err)
		}
		t.Skipf("RabbitMQ not reachable (%v); CI=true makes this a failure", err)
	}
	conn.Close()
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "e2e" + hex.EncodeToString(b[:]) + "."
	t.Cleanup(func() {
		conn, err := amqp091.Dial(testAMQPURL)
		if err != nil {
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		defer ch.Close()
		for n := siobroker.FirstService; n <= siobroker.LastService; n++ {
			_, _ = ch.QueueDelete(prefix+fmt.Sprintf("sio.service.%03d", n), false, false, false)
		}
		for _, q := range []string{"sio.registry.erdr", "sio.registry.courts", "sio.registry.aisoip", "sio.dlq"} {
			_, _ = ch.QueueDelete(prefix+q, false, false, false)
		}
		_, _ = ch.QueueDelete(prefix+"sio.reply."+prefix+"broker", false, false, false)
		_ = ch.ExchangeDelete(prefix+"sio.dlx", false, false)
		_ = ch.ExchangeDelete(prefix+"sio.replies", false, false)
	})
	return prefix
}

// TestSendOverRabbitMQ: with transport amqp the same handlers carry a signed request over the real
// RabbitMQ: the topology is declared at start-up, the demo adapters and case registries consume
// the service and registry queues, and the answers come back on the broker's reply queue.
func TestSendOverRabbitMQ(t *testing.T) {
	prefix := amqpPrefix(t)
	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	cfg := testConfig(dir)
	cfg.Transport = "amqp"
	cfg.AMQP.URL = testAMQPURL
	cfg.AMQP.Prefix = prefix
	cfg.AMQP.Instance = prefix + "broker"
	cfg.AMQP.ClassicQueues = true // lighter than 93 quorum queues for a test run
	cfg.AMQP.InProcessAdapters = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := app.Start(ctx, cfg, siobroker.SystemClock{}, testLogger())
	if err != nil {
		t.Fatalf("start a broker on RabbitMQ: %v", err)
	}
	defer b.Close()
	e := *src
	e.b, e.cfg, e.base, e.url, e.pki = b, cfg, b.BaseURL(), b.BaseURL()+cfg.Endpoint, filepath.Join(dir, "pki")

	u := src.user(t, devpki.KeyRSA, devpki.StatusValid)
	for _, placement := range []string{"wsse", "enveloped"} {
		// Article 190 is the case's, but not of Chapter 8: service 37 is denied (App. 2 fn. 2).
		code, out, errs := runSend(t, e.sendArgs(u, "--services", "1,5,11,37", "--article", "190", "--placement", placement)...)
		if code != sendExitOK {
			t.Fatalf("%s: send exited %d\n%s%s", placement, code, out, errs)
		}
		for _, want := range []string{"\nservice 1: ok ", "\nservice 5: ok ", "\nservice 11: ok ", "\nservice 37: denied DENIED_ARTICLE"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", placement, want, out)
			}
		}
	}
}

// TestAdapterProcessesOverRabbitMQ: the broker on RabbitMQ with no adapters of its own; two
// `siobroker adapter` processes (run here as the command's code path) serve the services and the
// case registries, sharing a ledger in PostgreSQL, and a signed request is answered through them;
// the ledger then records each service answered, and by which process.
func TestAdapterProcessesOverRabbitMQ(t *testing.T) {
	ledgerDSN := sharedJournalDSN(t)
	prefix := amqpPrefix(t)
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

	// The routing table gives the services to the adapter demo: both processes hold its key.
	key := adapterKey(t, cfg.MessageKeyPath(), "demo")
	adapterCtx, stopAdapters := context.WithCancel(context.Background())
	var done []chan int
	for i, body := range []string{
		"services:\n  1: {backend: demo}\n  5: {backend: demo}\n",
		"services:\n  11: {backend: demo}\ncase_registries:\n  names: [erdr, courts, aisoip]\n  demo_pki: " + pki + "\n",
	} {
		file := filepath.Join(dir, fmt.Sprintf("adapter-%d.yaml", i))
		yaml := fmt.Sprintf("name: demo-%d\ntransport: {amqp_url: %q, prefix: %q, prefetch: 2, concurrency: 2, message_key_file: %q}\nledger: {dsn: %q}\n",
			i, testAMQPURL, prefix, key, ledgerDSN) + body
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		ch := make(chan int, 1)
		done = append(done, ch)
		go func() {
			var out, errb strings.Builder
			code := Main(adapterCtx, []string{"adapter", "--config", file}, &out, &errb)
			if code != 0 {
				t.Errorf("adapter %d exited %d: %s", i, code, errb.String())
			}
			ch <- code
		}()
	}
	defer func() {
		stopAdapters()
		for _, ch := range done {
			select {
			case <-ch:
			case <-time.After(40 * time.Second):
				t.Error("an adapter did not stop")
			}
		}
	}()

	e := *src
	e.b, e.cfg, e.base, e.url, e.pki = b, cfg, b.BaseURL(), b.BaseURL()+cfg.Endpoint, pki
	u := src.user(t, devpki.KeyRSA, devpki.StatusValid)
	var out string
	deadline := time.Now().Add(20 * time.Second)
	for {
		// The adapters may still be starting: a case registry with no consumer yet leaves the
		// request SIO-UNAVAILABLE, which invites exactly this retry.
		code, o, errs := runSend(t, e.sendArgs(u, "--services", "1,5,11")...)
		out = o
		if code == sendExitOK || time.Now().After(deadline) {
			if code != sendExitOK {
				t.Fatalf("send exited %d\n%s%s", code, o, errs)
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{"\nservice 1: ok ", "\nservice 5: ok ", "\nservice 11: ok "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// An adapter records a request answered in the ledger after its answer is published (a
	// process that died between the two must leave the claim open, so that a copy is asked
	// again): the broker can have the answers a moment before the rows are written.
	var owners map[string]int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		owners = ledgerOwners(t, ledgerDSN)
		// The warm-up sends may have been answered too before the case registry came up; at
		// least the three services of the answered request are in, each by the process serving it.
		if owners["demo-0"] >= 2 && owners["demo-1"] >= 1 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Errorf("ledger rows by process %v, want services 1 and 5 by demo-0 and 11 by demo-1", owners)
}

// ledgerOwners counts the rows of the adapters' ledger by the process that answered them.
func ledgerOwners(t *testing.T, dsn string) map[string]int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	owners := map[string]int{}
	rows, err := conn.Query(t.Context(), `SELECT key, owner FROM sio_adapter_ledger`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, owner string
		if err := rows.Scan(&key, &owner); err != nil {
			t.Fatal(err)
		}
		owners[strings.SplitN(owner, "@", 2)[0]]++
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return owners
}

// TestRequestsWhileRabbitMQUnreachable: when the broker has no RabbitMQ connection, new requests
// get a clear SIO-UNAVAILABLE fault and /readyz says not ready (naming the transport), instead of
// being accepted and lost; /healthz, the liveness check, still answers.
func TestRequestsWhileRabbitMQUnreachable(t *testing.T) {
	prefix := amqpPrefix(t)
	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	cfg := testConfig(dir)
	cfg.Transport = "amqp"
	cfg.AMQP.URL, cfg.AMQP.Prefix, cfg.AMQP.Instance = testAMQPURL, prefix, prefix+"broker"
	cfg.AMQP.ClassicQueues, cfg.AMQP.InProcessAdapters = true, true
	b, err := app.Start(context.Background(), cfg, siobroker.SystemClock{}, testLogger())
	if err != nil {
		t.Fatalf("start a broker on RabbitMQ: %v", err)
	}
	defer b.Close()
	e := *src
	e.b, e.cfg, e.base, e.url, e.pki = b, cfg, b.BaseURL(), b.BaseURL()+cfg.Endpoint, filepath.Join(dir, "pki")
	u := src.user(t, devpki.KeyRSA, devpki.StatusValid)
	if code, out, errs := runSend(t, e.sendArgs(u)...); code != sendExitOK {
		t.Fatalf("send before the outage exited %d\n%s%s", code, out, errs)
	}

	// The connection goes away (as when RabbitMQ stops).
	if err := b.CloseTransport(); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runSend(t, e.sendArgs(u)...)
	if code != sendExitFault || !strings.Contains(out, "fault SIO-UNAVAILABLE") || !strings.Contains(out, "RabbitMQ") {
		t.Fatalf("send during the outage exited %d: %s; want SIO-UNAVAILABLE naming RabbitMQ", code, out)
	}
	status, rep := readyz(t, &e)
	if status != 503 || checkOf(rep, "transport").Status != health.CheckFail {
		t.Fatalf("/readyz during the outage = %d %+v, want 503 with the transport failing", status, rep)
	}
	if status, _, _ := do(t, "GET", e.base+"/healthz", nil); status != 200 {
		t.Fatalf("/healthz during the outage = %d, want 200", status)
	}
}
