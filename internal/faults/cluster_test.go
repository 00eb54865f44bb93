package faults

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/internal/pgtest"
	"github.com/sio-pso/siobroker/internal/rabbitnode"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/sqlite"
)

// The scale-out test of issue 20: a RabbitMQ cluster of three private nodes, its quorum queues
// replicated on all three; two broker processes journaling into one PostgreSQL journal; four
// adapter processes sharing one ledger; every process given the three nodes' URLs in amqp.url.
// Under a steady load on both brokers the test kills (SIGKILL) the node leading the service
// queues, keeps the load on, and then accounts for every request as TestFaults does: nothing
// lost, nothing answered twice, nothing stuck. It reports how long the service took to resume.

const clusterPrefix = "cluster."

// clusterForm is the size of a run of the cluster test.
type clusterForm struct {
	name          string
	rate          float64       // requests per second, over both brokers
	before, after time.Duration // load before the kill, and after it
	settleQuiet   time.Duration
}

var (
	clusterShort = clusterForm{name: "short", rate: 6, before: 5 * time.Second, after: 15 * time.Second, settleQuiet: 6 * time.Second}
	clusterLong  = clusterForm{name: "long", rate: 20, before: 20 * time.Second, after: 40 * time.Second, settleQuiet: 8 * time.Second}
)

// clusterServiceTimeout and clusterAsyncTimeout are the deployment's: configs/routes.yaml's
// default_timeout, and routing.async_timeout as the test sets it.
const (
	clusterServiceTimeout = 10 * time.Second
	clusterAsyncTimeout   = 30 * time.Second
)

type clusterBroker struct {
	name, dataDir, listen, opsListen string
	proc                             *proc
	load                             *loader
}

type clusterTop struct {
	bin, dir string
	keys     *topology // the transport keys, made as TestFaults makes them
	cluster  *rabbitnode.Cluster
	dsn      string // the journal's and the ledger's schema
	brokers  []*clusterBroker
	adapters []*proc
}

func TestIntegrationClusterLeaderKilled(t *testing.T) {
	f := clusterShort
	if v, _ := strconv.ParseBool(os.Getenv("SIO_FAULTS_LONG")); *long || v {
		f = clusterLong
	}
	top := &clusterTop{bin: buildBinary(t), dir: t.TempDir()}
	top.dsn = pgtest.Schema(t, "sio_cluster_")
	top.keys = &topology{bin: top.bin, dir: top.dir}
	top.keys.makeKeys(t)
	top.cluster = rabbitnode.StartCluster(t, 3)

	for i := range 2 {
		top.startBroker(t, i)
	}
	for i := range 4 {
		top.startAdapter(t, fmt.Sprintf("adapter-%d", i+1))
	}
	for _, b := range top.brokers {
		(&topology{opsListen: b.opsListen}).waitReady(t, 2*time.Minute)
		b.load = newLoader(t, &topology{dataDir: b.dataDir, listen: b.listen})
		deadline := time.Now().Add(2 * time.Minute)
		for s := b.load.send(false); s.got != gotReply || s.services[1] != "ok" || s.services[5] != "ok" || s.services[11] != "ok"; s = b.load.send(false) {
			if time.Now().After(deadline) {
				t.Fatalf("%s answered no request in full before the load: %s %s %s %v", b.name, s.got, s.code, s.detail, s.services)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	// Every quorum queue of the deployment has a member on each node.
	queues, err := top.cluster.Queues(clusterPrefix)
	must(t, err, "list the cluster's queues")
	if len(queues) < 5 {
		t.Fatalf("only %d quorum queues with prefix %s: %+v", len(queues), clusterPrefix, queues)
	}
	for _, q := range queues {
		if len(q.Members) != 3 {
			t.Errorf("queue %s has members %v, want all 3 nodes", q.Name, q.Members)
		}
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	for _, b := range top.brokers {
		b.load.phase.Store(0)
		go func() {
			defer func() { done <- struct{}{} }()
			b.load.run(f.rate/float64(len(top.brokers)), stop)
		}()
	}
	started := time.Now()
	time.Sleep(f.before)

	// The node that leads most of the service queues (ties: the reply queues) is killed.
	queues, err = top.cluster.Queues(clusterPrefix)
	must(t, err, "list the cluster's queues")
	led := map[string][]string{}
	score := map[string]int{}
	for _, q := range queues {
		led[q.Leader] = append(led[q.Leader], strings.TrimPrefix(q.Name, clusterPrefix))
		switch {
		case strings.Contains(q.Name, "sio.service."):
			score[q.Leader] += 100
		case strings.Contains(q.Name, "sio.reply."):
			score[q.Leader] += 10
		default:
			score[q.Leader]++
		}
	}
	var victim *rabbitnode.Node
	for _, n := range top.cluster.Nodes {
		if victim == nil || score[n.Name()] > score[victim.Name()] {
			victim = n
		}
	}
	var loadQueues []string
	for _, q := range led[victim.Name()] {
		if slices.ContainsFunc(services, func(svc int) bool { return q == fmt.Sprintf("sio.service.%03d", svc) }) || !strings.HasPrefix(q, "sio.service.") {
			loadQueues = append(loadQueues, q)
		}
	}
	t.Logf("killing %s (%s), leader of %d queues, among them %s", victim.Name(), victim.Addr(), len(led[victim.Name()]), strings.Join(loadQueues, ", "))
	for _, b := range top.brokers {
		b.load.phase.Store(1)
	}
	killedAt := time.Now()
	victim.Kill()
	t.Logf("%s killed in %s", victim.Name(), time.Since(killedAt).Round(time.Millisecond))
	time.Sleep(f.after - time.Since(killedAt))
	close(stop)
	for range top.brokers {
		<-done
	}
	t.Logf("load: %s form, %.0f requests/s over 2 brokers for %s", f.name, f.rate, time.Since(started).Round(time.Second))

	after, err := top.cluster.Queues(clusterPrefix)
	must(t, err, "list the cluster's queues after the kill")
	for _, q := range after {
		if q.Leader == victim.Name() {
			t.Errorf("queue %s is still led by the killed node", q.Name)
		}
	}
	for _, b := range top.brokers {
		(&topology{opsListen: b.opsListen}).waitReady(t, time.Minute)
	}

	top.waitSettled(t, f)
	res := top.account(t)
	res.resume = resumeTimes(top, killedAt)
	res.reconnects = map[string]int{}
	for _, p := range top.all() {
		// Logged at error level; "connection restored" is info, which the processes log at
		// debug (watermill's info is chatty).
		res.reconnects[p.name] = p.countLines("connection lost, reconnecting")
	}
	res.errorLines = errorMessages(top.all())
	res.print(t, f, victim)
	res.check(t)
}

// startBroker starts broker i (`siobroker serve --dev`) on the cluster and the shared journal.
// The second runs on a copy of the first's development PKI and demo subjects, so that the
// load's signer and subjects are the same at both, as at brokers of one deployment.
func (top *clusterTop) startBroker(t *testing.T, i int) {
	t.Helper()
	b := &clusterBroker{name: fmt.Sprintf("broker-%d", i+1), dataDir: filepath.Join(top.dir, fmt.Sprintf("data-%d", i+1)),
		listen: freeAddr(t), opsListen: freeAddr(t)}
	if i > 0 {
		first := top.brokers[0].dataDir
		copyTree(t, filepath.Join(first, "pki"), filepath.Join(b.dataDir, "pki"))
		data, err := os.ReadFile(filepath.Join(first, app.DemoSubjectsFile))
		must(t, err, "read the demo subjects")
		writeFile(t, filepath.Join(b.dataDir, app.DemoSubjectsFile), string(data))
	}
	env := []string{
		"SIOBROKER_TRANSPORT=amqp", "SIOBROKER_AMQP_URL=" + top.cluster.URL(), "SIOBROKER_AMQP_PREFIX=" + clusterPrefix,
		"SIOBROKER_AMQP_INSTANCE=" + b.name, "SIOBROKER_AMQP_IN_PROCESS_ADAPTERS=false", "SIOBROKER_AMQP_RECONNECT_MAX=2s",
		"SIOBROKER_AMQP_MESSAGE_KEY_FILE=" + top.keys.masterKey(),
		"SIOBROKER_LISTEN=" + b.listen, "SIOBROKER_OPERATOR_LISTEN=" + b.opsListen,
		"SIOBROKER_DATA_DIR=" + b.dataDir, "SIOBROKER_LOG_LEVEL=info",
		"SIOBROKER_ROUTING_ASYNC_TIMEOUT=" + clusterAsyncTimeout.String(),
		"SIOBROKER_JOURNAL_DRIVER=postgres", "SIOBROKER_JOURNAL_DSN=" + top.dsn,
	}
	b.proc = startProc(t, top.bin, b.name, env, "serve", "--config", "configs/broker.yaml", "--dev")
	b.proc.waitFor(t, "siobroker listening on", 3*time.Minute)
	top.brokers = append(top.brokers, b)
}

// startAdapter starts an adapter process serving the load's services from the demo backend
// and the case registries, on the cluster, with the shared ledger.
func (top *clusterTop) startAdapter(t *testing.T, name string) {
	t.Helper()
	file := writeFile(t, filepath.Join(top.dir, name+".yaml"), fmt.Sprintf(`name: %s
transport: {amqp_url: %q, prefix: %q, concurrency: 4, reconnect_max: 2s, message_key_file: %q}
ledger: {dsn: %q}
services:
  1: {backend: demo}
  5: {backend: demo}
  11: {backend: demo}
case_registries: {names: [erdr, courts, aisoip], demo_pki: %q}
`, name, top.cluster.URL(), clusterPrefix, top.keys.adapterKey(), top.dsn, filepath.Join(top.brokers[0].dataDir, "pki")))
	p := startProc(t, top.bin, name, []string{"SIOBROKER_LOG_LEVEL=info"}, "adapter", "--config", file)
	p.waitFor(t, "serving services", 3*time.Minute)
	top.adapters = append(top.adapters, p)
}

func (top *clusterTop) all() []*proc {
	out := slices.Clone(top.adapters)
	for _, b := range top.brokers {
		out = append(out, b.proc)
	}
	return out
}

// copyTree copies the regular files of directory from into to.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o600)
	})
	must(t, err, "copy %s", from)
}

// waitSettled waits until neither broker has a request on delivery and neither the journal nor
// the ledger has grown for f.settleQuiet, at least a service timeout after the load; or until
// every request's time is up.
func (top *clusterTop) waitSettled(t *testing.T, f clusterForm) {
	t.Helper()
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, top.dsn)
	must(t, err, "connect to the journal")
	defer pg.Close(ctx)
	start := time.Now()
	limit := start.Add(clusterAsyncTimeout + 2*clusterServiceTimeout + time.Minute)
	var last [2]int64
	lastChange := start
	for {
		onDelivery := 0
		for _, b := range top.brokers {
			ids, err := onDeliveryIn(b.dataDir)
			if err != nil {
				t.Logf("read %s's store: %v", b.name, err)
				onDelivery++
			}
			onDelivery += len(ids)
		}
		var now [2]int64
		err := pg.QueryRow(ctx, `SELECT (SELECT count(*) FROM sio_journal), (SELECT count(*) FROM sio_adapter_ledger)`).Scan(&now[0], &now[1])
		if err != nil {
			t.Logf("read the journal and the ledger: %v", err)
		}
		if now != last {
			last, lastChange = now, time.Now()
		}
		if err == nil && onDelivery == 0 && time.Since(lastChange) >= f.settleQuiet && time.Since(start) >= clusterServiceTimeout {
			t.Logf("settled %s after the load: nothing on delivery, %d journal records, %d ledger rows", time.Since(start).Round(time.Second), now[0], now[1])
			return
		}
		if time.Now().After(limit) {
			t.Logf("not settled %s after the load: %d requests on delivery", time.Since(start).Round(time.Second), onDelivery)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// onDeliveryIn reads the ids of the requests on delivery in a broker's store (its asynchronous
// requests are kept there; the journal is in PostgreSQL).
func onDeliveryIn(dataDir string) ([]string, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqlite.FileName)+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query(sqlite.OnDeliverySQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// clusterResult is the accounting of the cluster test, per phase (before and after the kill),
// with the same rules as TestFaults' (see account).
type clusterResult struct {
	phases     [3]*counts // before the kill, after it, and records of requests the load did not send
	answered   int        // accepted requests with exactly one reply record
	verified   error
	resume     resume
	reconnects map[string]int
	errorLines string // each process's error-level log messages, counted, for the diagnosis of a long outage
}

// account stops the brokers and the adapters and reads the shared journal, the ledger and the
// brokers' stores.
func (top *clusterTop) account(t *testing.T) *clusterResult {
	t.Helper()
	ctx := context.Background()
	res := &clusterResult{}
	for i := range res.phases {
		res.phases[i] = &counts{faultCodes: map[string]int{}, outcomes: map[string]int{}}
	}
	for _, p := range top.all() {
		p.stop(t)
	}
	ledger := readLedger(t, &topology{ledgerDSN: top.dsn})
	onDelivery := map[string]bool{}
	for _, b := range top.brokers {
		ids, err := onDeliveryIn(b.dataDir)
		must(t, err, "read %s's store", b.name)
		for _, id := range ids {
			onDelivery[id] = true
		}
	}
	j, err := postgres.OpenJournal(ctx, top.dsn)
	must(t, err, "open the shared journal")
	defer j.Close()
	res.verified = j.Verify(ctx)
	records, err := j.Query(ctx, siobroker.JournalFilter{})
	must(t, err, "read the shared journal")

	byMsg := map[string]*jreq{}
	reqToMsg := map[string]string{}
	for _, r := range records {
		if r.MessageID == "" {
			continue
		}
		q := byMsg[r.MessageID]
		if q == nil {
			q = &jreq{exchanges: map[int][]jrec{}, lates: map[int][]jrec{}}
			byMsg[r.MessageID] = q
		}
		if r.RequestID != "" && !slices.Contains(q.requestIDs, r.RequestID) {
			q.requestIDs = append(q.requestIDs, r.RequestID)
			reqToMsg[r.RequestID] = r.MessageID
		}
		rec := jrec{seq: r.Seq, kind: r.Kind, requestID: r.RequestID, messageID: r.MessageID, service: r.Service, code: r.Code}
		if m := answerDigest.FindSubmatch(r.Data); m != nil {
			rec.answerDigest = string(m[1])
		}
		switch r.Kind {
		case siobroker.JournalRequest:
			q.requests++
		case siobroker.JournalRefusal:
			q.refusals = append(q.refusals, rec)
		case siobroker.JournalExchange:
			q.exchanges[r.Service] = append(q.exchanges[r.Service], rec)
		case siobroker.JournalLate:
			q.lates[r.Service] = append(q.lates[r.Service], rec)
		case siobroker.JournalReply:
			q.replies++
		}
	}

	phaseOf := map[string]int{}
	var log []*sent
	for _, b := range top.brokers {
		log = append(log, b.load.sentLog()...)
	}
	for _, s := range log {
		phaseOf[s.messageID] = s.phase
	}
	for _, s := range log {
		c := res.phases[s.phase]
		c.sent++
		if s.async {
			c.async++
		}
		q := byMsg[s.messageID]
		switch s.got {
		case gotFault:
			c.refused++
			c.faultCodes[s.code]++
			if q == nil || len(q.refusals) == 0 {
				c.unjournaledRefusals++
				c.problem("unjournaled refusal", "%s %s: %s %s", channel(s), s.messageID, s.code, s.detail)
			}
		case gotNoAnswer:
			c.noAnswer++
			c.problem("no answer (not a failure by itself)", "%s %s sent %s: %s", channel(s), s.messageID, s.at.Format("15:04:05.000"), s.detail)
		case gotUnreadable:
			c.unreadable++
			c.problem("unreadable answer", "%s %s: %s", channel(s), s.messageID, s.detail)
		}
		if q == nil {
			if s.got == gotReply || s.got == gotAck {
				c.accepted++
				c.stuck++
				c.problem("stuck", "%s %s: the client got %s, the journal has nothing of it", channel(s), s.messageID, s.got)
			}
			continue
		}
		inStore := slices.ContainsFunc(q.requestIDs, func(id string) bool { return onDelivery[id] })
		if s.got == gotReply || s.got == gotAck || (q.requests > 0 && len(q.refusals) == 0) || q.replies > 0 || len(q.exchanges) > 0 || inStore {
			c.accepted++
			switch {
			case q.replies == 0 || inStore:
				c.stuck++
				c.problem("stuck", "%s %s (%s, client %s %s): %d reply records, on delivery %v, exchanges %s",
					channel(s), s.messageID, strings.Join(q.requestIDs, ","), s.got, s.code, q.replies, inStore, codes(q.exchanges))
			case q.replies > 1:
				c.duplicated += q.replies - 1
				c.problem("duplicated", "%s %s (%s): %d reply records", channel(s), s.messageID, strings.Join(q.requestIDs, ","), q.replies)
			default:
				res.answered++
				for _, svc := range services {
					if len(q.exchanges[svc]) == 0 {
						c.lost++
						c.problem("lost", "%s %s (%s): replied, but service %d has no outcome record", channel(s), s.messageID, strings.Join(q.requestIDs, ","), svc)
					}
				}
			}
		}
		countJournaled(c, s, q)
	}
	unknown := res.phases[2]
	for msg, q := range byMsg {
		if _, ok := phaseOf[msg]; !ok {
			countJournaled(unknown, &sent{messageID: msg}, q)
		}
	}
	// Every answer an adapter produced is journaled, in an exchange record or a late one.
	for _, row := range ledger {
		requestID, svcText, ok := cutLast(row.key, "/")
		svc, err := strconv.Atoi(svcText)
		if !ok || err != nil {
			continue
		}
		msg := reqToMsg[requestID]
		c := unknown
		if ph, ok := phaseOf[msg]; ok && msg != "" {
			c = res.phases[ph]
		}
		c.produced++
		q := byMsg[msg]
		if q == nil || !(slices.ContainsFunc(q.exchanges[svc], hasAnswer) || len(q.lates[svc]) > 0) {
			c.lost++
			c.problem("lost", "answer to %s service %d (by %s at %s) in no journal record", requestID, svc, row.owner, row.at.Format(time.TimeOnly))
		}
	}
	return res
}

// answerDigest finds a late record's digest of its answer in its JSON details.
var answerDigest = regexp.MustCompile(`"answerDigest":\s*"([^"]*)"`)

// resume is how long the service took to come back after the kill, from the synchronous
// requests of the load (their services all "ok", or not):
//   - first: from the kill to the first reply in full (every service answered) to a request sent
//     after the kill;
//   - all: from the kill to the sending of the first request after which every request was
//     answered in full (0: none was degraded);
//   - degraded: synchronous requests sent after the kill whose reply misses a service or that
//     were refused or unanswered, of so many.
type resume struct {
	first, all          time.Duration
	degraded, afterKill int
	slowest             time.Duration // the longest a synchronous request sent after the kill waited
}

func resumeTimes(top *clusterTop, killedAt time.Time) resume {
	var r resume
	var log []*sent
	for _, b := range top.brokers {
		log = append(log, b.load.sentLog()...)
	}
	sort.Slice(log, func(i, j int) bool { return log[i].at.Before(log[j].at) })
	r.first = -1
	var lastBad time.Time
	for _, s := range log {
		if s.async || s.at.Before(killedAt) {
			continue
		}
		r.afterKill++
		r.slowest = max(r.slowest, s.done.Sub(s.at))
		full := s.got == gotReply && len(s.services) == len(services)
		for _, st := range s.services {
			full = full && st == siobroker.StatusOK
		}
		if !full {
			r.degraded++
			lastBad = s.at
			continue
		}
		if d := s.done.Sub(killedAt); r.first < 0 || d < r.first {
			r.first = d
		}
	}
	if !lastBad.IsZero() {
		r.all = lastBad.Sub(killedAt)
	}
	return r
}

func (res *clusterResult) print(t *testing.T, f clusterForm, victim *rabbitnode.Node) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "cluster test (%s form): 3 RabbitMQ nodes, 2 brokers, 4 adapters; killed %s\n", f.name, victim.Name())
	fmt.Fprintf(&b, "%-14s %6s %6s %8s %7s %9s %8s %9s %5s %5s %10s %6s\n", "phase", "sent", "async", "accepted", "refused", "no-answer", "produced", "journaled", "late", "lost", "duplicated", "stuck")
	for i, c := range res.phases {
		name := []string{"before kill", "after kill", "not sent"}[i]
		fmt.Fprintf(&b, "%-14s %6d %6d %8d %7d %9d %8d %9d %5d %5d %10d %6d\n", name, c.sent, c.async, c.accepted, c.refused, c.noAnswer,
			c.produced, c.journaled, c.late, c.lost, c.duplicated, c.stuck)
		if len(c.faultCodes) > 0 {
			fmt.Fprintf(&b, "    refused with %v\n", c.faultCodes)
		}
	}
	r := res.resume
	first := "none"
	if r.first >= 0 {
		first = r.first.Round(10 * time.Millisecond).String()
	}
	fmt.Fprintf(&b, "resume: first full reply %s after the kill; every request sent from %s after the kill answered in full; "+
		"%d of %d synchronous requests sent after the kill degraded; the slowest took %s\n",
		first, r.all.Round(10*time.Millisecond), r.degraded, r.afterKill, r.slowest.Round(10*time.Millisecond))
	names := make([]string, 0, len(res.reconnects))
	for n := range res.reconnects {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "connections lost with the node and dialled again:")
	for _, n := range names {
		fmt.Fprintf(&b, " %s %d", n, res.reconnects[n])
	}
	fmt.Fprintf(&b, "\nshared journal: %d accepted requests answered exactly once; chain verifies: %v", res.answered, res.verified == nil)
	fmt.Fprintf(&b, "\nerror-level log lines by process and message:\n%s", res.errorLines)
	t.Log(b.String())
}

func (res *clusterResult) check(t *testing.T) {
	t.Helper()
	if res.verified != nil {
		t.Errorf("the shared journal does not verify: %v", res.verified)
	}
	for i, c := range res.phases {
		if c.lost+c.duplicated+c.stuck+c.unjournaledRefusals+c.unreadable > 0 {
			t.Errorf("phase %d: %d lost, %d duplicated, %d stuck, %d unjournaled refusals, %d unreadable", i, c.lost, c.duplicated, c.stuck, c.unjournaledRefusals, c.unreadable)
		}
		kinds := make([]string, 0, len(c.problems))
		for k := range c.problems {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			ex := c.problems[k]
			t.Logf("phase %d, %s (%d), first: %s", i, k, len(ex), strings.Join(ex[:min(5, len(ex))], "; "))
		}
	}
	if res.resume.first < 0 {
		t.Errorf("no request sent after the kill was answered in full")
	}
	if res.answered == 0 {
		t.Errorf("no request answered")
	}
}

// logMsg finds the message of a log line (slog text: msg="..." or msg=word).
var logMsg = regexp.MustCompile(`msg=("(?:[^"\\]|\\.)*"|\S+)`)

// logErr finds the error of a log line.
var logErr = regexp.MustCompile(`error=("(?:[^"\\]|\\.)*"|\S+)`)

// errorMessages counts each process's error-level log lines by message, so that the report says
// what the processes went through (one run of the long form refused requests for 40 s after the
// kill; the logs are what tells why).
func errorMessages(procs []*proc) string {
	var b strings.Builder
	for _, p := range procs {
		byMsg := map[string]int{}
		for line := range strings.SplitSeq(p.output(), "\n") {
			if !strings.Contains(line, "level=ERROR") {
				continue
			}
			msg := "?"
			if m := logMsg.FindStringSubmatch(line); m != nil {
				msg = m[1]
			}
			// A refusal's line says why in its error: the first words of it, which name the
			// step (the case registry, the transport, the journal) without the request's ids.
			if m := logErr.FindStringSubmatch(line); m != nil && msg == `"request failed"` {
				msg += " " + m[1][:min(len(m[1]), 90)]
			}
			byMsg[msg]++
		}
		msgs := make([]string, 0, len(byMsg))
		for m := range byMsg {
			msgs = append(msgs, m)
		}
		sort.Strings(msgs)
		for _, m := range msgs {
			fmt.Fprintf(&b, "    %s: %d × %s\n", p.name, byMsg[m], m)
		}
	}
	return b.String()
}
