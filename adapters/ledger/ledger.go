// Package ledger is the ledger (routing.Ledger) that adapter processes share in PostgreSQL, so
// that a request's service is asked of its source at most once however many processes serve it.
//
// A claim is a session-level advisory lock on the request's key, held by one pooled connection
// while the source is asked: a process that dies, or loses its connection, loses its claims with
// it, and a copy of its request is asked again by another process, at once. An answered request
// is a row of sio_adapter_ledger: its key (the broker's request id and the service), which
// process answered it and when. No answer is stored: answers hold people's data, and the broker
// already has them. Rows older than the retention are deleted.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sio-pso/siobroker/routing"
)

// Retention is how long an answered request is remembered: longer than a dead letter is
// expected to wait for its replay.
const Retention = 7 * 24 * time.Hour

// schemaSQL creates the table, and sio_adapter_ledger_take, which takes a claim in one round
// trip: 0 busy, 1 taken, 2 answered (the lock given back). The lookup must see the rows
// committed before the lock was taken: a VOLATILE function's statements each take a fresh
// snapshot, where the two halves of one SELECT would share the snapshot of its start, taken
// before the lock.
const schemaSQL = `CREATE TABLE IF NOT EXISTS sio_adapter_ledger (
	key         TEXT PRIMARY KEY,
	owner       TEXT NOT NULL,
	answered_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS sio_adapter_ledger_answered ON sio_adapter_ledger (answered_at);
CREATE OR REPLACE FUNCTION sio_adapter_ledger_take(k TEXT, hi INTEGER, lo INTEGER) RETURNS INTEGER
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	IF NOT pg_try_advisory_lock(hi, lo) THEN
		RETURN 0;
	END IF;
	IF EXISTS (SELECT 1 FROM sio_adapter_ledger WHERE key = k) THEN
		PERFORM pg_advisory_unlock(hi, lo);
		RETURN 2;
	END IF;
	RETURN 1;
END $$;`

// Postgres is a routing.Ledger in a PostgreSQL database every adapter process reaches.
type Postgres struct {
	pool   *pgxpool.Pool
	owner  string
	logger *slog.Logger
	stop   context.CancelFunc
	done   chan struct{}
}

var _ routing.Ledger = (*Postgres)(nil)

// Open connects to dsn, creates the table if it is missing, and starts deleting the rows older
// than Retention every hour. owner names this process in the rows it writes. claims is the most
// requests this process asks at once (each claim holds a connection while its source is
// asked): the pool gets that many connections and two more.
func Open(ctx context.Context, dsn, owner string, claims int, logger *slog.Logger) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	cfg.MaxConns = int32(max(claims, 1) + 2)
	// A connection is opened when a claim first needs it, and opening one (a server process is
	// forked) took 100–450 ms under load here: a pool that starts empty makes the first requests
	// of a burst wait. A few are opened at start and kept.
	cfg.MinConns = min(cfg.MaxConns, warmConns)
	// A row lost with a crash of the server costs at most one more question to a source; its
	// commit need not wait for the disk. Others see it once committed, which is what the claims
	// rely on.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ledger: connect: %w", err)
	}
	if err := createTable(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	pctx, stop := context.WithCancel(context.Background())
	p := &Postgres{pool: pool, owner: owner, logger: logger, stop: stop, done: make(chan struct{})}
	go p.pruneEvery(pctx, time.Hour)
	return p, nil
}

// createTable creates the table if it is missing. Adapters starting together would race on
// CREATE TABLE IF NOT EXISTS (it is not atomic in PostgreSQL): a transaction lock serialises them.
func createTable(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("ledger: create table: %w", err)
	}
	defer tx.Rollback(ctx)
	hi, lo := lockKeys("create table")
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, hi, lo); err != nil {
		return fmt.Errorf("ledger: create table: %w", err)
	}
	if _, err := tx.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("ledger: create table: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("ledger: create table: %w", err)
	}
	return nil
}

// warmConns is how many connections the pool opens at start and keeps open.
const warmConns = 16

// closeWait bounds how long Close waits for the claims still held to end.
const closeWait = 10 * time.Second

// Close stops the pruning and closes the connections. The pool waits for the claims still held
// (their requests still being answered) to end; after closeWait Close returns regardless: the
// process is stopping, and its claims end with its connections.
func (p *Postgres) Close() {
	p.stop()
	<-p.done
	closed := make(chan struct{})
	go func() {
		p.pool.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(closeWait):
		p.logger.Warn("ledger closed with claims still held; they end with the process")
	}
}

// Take claims key: see routing.Ledger.
func (p *Postgres) Take(ctx context.Context, key string) (routing.LedgerClaim, routing.LedgerState, error) {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("ledger: %w", err)
	}
	hi, lo := lockKeys(key)
	var state int
	if err := conn.QueryRow(ctx, `SELECT sio_adapter_ledger_take($1, $2, $3)`, key, hi, lo).Scan(&state); err != nil {
		// Whether the lock was taken is unknown: the connection goes, and the lock with it.
		discard(conn)
		return nil, 0, fmt.Errorf("ledger: take %s: %w", key, err)
	}
	switch state {
	case 0:
		conn.Release()
		return nil, routing.LedgerBusy, nil
	case 2:
		conn.Release()
		return nil, routing.LedgerAnswered, nil
	}
	c := &claim{p: p, conn: conn, key: key, hi: hi, lo: lo}
	return c, routing.LedgerTaken, nil
}

// claim is a held advisory lock and the connection that holds it.
type claim struct {
	p      *Postgres
	conn   *pgxpool.Conn // nil once ended
	key    string
	hi, lo int32
}

// Answered records the answer, then unlocks: in two statements, so that the row is committed
// before another process can take the lock and look for it.
func (c *claim) Answered(ctx context.Context, at time.Time) error {
	if c.conn == nil {
		return errors.New("ledger: the claim has ended")
	}
	conn := c.conn
	c.conn = nil
	var unlocked bool
	_, err := conn.Exec(ctx, `INSERT INTO sio_adapter_ledger (key, owner, answered_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING`,
		c.key, c.p.owner, at)
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1, $2)`, c.hi, c.lo).Scan(&unlocked)
	}
	if err == nil && !unlocked {
		err = errors.New("the lock was no longer held (the session was lost)")
	}
	if err != nil {
		discard(conn)
		return fmt.Errorf("ledger: record the answer to %s: %w", c.key, err)
	}
	conn.Release()
	return nil
}

// Release unlocks without an answer; it does nothing after Answered.
func (c *claim) Release() {
	if c.conn == nil {
		return
	}
	conn := c.conn
	c.conn = nil
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var unlocked bool
	if err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1, $2)`, c.hi, c.lo).Scan(&unlocked); err != nil || !unlocked {
		// A connection that may still hold the lock must not go back to the pool.
		discard(conn)
		return
	}
	conn.Release()
}

// discard closes conn instead of returning it to the pool: its session, and any lock it holds,
// ends.
func discard(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Hijack().Close(ctx)
}

// lockKeys maps key to the two 32-bit keys of an advisory lock. Two request keys that collide
// only make one wait for the other.
func lockKeys(key string) (int32, int32) {
	h := fnv.New64a()
	_, _ = h.Write([]byte("sio-adapter-ledger\x00" + key))
	sum := h.Sum64()
	return int32(sum >> 32), int32(sum)
}

// Prune deletes the answered requests older than before, and returns how many.
func (p *Postgres) Prune(ctx context.Context, before time.Time) (int64, error) {
	tag, err := p.pool.Exec(ctx, `DELETE FROM sio_adapter_ledger WHERE answered_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("ledger: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (p *Postgres) pruneEvery(ctx context.Context, every time.Duration) {
	defer close(p.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			if _, err := p.Prune(pctx, time.Now().Add(-Retention)); err != nil {
				p.logger.Warn("ledger rows not pruned", "error", err)
			}
			cancel()
		}
	}
}
