// The ledger (siobroker.Ledger) that adapter processes share in PostgreSQL, so
// that a request's service is asked of its source at most once however many processes serve it.
//
// A claim is a session-level advisory lock on the request's key. One connection of the process,
// its lock session, holds all of its claims: a process that dies, or loses that connection,
// loses its claims with it, and a copy of its request is asked again by another process, at
// once. The statements on the lock session are short and taken in turn; the rows are written
// through a small pool. An answered request
// is a row of sio_adapter_ledger: its key (the broker's request id and the service), which
// process answered it and when, and the answer it published, so that a copy of the request (a
// broker that crashed asks again) is answered from it without asking the source. Answers hold
// people's data: the answer is set to NULL once older than the answer retention (24 hours by
// default), and the row is deleted after LedgerRetention.

package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sio-pso/siobroker"
)

// LedgerRetention is how long an answered request is remembered, without its answer once that
// is forgotten: longer than a dead letter is expected to wait for its replay.
const LedgerRetention = 7 * 24 * time.Hour

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
ALTER TABLE sio_adapter_ledger ADD COLUMN IF NOT EXISTS answer BYTEA;
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

// Ledger is a routing.Ledger in a PostgreSQL database every adapter process reaches.
type Ledger struct {
	pool     *pgxpool.Pool   // the rows: inserts and pruning
	lockConf *pgx.ConnConfig // the lock session's
	owner    string
	keep     time.Duration // the answer retention
	logger   *slog.Logger
	stop     context.CancelFunc
	done     chan struct{}

	// turn, a one-slot semaphore, serialises the statements on the lock session, which a
	// pgx.Conn needs, and guards the session itself; unlike a mutex, a wait for it ends with
	// its context, so that a stalled server does not queue every handler behind one statement.
	// session counts the lock sessions opened: a claim remembers the one that holds its lock,
	// and a lost session's claims are gone with it.
	turn    chan struct{}
	lock    *pgx.Conn
	session uint64
	// held are the keys this process holds, by session: a session takes an advisory lock it
	// already holds again, so two copies in this process are told apart here.
	held map[string]uint64
}

var _ siobroker.Ledger = (*Ledger)(nil)

// OpenLedger connects to dsn, creates the table if it is missing (and adds the answer column to
// a table of an earlier version), opens the lock session, and starts pruning (Prune) every hour,
// or every quarter of answerRetention when that is shorter. owner names this process in the rows
// it writes; answerRetention is how long an answer is kept (0: siobroker.DefaultAnswerRetention).
func OpenLedger(ctx context.Context, dsn, owner string, answerRetention time.Duration, logger *slog.Logger) (*Ledger, error) {
	if answerRetention < 0 {
		return nil, fmt.Errorf("ledger: negative answer retention %s", answerRetention)
	}
	if answerRetention == 0 {
		answerRetention = siobroker.DefaultAnswerRetention
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	cfg.MaxConns = rowConns
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
	p := &Ledger{pool: pool, lockConf: cfg.ConnConfig.Copy(), owner: owner, keep: answerRetention, logger: logger, stop: stop,
		done: make(chan struct{}), turn: make(chan struct{}, 1), held: map[string]uint64{}}
	p.takeTurn(context.Background())
	_, _, err = p.lockSession(ctx)
	p.endTurn()
	if err != nil {
		stop()
		pool.Close()
		return nil, err
	}
	go p.pruneEvery(pctx, max(min(time.Hour, answerRetention/4), time.Second))
	return p, nil
}

// rowConns is the size of the pool that writes the rows: a row is one short INSERT.
const rowConns = 4

// createTable creates the table and the function if they are missing. Adapters starting together
// would race on CREATE ... IF NOT EXISTS (it is not atomic in PostgreSQL): a transaction lock
// serialises them.
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

// takeTurn waits for the turn on the lock session until ctx ends, and reports whether it got it.
func (p *Ledger) takeTurn(ctx context.Context) bool {
	select {
	case p.turn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// endTurn gives the turn back.
func (p *Ledger) endTurn() { <-p.turn }

// lockSession returns the lock session, opening a new one when there is none or it was lost.
// The caller holds the turn.
func (p *Ledger) lockSession(ctx context.Context) (*pgx.Conn, uint64, error) {
	if p.lock != nil && !p.lock.IsClosed() {
		return p.lock, p.session, nil
	}
	if p.lock != nil {
		p.logger.Warn("the ledger's lock session was lost, and the claims it held with it: a copy of a request in flight may be asked again")
	}
	conn, err := pgx.ConnectConfig(ctx, p.lockConf)
	if err != nil {
		p.lock = nil
		return nil, 0, fmt.Errorf("ledger: open the lock session: %w", err)
	}
	p.lock = conn
	p.session++
	clear(p.held) // the claims of a lost session are gone
	return conn, p.session, nil
}

// dropLockSession closes the lock session after a failed statement, whose effect on the locks
// is unknown: its claims end with it. The caller holds the turn.
func (p *Ledger) dropLockSession() {
	if p.lock == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.lock.Close(ctx)
	p.lock = nil
}

// Close stops the pruning and closes the connections; the claims still held end with the lock
// session.
func (p *Ledger) Close() {
	p.stop()
	<-p.done
	p.takeTurn(context.Background())
	p.dropLockSession()
	p.endTurn()
	p.pool.Close()
}

// Take claims key: see routing.Ledger.
func (p *Ledger) Take(ctx context.Context, key string) (siobroker.LedgerClaim, siobroker.LedgerState, error) {
	hi, lo := lockKeys(key)
	if !p.takeTurn(ctx) {
		return nil, 0, fmt.Errorf("ledger: take %s: waiting for the lock session: %w", key, ctx.Err())
	}
	defer p.endTurn()
	conn, session, err := p.lockSession(ctx)
	if err != nil {
		return nil, 0, err
	}
	if _, mine := p.held[key]; mine {
		return nil, siobroker.LedgerBusy, nil
	}
	var state int
	if err := conn.QueryRow(ctx, `SELECT sio_adapter_ledger_take($1, $2, $3)`, key, hi, lo).Scan(&state); err != nil {
		p.dropLockSession()
		return nil, 0, fmt.Errorf("ledger: take %s: %w", key, err)
	}
	switch state {
	case 0:
		return nil, siobroker.LedgerBusy, nil
	case 2:
		return nil, siobroker.LedgerAnswered, nil
	}
	p.held[key] = session
	return &claim{p: p, key: key, hi: hi, lo: lo, session: session}, siobroker.LedgerTaken, nil
}

// claim is an advisory lock held by the lock session it was taken on.
type claim struct {
	p       *Ledger
	key     string
	hi, lo  int32
	session uint64
	ended   bool
}

// Answered writes the row with the answer, then unlocks: the row is committed before another
// process can take the lock and look for it.
func (c *claim) Answered(ctx context.Context, at time.Time, payload []byte) error {
	if c.ended {
		return errors.New("ledger: the claim has ended")
	}
	if payload == nil {
		payload = []byte{} // NULL means forgotten
	}
	_, err := c.p.pool.Exec(ctx, `INSERT INTO sio_adapter_ledger (key, owner, answered_at, answer) VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO NOTHING`, c.key, c.p.owner, at, payload)
	held := c.unlock()
	if err != nil {
		return fmt.Errorf("ledger: record the answer to %s: %w", c.key, err)
	}
	if !held {
		return fmt.Errorf("ledger: record the answer to %s: the lock session was lost while the source was asked", c.key)
	}
	return nil
}

// Release unlocks without an answer; it does nothing after Answered.
func (c *claim) Release() {
	if !c.ended {
		c.unlock()
	}
}

// unlock ends the claim, and reports whether its lock was still held: not when its session was
// lost, which took the lock with it.
func (c *claim) unlock() bool {
	c.ended = true
	p := c.p
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !p.takeTurn(ctx) {
		// The lock stays held until the session ends: a copy waits for it, or for this
		// process to go.
		return false
	}
	defer p.endTurn()
	if p.held[c.key] == c.session {
		delete(p.held, c.key)
	}
	if p.lock == nil || p.lock.IsClosed() || p.session != c.session {
		return false
	}
	var unlocked bool
	if err := p.lock.QueryRow(ctx, `SELECT pg_advisory_unlock($1, $2)`, c.hi, c.lo).Scan(&unlocked); err != nil {
		// The lock may still be held: only ending the session frees it for certain.
		p.dropLockSession()
		return false
	}
	return unlocked
}

// lockKeys maps key to the two 32-bit keys of an advisory lock. Two request keys that collide
// only make one wait for the other.
func lockKeys(key string) (int32, int32) {
	h := fnv.New64a()
	_, _ = h.Write([]byte("sio-adapter-ledger\x00" + key))
	sum := h.Sum64()
	return int32(sum >> 32), int32(sum)
}

// Answer returns the row of key: see siobroker.Ledger. A key without a row gives a zero
// LedgerAnswer.
func (p *Ledger) Answer(ctx context.Context, key string) (siobroker.LedgerAnswer, error) {
	var a siobroker.LedgerAnswer
	err := p.pool.QueryRow(ctx, `SELECT owner, answered_at, answer FROM sio_adapter_ledger WHERE key = $1`, key).
		Scan(&a.Owner, &a.AnsweredAt, &a.Payload)
	if errors.Is(err, pgx.ErrNoRows) {
		return siobroker.LedgerAnswer{}, nil
	}
	if err != nil {
		return siobroker.LedgerAnswer{}, fmt.Errorf("ledger: read the answer to %s: %w", key, err)
	}
	return a, nil
}

// Prune forgets the answers recorded before now minus the answer retention (the rows stay, so
// that a copy is still known as answered) and deletes the rows recorded before now minus
// LedgerRetention. It returns how many answers it forgot and how many rows it deleted.
func (p *Ledger) Prune(ctx context.Context, now time.Time) (forgotten, deleted int64, err error) {
	tag, err := p.pool.Exec(ctx, `UPDATE sio_adapter_ledger SET answer = NULL WHERE answered_at < $1 AND answer IS NOT NULL`,
		now.Add(-p.keep))
	if err != nil {
		return 0, 0, fmt.Errorf("ledger: prune: forget answers: %w", err)
	}
	forgotten = tag.RowsAffected()
	tag, err = p.pool.Exec(ctx, `DELETE FROM sio_adapter_ledger WHERE answered_at < $1`, now.Add(-LedgerRetention))
	if err != nil {
		return forgotten, 0, fmt.Errorf("ledger: prune: delete rows: %w", err)
	}
	return forgotten, tag.RowsAffected(), nil
}

func (p *Ledger) pruneEvery(ctx context.Context, every time.Duration) {
	defer close(p.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			if _, _, err := p.Prune(pctx, time.Now()); err != nil {
				p.logger.Warn("ledger rows not pruned", "error", err)
			}
			cancel()
		}
	}
}
