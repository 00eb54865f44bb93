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
	loadSQL(t, ctx, dsn, "testdata/adapters/postgres/schema.sql", "testdata/adapters/postgres/seed.sql")

	// Steps 2 and 3: the route, and the adapter's configuration from the shipped example with
	// this test's database, queue prefix and routes file.
	w := newWalkthrough(t, prefix,
		"5: {queue: sio.service.005, adapter: demo, backend: demo}", "5: {queue: sio.service.005, adapter: vehicles, backend: postgres, timeout: 5s}",
		"configs/adapters/vehicles-postgres.yaml", "vehicles",
		`"postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=sio_vehicles"`, `"`+dsn+`"`)

	// Step 4: the broker on RabbitMQ, with the demo adapters for the services routed to demo.
	e := w.startBroker(t, ctx, prefix)

	// A config that disagrees with the route is refused before it consumes anything.
	w.wantRefused(t, ctx, "name: vehicles", "name: vehicles-old", "make the two agree")

	// Step 5: the adapter process.
	defer w.runAdapter(t, ctx)()

	// Step 6: a request about the seed's vehicle owner.
	e.subject = "850101300015"
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
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

// walkthrough is what the README's adapter walkthroughs share: a copy of the routing table with
// the adapter's route in it, the adapter's config made from a shipped example with this test's
// values, a broker on RabbitMQ with the demo adapters in its process, and the adapter process.
type walkthrough struct {
	dir, routesFile, masterFile, adapterText, adapterFile string
}

// newWalkthrough writes configs/routes.yaml with route replaced by routed, and the adapter's config
// from example (a path below the repository) with the queue prefix, the routes file, the key of
// adapter (whose example file is /etc/siobroker/ADAPTER.key) and each pair of replace (old, new)
// put in. A line it cannot find fails the test: the README's steps edit the same lines.
func newWalkthrough(t *testing.T, prefix, route, routed, example, adapter string, replace ...string) *walkthrough {
	t.Helper()
	w := &walkthrough{dir: t.TempDir()}
	routes, err := os.ReadFile("../../configs/routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(routes), route) {
		t.Fatalf("configs/routes.yaml has no %q", route)
	}
	w.routesFile = filepath.Join(w.dir, "routes.yaml")
	writeFile(t, w.routesFile, strings.Replace(string(routes), route, routed, 1))
	text, err := os.ReadFile(filepath.Join("..", "..", example))
	if err != nil {
		t.Fatal(err)
	}
	w.adapterText = string(text)
	// The broker's master key, and the adapter's key from it, as the README's step derives it.
	w.masterFile = filepath.Join(w.dir, "transport.key")
	replace = append(replace, `prefix: ""`, `prefix: "`+prefix+`"`,
		`routes_file: configs/routes.yaml`, `routes_file: `+w.routesFile,
		`message_key_file: /etc/siobroker/`+adapter+`.key`, `message_key_file: `+adapterKey(t, w.masterFile, adapter))
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(w.adapterText, replace[i]) {
			t.Fatalf("the example adapter config %s has no %q", example, replace[i])
		}
		w.adapterText = strings.Replace(w.adapterText, replace[i], replace[i+1], 1)
	}
	w.adapterFile = filepath.Join(w.dir, adapter+".yaml")
	writeFile(t, w.adapterFile, w.adapterText)
	return w
}

// startBroker starts a broker on RabbitMQ with the walkthrough's routes and the demo adapters
// and registries routed to demo in its process, closed when the test ends, and returns the
// environment to send to it.
func (w *walkthrough) startBroker(t *testing.T, ctx context.Context, prefix string) e2eBroker {
	t.Helper()
	src := sharedBroker(t)
	pki := filepath.Join(w.dir, "pki")
	copyDir(t, src.pki, pki)
	cfg := testConfig(w.dir)
	cfg.Routing.RoutesFile = w.routesFile
	cfg.Transport = "amqp"
	cfg.AMQP.URL, cfg.AMQP.Prefix, cfg.AMQP.Instance = testAMQPURL, prefix, prefix+"broker"
	cfg.AMQP.ClassicQueues, cfg.AMQP.InProcessAdapters = true, true
	cfg.AMQP.MessageKeyFile = w.masterFile
	b, err := app.Start(ctx, cfg, siobroker.SystemClock{}, testLogger())
	if err != nil {
		t.Fatalf("start the broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	e := *src
	e.b, e.cfg, e.base, e.url, e.pki = b, cfg, b.BaseURL(), b.BaseURL()+cfg.Endpoint, pki
	return e
}

// wantRefused wants the adapter config with old replaced by new to be refused at start, saying
// want.
func (w *walkthrough) wantRefused(t *testing.T, ctx context.Context, old, new, want string) {
	t.Helper()
	wrong := filepath.Join(w.dir, "wrong.yaml")
	writeFile(t, wrong, strings.Replace(w.adapterText, old, new, 1))
	var out, errb strings.Builder
	if code := Main(ctx, []string{"adapter", "--config", wrong}, &out, &errb); code != 1 || !strings.Contains(errb.String(), want) {
		t.Errorf("a disagreeing adapter: exit %d, %s", code, errb.String())
	}
}

// runAdapter starts the adapter process and returns what stops it and waits for it, returning
// what it printed.
func (w *walkthrough) runAdapter(t *testing.T, ctx context.Context) (stop func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var out strings.Builder
	go func() {
		defer close(done)
		var errb strings.Builder
		if code := Main(ctx, []string{"adapter", "--config", w.adapterFile}, &out, &errb); code != 0 {
			t.Errorf("adapter exited %d: %s", code, errb.String())
		}
	}()
	return func() string {
		cancel()
		<-done
		return out.String()
	}
}

// loadSQL runs files (paths below the repository) in the database of dsn, as psql -f does, and
// returns the connection, closed when the test ends.
func loadSQL(t *testing.T, ctx context.Context, dsn string, files ...string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, name := range files {
		sql, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(sql), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
	}
	return conn
}
