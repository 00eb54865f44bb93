package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestNewDatabaseAdapterWalkthrough follows the README's "Configure a new database adapter" step
// by step, on the machine's PostgreSQL and RabbitMQ: load the source tables, route service 5 to
// the example adapter configs/adapters/vehicles-postgres.yaml, start the broker on RabbitMQ with
// the demo adapters for the other services, start the adapter, and send a request whose service 5
// is answered from the database. An adapter whose config disagrees with the route refuses to start.
func TestNewDatabaseAdapterWalkthrough(t *testing.T) {
	prefix := amqpPrefix(t)
	dsn := sharedJournalDSN(t) // a fresh schema of the test database, in search_path
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Step 1: the source tables.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"schema.sql", "seed.sql"} {
		sql, err := os.ReadFile(filepath.Join("..", "..", "testdata", "adapters", "postgres", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(sql), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
	}
	conn.Close(ctx)

	// Step 2: the route.
	dir := t.TempDir()
	routes, err := os.ReadFile("../../configs/routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const route5 = "5: {queue: sio.service.005, adapter: demo, backend: demo}"
	if !strings.Contains(string(routes), route5) {
		t.Fatalf("configs/routes.yaml has no %q", route5)
	}
	routesFile := filepath.Join(dir, "routes.yaml")
	writeFile(t, routesFile, strings.Replace(string(routes), route5, "5: {queue: sio.service.005, adapter: vehicles, backend: postgres, timeout: 5s}", 1))

	// Step 3: the adapter's configuration, from the shipped example with this test's database,
	// queue prefix and routes file.
	example, err := os.ReadFile("../../configs/adapters/vehicles-postgres.yaml")
	if err != nil {
		t.Fatal(err)
	}
	adapterText := string(example)
	// The broker's master key, and the adapter's key from it, as the README's step derives it.
	masterFile := filepath.Join(dir, "transport.key")
	for old, new := range map[string]string{
		`"postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=sio_vehicles"`: `"` + dsn + `"`,
		`prefix: ""`:                                    `prefix: "` + prefix + `"`,
		`routes_file: configs/routes.yaml`:              `routes_file: ` + routesFile,
		`message_key_file: /etc/siobroker/vehicles.key`: `message_key_file: ` + adapterKey(t, masterFile, "vehicles"),
	} {
		if !strings.Contains(adapterText, old) {
			t.Fatalf("the example adapter config has no %q", old)
		}
		adapterText = strings.Replace(adapterText, old, new, 1)
	}
	adapterFile := filepath.Join(dir, "vehicles.yaml")
	writeFile(t, adapterFile, adapterText)

	// Step 4: the broker on RabbitMQ, with the demo adapters for the services routed to demo.
	src := sharedBroker(t)
	pki := filepath.Join(dir, "pki")
	copyDir(t, src.pki, pki)
	cfg := testConfig(dir)
	cfg.Routing.RoutesFile = routesFile
	cfg.Transport = "amqp"
	cfg.AMQP.URL, cfg.AMQP.Prefix, cfg.AMQP.Instance = testAMQPURL, prefix, prefix+"broker"
	cfg.AMQP.ClassicQueues, cfg.AMQP.InProcessAdapters = true, true
	cfg.AMQP.MessageKeyFile = masterFile
	b, err := app.Start(ctx, cfg, siobroker.SystemClock{}, testLogger())
	if err != nil {
		t.Fatalf("start the broker: %v", err)
	}
	defer b.Close()

	// A config that disagrees with the route is refused before it consumes anything.
	wrong := filepath.Join(dir, "wrong.yaml")
	writeFile(t, wrong, strings.Replace(adapterText, "name: vehicles", "name: vehicles-old", 1))
	var out, errb strings.Builder
	if code := Main(ctx, []string{"adapter", "--config", wrong}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "make the two agree") {
		t.Errorf("a disagreeing adapter: exit %d, %s", code, errb.String())
	}

	// Step 5: the adapter process.
	adapterCtx, stopAdapter := context.WithCancel(ctx)
	adapterDone := make(chan struct{})
	go func() {
		defer close(adapterDone)
		var out, errb strings.Builder
		if code := Main(adapterCtx, []string{"adapter", "--config", adapterFile}, &out, &errb); code != 0 {
			t.Errorf("adapter exited %d: %s", code, errb.String())
		}
	}()
	defer func() {
		stopAdapter()
		<-adapterDone
	}()

	// Step 6: a request about the seed's vehicle owner.
	e := *src
	e.b, e.cfg, e.base, e.url, e.pki = b, cfg, b.BaseURL(), b.BaseURL()+cfg.Endpoint, pki
	e.subject = "850101300015"
	u := src.user(t, devpki.KeyRSA, devpki.StatusValid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, o, errs := runSend(t, e.sendArgs(u, "--services", "1,5")...)
		if code == sendExitOK && strings.Contains(o, "\nservice 5: ok") {
			for _, want := range []string{"\nservice 1: ok", "plate_number: 123ABC01", "vin: XTA210990Y2765432", "plate_number: 777KZ02"} {
				if !strings.Contains(o, want) {
					t.Errorf("reply lacks %q:\n%s", want, o)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service 5 was not answered from PostgreSQL: exit %d\n%s%s", code, o, errs)
		}
		time.Sleep(300 * time.Millisecond) // the adapter may still be connecting
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
