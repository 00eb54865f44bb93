package amqp

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/pgtest"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
)

// TestKilledAdapterMessageIsRedelivered: an adapter process dies in the middle of a request (its
// connection goes away before it acknowledged the message); RabbitMQ redelivers the message to
// another adapter, and the broker's request is answered. With a ledger shared by the adapters
// (postgres.Ledger, in the machine's PostgreSQL), the dead process's claim on the request goes
// with its lock session, and the survivor takes it.
func TestKilledAdapterMessageIsRedelivered(t *testing.T) {
	t.Run("without a ledger", func(t *testing.T) { killedAdapter(t, "") })
	t.Run("with a ledger", func(t *testing.T) { killedAdapter(t, pgtest.Schema(t, "sio_amqp_ledger_")) })
}

// killedAdapter runs TestKilledAdapterMessageIsRedelivered, the adapters sharing the ledger at
// ledgerDSN unless it is "".
func killedAdapter(t *testing.T, ledgerDSN string) {
	const service = 9
	openLedger := func(owner string) siobroker.Ledger {
		l, err := postgres.OpenLedger(t.Context(), ledgerDSN, owner, 0, quietLogger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		return l
	}
	cfg := testConfig(t, []int{service}, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	d := startBroker(t, cfg, "broker-killed")

	// The first adapter takes the message and hangs in its source system until it is killed.
	started := make(chan struct{}, 1)
	kill := make(chan struct{})
	dying, err := New(ctxFor(t, 10*time.Second), cfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	var dyingLedger *postgres.Ledger
	var ledger siobroker.Ledger // a nil *postgres.Ledger would not be a nil Ledger
	if ledgerDSN != "" {
		dyingLedger = openLedger("dying").(*postgres.Ledger)
		ledger = dyingLedger
	}
	hanging := newAdapterRuntime(t, routing.AdapterConfig{Name: "dying", Backends: map[int]adapters.Backend{
		service: adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			started <- struct{}{}
			<-kill
			return siobroker.ServiceResult{}, errors.New("killed")
		}),
	}, Publisher: dying.Publisher(), Ledger: ledger})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 2 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	hanging.AddHandlers(router, dying.Subscriber())
	routerDone := make(chan struct{})
	go func() { defer close(routerDone); _ = router.Run(context.Background()) }()
	<-router.Running()

	var out []routing.Outcome
	var wg sync.WaitGroup
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out = d.Dispatch(ctx, []schemas.ServiceRequest{{RequestID: "killed-1", Service: service,
			Subject: siobroker.Subject{IIN: "750312300458"}}}, func(int) time.Duration { return 20 * time.Second })
	})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the first adapter never got the message")
	}

	// Kill it: the connection goes away with the message unacknowledged, and so does its lock
	// session, holding the claim.
	if dyingLedger != nil {
		dyingLedger.Close()
	}
	_ = dying.Close()
	close(kill)
	_ = router.Close()
	select {
	case <-routerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed adapter's router did not stop")
	}

	// A second adapter comes up and gets the redelivered message.
	c := newCounter()
	if ledgerDSN == "" {
		startAdapter(t, cfg, "survivor", []int{service}, c)
	} else {
		tr := newTransport(t, cfg)
		rt := newAdapterRuntime(t, routing.AdapterConfig{Name: "survivor", Backends: map[int]adapters.Backend{service: c.backend("survivor", service)},
			Publisher: tr.Publisher(), Ledger: openLedger("survivor")})
		runRouter(t, func(r *message.Router) { rt.AddHandlers(r, tr.Subscriber()) })
	}
	wg.Wait()
	if len(out) != 1 || out[0].Result.Status != siobroker.StatusOK || out[0].Adapter != "survivor" {
		t.Fatalf("outcome %+v, want ok from the surviving adapter", out)
	}
}
