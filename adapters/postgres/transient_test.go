package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/adapters/postgres"
	"github.com/sio-pso/siobroker/internal/pgtest"
)

// slowSpec is a query that runs long enough for the server to be taken away under it.
var slowSpec = postgres.Spec{Service: 1, RecordType: "slow", Params: []string{"subject.id"},
	Query: `SELECT pg_sleep(30) AS slept, $1::text AS id`, Fields: map[string]string{"id": "id"}}

// poolAt is a pool on the test server's database, reached at addr (host:port), whose sessions
// carry application name app.
func poolAt(t *testing.T, addr, app string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.BaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(p)
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func appName(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "sio-transient-" + hex.EncodeToString(b[:])
}

// serverAddr is the test server's host:port.
func serverAddr(t *testing.T) string {
	cfg, err := pgxpool.ParseConfig(pgtest.BaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
}

// TestIntegrationConnectionFaultsAreTransient: a database that cannot be reached, or that goes
// away while the query runs (its session terminated, or the network between cut), is a transient
// failure, which the runtime asks again and then dead-letters; a fault of the query itself (its
// syntax, a missing table) and a pool this process closed are final.
func TestIntegrationConnectionFaultsAreTransient(t *testing.T) {
	admin := testDB(t) // skips or fails without a server
	req := adaptertest.Request(1, person1)

	t.Run("refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		_ = l.Close() // nothing listens there now: the connection is refused
		b := newBackend(t, poolAt(t, closed, appName(t)), specsByNo[1])
		_, err = b.Query(context.Background(), req)
		if err == nil || !adapters.IsTransient(err) {
			t.Fatalf("refused connection: %v, want a transient error", err)
		}
	})

	t.Run("session terminated", func(t *testing.T) {
		app := appName(t)
		b := newBackend(t, poolAt(t, serverAddr(t), app), slowSpec)
		errc := make(chan error, 1)
		go func() { _, err := b.Query(context.Background(), req); errc <- err }()
		waitForSession(t, admin, app)
		if _, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err == nil || !adapters.IsTransient(err) {
			t.Fatalf("terminated session (57P01): %v, want a transient error", err)
		}
	})

	t.Run("network cut", func(t *testing.T) {
		app := appName(t)
		proxy := newProxy(t, serverAddr(t))
		b := newBackend(t, poolAt(t, proxy.addr(), app), slowSpec)
		errc := make(chan error, 1)
		go func() { _, err := b.Query(context.Background(), req); errc <- err }()
		waitForSession(t, admin, app)
		proxy.cut()
		select {
		case err := <-errc:
			if err == nil || !adapters.IsTransient(err) {
				t.Fatalf("connection cut: %v, want a transient error", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the query did not end when its connection was cut")
		}
		// The server's side of the session is left to end its sleep; end it now.
		_, _ = admin.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app)
	})

	t.Run("query faults are final", func(t *testing.T) {
		for name, q := range map[string]string{
			"syntax":        `SELEC $1::text AS id`,
			"missing table": `SELECT id FROM no_such_table WHERE id = $1`,
		} {
			spec := postgres.Spec{Service: 1, RecordType: "x", Params: []string{"subject.id"}, Query: q, Fields: map[string]string{"id": "id"}}
			_, err := newBackend(t, admin, spec).Query(context.Background(), req)
			if err == nil || adapters.IsTransient(err) {
				t.Errorf("%s: %v, want a final error", name, err)
			}
		}
		pool := poolAt(t, serverAddr(t), appName(t))
		b := newBackend(t, pool, specsByNo[1])
		pool.Close()
		if _, err := b.Query(context.Background(), req); err == nil || adapters.IsTransient(err) {
			t.Errorf("closed pool: %v, want a final error", err)
		}
	})
}

// waitForSession waits until a session of application app is running its query.
func waitForSession(t *testing.T, admin *pgxpool.Pool, app string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := admin.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'`, app).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no active session of %s", app)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proxy forwards TCP connections to a target until cut, which closes them all.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
			go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

// cut stops accepting and closes every connection.
func (p *proxy) cut() {
	_ = p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
