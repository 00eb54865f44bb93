package faults

import (
	"context"
	"database/sql"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sio-pso/siobroker/sqlite"
)

var long = flag.Bool("faults.long", false, "run the long form of the fault test (make faults); SIO_FAULTS_LONG=1 does the same")

// form is the size of a run: the load's rate and how long it runs around each fault.
type form struct {
	name        string
	rate        float64       // requests per second
	before      time.Duration // load before each fault
	after       time.Duration // load after the fault has been recovered from
	lock        time.Duration // how long the journal is locked
	rabbitDown  time.Duration // how long RabbitMQ stays dead
	settleQuiet time.Duration // the journal unchanged this long, after the load, ends the wait
}

var (
	shortForm = form{name: "short", rate: 8, before: 3 * time.Second, after: 4 * time.Second, lock: 10 * time.Second,
		rabbitDown: 3 * time.Second, settleQuiet: 6 * time.Second}
	longForm = form{name: "long", rate: 20, before: 15 * time.Second, after: 20 * time.Second, lock: 20 * time.Second,
		rabbitDown: 5 * time.Second, settleQuiet: 8 * time.Second}
)

// phase is a window of the load with one fault in it. Requests are counted by the phase in
// which they were sent.
type phase struct {
	name  string
	fault func(t *testing.T, top *topology, f form)
}

var phases = []phase{
	{"no fault", nil},
	{"SIGKILL broker", func(t *testing.T, top *topology, _ form) {
		top.broker.kill(t)
		top.startBroker(t)
	}},
	{"SIGKILL adapter", func(t *testing.T, top *topology, _ form) {
		top.adapters["adapter-a"].kill(t)
		top.startAdapter(t, "adapter-a")
	}},
	{"SIGKILL RabbitMQ", func(t *testing.T, top *topology, f form) {
		top.node.Kill()
		time.Sleep(f.rabbitDown) // the outage
		top.node.Start()
		t.Logf("the broker was ready %s after RabbitMQ accepted logins again", top.waitReady(t, 2*time.Minute).Round(100*time.Millisecond))
	}},
	{"journal locked", func(t *testing.T, top *topology, f form) {
		top.lockJournal(t, f.lock)
	}},
	{"poison", func(t *testing.T, top *topology, _ form) {
		top.publishPoison(t)
	}},
}

// TestFaults runs the load through every fault of issue 15 in turn, waits until every request
// has had its time to finish, and accounts for every request and every answer.
func TestFaults(t *testing.T) {
	f := shortForm
	if v, _ := strconv.ParseBool(os.Getenv("SIO_FAULTS_LONG")); *long || v {
		f = longForm
	}
	top := startTopology(t)
	l := newLoader(t, top)
	top.waitReady(t, time.Minute)
	l.phase.Store(0)
	// The adapters' case registries are consumed once they serve: one request answered in full
	// shows the whole path works before the clock starts.
	deadline := time.Now().Add(time.Minute)
	for s := l.send(false); s.got != gotReply || s.services[5] != "ok"; s = l.send(false) {
		if time.Now().After(deadline) {
			t.Fatalf("no request answered before the load: %s %s %s", s.got, s.code, s.detail)
		}
		time.Sleep(500 * time.Millisecond)
	}

	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		l.run(f.rate, stop)
	}()
	started := time.Now()
	for i, p := range phases {
		l.phase.Store(int32(i))
		time.Sleep(f.before) // steady load before the fault
		if p.fault != nil {
			t0 := time.Now()
			p.fault(t, top, f)
			t.Logf("phase %q: fault and recovery took %s", p.name, time.Since(t0).Round(100*time.Millisecond))
		}
		time.Sleep(f.after) // steady load after it
	}
	close(stop)
	<-loadDone
	t.Logf("load: %d requests in %s (%s form, %.0f/s)", len(l.sentLog()), time.Since(started).Round(time.Second), f.name, f.rate)

	top.waitSettled(t, f)
	acc := account(t, top, l)
	acc.print(t, f)
	acc.check(t)
}

// waitSettled waits until no request is on delivery in the broker's store and neither the
// journal nor the adapters' ledger has grown for f.settleQuiet (an answer is in the ledger once
// its publication is confirmed, so a broker that takes it has journaled it by then), at least
// the slowest source's time after the load; or until every request's time is up (the services'
// timeouts, the asynchronous timeout and the retry of a synchronous request whose reply could
// not be journaled). Whatever is unfinished then is stuck.
func (top *topology) waitSettled(t *testing.T, f form) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(top.dataDir, sqlite.FileName)+"?mode=ro&_pragma=busy_timeout(10000)")
	must(t, err, "open the broker's database")
	defer db.Close()
	pg, err := pgx.Connect(context.Background(), top.ledgerDSN)
	must(t, err, "connect to the ledger")
	defer pg.Close(context.Background())
	start := time.Now()
	limit := start.Add(asyncTimeout + 2*serviceTimeout + 15*time.Second + time.Minute)
	last := [2]int64{-1, -1}
	lastChange := start
	for {
		var onDelivery int
		var now [2]int64
		err := db.QueryRowContext(context.Background(), `SELECT (SELECT count(*) FROM (`+sqlite.OnDeliverySQL+`)), (SELECT coalesce(max(seq), 0) FROM journal)`).Scan(&onDelivery, &now[0])
		if err == nil {
			err = pg.QueryRow(context.Background(), `SELECT count(*) FROM sio_adapter_ledger`).Scan(&now[1])
		}
		if err != nil {
			t.Logf("read the broker's store and the ledger: %v", err)
		}
		if now != last {
			last, lastChange = now, time.Now()
		}
		if err == nil && onDelivery == 0 && time.Since(lastChange) >= f.settleQuiet && time.Since(start) >= serviceTimeout+slowest {
			t.Logf("settled %s after the load: nothing on delivery, journal at record %d, %d ledger rows", time.Since(start).Round(time.Second), now[0], now[1])
			return
		}
		if time.Now().After(limit) {
			t.Logf("not settled %s after the load: %d requests still on delivery, journal at record %d", time.Since(start).Round(time.Second), onDelivery, now[0])
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// journalCheck runs `siobroker journal check` over the stopped broker's data directory.
func (top *topology) journalCheck(t *testing.T) (bool, string) {
	t.Helper()
	cmd := exec.Command(top.bin, "journal", "check", "--config", "configs/broker.yaml", "--data", top.dataDir)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), top.brokerEnv(t)...)
	out, err := cmd.CombinedOutput()
	return err == nil, string(out)
}
