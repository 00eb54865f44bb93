package cli

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/rabbitnode"
	"github.com/sio-pso/siobroker/operator/metrics"
	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// The tests of this file run the siobroker binary as operating-system processes and kill them
// with SIGKILL, as a crash, an OOM kill or a pulled plug would: no deferred function runs, no
// connection is closed politely, and whatever the process held in memory is gone. The tests of
// routing/amqp cut a process's connections from inside it; these check the same promises on
// the real thing.

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// siobrokerBinary builds this command once per test binary (without the race detector: the
// processes are what is under test, not instrumented code) and returns its path.
func siobrokerBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "siobroker-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		addCloser(func() { os.RemoveAll(dir) })
		goTool, err := exec.LookPath("go")
		if err != nil {
			binaryErr = fmt.Errorf("the go command, to build the binary: %w", err)
			return
		}
		binaryPath = filepath.Join(dir, "siobroker")
		out, err := exec.Command(goTool, "build", "-o", binaryPath, "../../cmd/siobroker").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// osProcess is a siobroker process started by a test, with its output kept in memory.
type osProcess struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer // standard output and error, interleaved
	done chan struct{}
}

func (p *osProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *osProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startProcess starts the binary with args from the repository's root (so that the default
// configuration's relative paths resolve), its environment plus env. The test's end stops it
// (SIGTERM, then SIGKILL after 20 s) and, if the test failed, logs the end of its output.
func startProcess(t *testing.T, name string, env []string, args ...string) *osProcess {
	t.Helper()
	p := &osProcess{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(siobrokerBinary(t), args...)
	p.cmd.Dir = "../.."
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	// A test binary killed itself takes its children with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s (pid %d) output:\n%s", name, p.cmd.Process.Pid, lastLines(p.output(), 30))
		}
	})
	return p
}

// waitFor waits until the process has printed line.
func (p *osProcess) waitFor(t *testing.T, line string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for !strings.Contains(p.output(), line) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before printing %q:\n%s", p.name, line, lastLines(p.output(), 20))
		case <-deadline:
			t.Fatalf("%s did not print %q within %s:\n%s", p.name, line, within, lastLines(p.output(), 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *osProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10 s after SIGKILL", p.name)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func loopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// vehicleSource is the vehicle register's HTTP endpoint (service 5). Its first call is held until
// release is closed or its caller goes away; every call is counted by path, so that a test knows
// which adapter process asked.
type vehicleSource struct {
	srv     *httptest.Server
	first   chan string // the path of the first call, once it is being held
	release chan struct{}
	mu      sync.Mutex
	calls   map[string]int
	total   atomic.Int32
}

const heldPlate = "KILL01"

func newVehicleSource(t *testing.T) *vehicleSource {
	s := &vehicleSource{first: make(chan string, 1), release: make(chan struct{}), calls: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[r.URL.Path]++
		s.mu.Unlock()
		if s.total.Add(1) == 1 {
			s.first <- r.URL.Path
			select {
			case <-s.release:
			case <-r.Context().Done():
				return // the asking process died
			case <-time.After(30 * time.Second):
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"data":{"vehicles":[{"plate":%q,"vin":"XTA21099000000001","make":"LADA","year":2010,"registered":"2015-03-01"}]}}`, heldPlate)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *vehicleSource) callsTo(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// waitFirst returns the path of the held first call.
func (s *vehicleSource) waitFirst(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case path := <-s.first:
		return path
	case <-time.After(within):
		t.Fatalf("the vehicle register was not asked within %s", within)
		return ""
	}
}

// processTopology is broker and adapter processes on RabbitMQ under one queue prefix, on the
// broker's default quorum queues, as deployed; every broker over a data directory of its own
// holding the shared development PKI.
type processTopology struct {
	url    string // RabbitMQ's
	prefix string
	dir    string // configs and data directories
	src    *e2eBroker
}

// newProcessTopology is a topology on the machine's RabbitMQ, under a prefix of its own.
func newProcessTopology(t *testing.T) *processTopology {
	return &processTopology{url: testAMQPURL, prefix: amqpPrefix(t), dir: t.TempDir(), src: sharedBroker(t)}
}

// newProcessTopologyOn is a topology on a private RabbitMQ node, which the test may stop and kill.
func newProcessTopologyOn(t *testing.T, node *rabbitnode.Node) *processTopology {
	return &processTopology{url: node.URL(), prefix: "e2e.", dir: t.TempDir(), src: sharedBroker(t)}
}

// masterKey is the transport master key file every broker of the topology is given; the
// adapters' keys (of the adapter demo, which the routing table gives every service) are derived
// from it.
func (pt *processTopology) masterKey(t *testing.T) string {
	t.Helper()
	path := filepath.Join(pt.dir, "transport.key")
	if _, _, err := msgauth.LoadOrCreateMaster(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// pki is the development PKI every broker's data directory holds a copy of; the demo case
// registries read it.
func (pt *processTopology) pki() string { return pt.src.pki }

// brokerProcess is a started `siobroker serve`; e sends to it (sendArgs, asyncArgs).
type brokerProcess struct {
	*osProcess
	e e2eBroker
}

// startBrokerProcess starts `siobroker serve` as the given instance (its reply queue) over the
// data directory of that name, created with the PKI on first use, and waits until it listens. A
// second broker of one instance takes over the first's reply queue and data.
func (pt *processTopology) startBrokerProcess(t *testing.T, name, instance string) *brokerProcess {
	t.Helper()
	if pt.url == testAMQPURL {
		queue := pt.prefix + "sio.reply." + pt.prefix + instance
		t.Cleanup(func() { deleteQueue(queue) })
	}
	dataDir := filepath.Join(pt.dir, instance)
	if _, err := os.Stat(dataDir); os.IsNotExist(err) {
		copyDir(t, pt.src.pki, filepath.Join(dataDir, "pki"))
	}
	listen, opsListen := loopbackAddr(t), loopbackAddr(t)
	p := startProcess(t, name, []string{
		"SIOBROKER_TRANSPORT=amqp", "SIOBROKER_AMQP_URL=" + pt.url, "SIOBROKER_AMQP_PREFIX=" + pt.prefix, "SIOBROKER_AMQP_RECONNECT_MAX=2s",
		"SIOBROKER_AMQP_INSTANCE=" + pt.prefix + instance,
		"SIOBROKER_AMQP_IN_PROCESS_ADAPTERS=false", "SIOBROKER_LISTEN=" + listen,
		"SIOBROKER_DATA_DIR=" + dataDir, "SIOBROKER_LOG_LEVEL=info", "SIOBROKER_OPERATOR_LISTEN=" + opsListen,
		"SIOBROKER_AMQP_MESSAGE_KEY_FILE=" + pt.masterKey(t), // one master key for every broker of the topology
	}, "serve", "--config", "configs/broker.yaml", "--dev")
	p.waitFor(t, "siobroker listening on", time.Minute)
	bp := &brokerProcess{osProcess: p, e: *pt.src}
	bp.e.b, bp.e.pki = nil, filepath.Join(dataDir, "pki")
	bp.e.base, bp.e.opsBase = "http://"+listen, "http://"+opsListen
	bp.e.url = bp.e.base + bp.e.cfg.Endpoint
	return bp
}

// deleteQueue deletes a queue a test declared, if RabbitMQ can be reached.
func deleteQueue(name string) {
	conn, err := amqp091.Dial(testAMQPURL)
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		_, _ = ch.QueueDelete(name, false, false, false)
		_ = ch.Close()
	}
}

// startAdapterProcess writes an adapter config of the given name and services (YAML lines under
// `services:`, and any further top-level lines) and starts `siobroker adapter` with it.
func (pt *processTopology) startAdapterProcess(t *testing.T, name, body string) *osProcess {
	t.Helper()
	file := filepath.Join(pt.dir, name+".yaml")
	yaml := fmt.Sprintf("name: %s\ntransport: {amqp_url: %q, prefix: %q, prefetch: 1, concurrency: 1, reconnect_max: 2s, message_key_file: %q}\n",
		name, pt.url, pt.prefix, adapterKey(t, pt.masterKey(t), "demo")) + body
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, name, []string{"SIOBROKER_LOG_LEVEL=info"}, "adapter", "--config", file)
	p.waitFor(t, "serving services", time.Minute)
	return p
}

// caseRegistryAdapter serves the demo case registries (and service 1), so that the adapter
// processes a test kills are not the ones its case checks need.
func (pt *processTopology) caseRegistryAdapter(t *testing.T) {
	pt.startAdapterProcess(t, "registries", fmt.Sprintf("services:\n  1: {backend: demo}\ncase_registries: {names: [erdr, courts, aisoip], demo_pki: %q}\n", pt.pki()))
}

// vehicleAdapterBody serves service 5 from the source's path.
func vehicleAdapterBody(src *vehicleSource, path string) string {
	return fmt.Sprintf(`services:
  5:
    backend: http
    url: %q
    timeout: 20s
    record_type: vehicle
    records_path: data.vehicles
    fields: {plate_number: plate, vin: vin, make: make, year: year, registration_date: registered}
`, src.srv.URL+path)
}

// TestAdapterProcessKilledMidRequest: two adapter processes serve service 5 from the vehicle
// register, sharing a ledger. The one that took the request is killed with SIGKILL while the
// register is answering it; RabbitMQ gives the unacknowledged message to the other process (the
// dead one's claim in the ledger went with its lock session), which asks the register again, and
// the waiting client gets the answer.
func TestAdapterProcessKilledMidRequest(t *testing.T) {
	ledgerDSN := sharedJournalDSN(t)
	pt := newProcessTopology(t)
	src := newVehicleSource(t)
	b := pt.startBrokerProcess(t, "broker", "broker")
	pt.caseRegistryAdapter(t)
	adapters := map[string]*osProcess{}
	for _, name := range []string{"vehicles-a", "vehicles-b"} {
		adapters["/"+name] = pt.startAdapterProcess(t, name, vehicleAdapterBody(src, "/"+name)+fmt.Sprintf("ledger: {dsn: %q}\n", ledgerDSN))
	}

	u := b.e.user(t, devpki.KeyRSA, devpki.StatusValid)
	type sent struct {
		code     int
		out, err string
	}
	result := make(chan sent, 1)
	go func() {
		code, out, errs := runSend(t, b.e.sendArgs(u, "--services", "5")...)
		result <- sent{code, out, errs}
	}()

	victim := src.waitFirst(t, 30*time.Second)
	adapters[victim].kill(t)
	t.Logf("killed the adapter process behind %s while the register was answering it", victim)

	var got sent
	select {
	case got = <-result:
	case <-time.After(40 * time.Second):
		t.Fatal("no reply 40 s after the adapter process was killed")
	}
	if got.code != sendExitOK || !strings.Contains(got.out, "\nservice 5: ok ") || !strings.Contains(got.out, heldPlate) {
		t.Fatalf("send exited %d, want service 5 answered with the register's vehicle:\n%s%s", got.code, got.out, got.err)
	}
	for path := range adapters {
		if want := 1; src.callsTo(path) != want {
			t.Errorf("the register was asked %d times by %s, want %d (once by the killed process, once by the survivor)", src.callsTo(path), path, want)
		}
	}
}

// TestBrokerProcessKilledWithAsyncRequestInFlight: a request accepted on the asynchronous
// channel is not lost when its broker is killed with SIGKILL while the request's service is being
// answered. The answer, published meanwhile, waits on the broker's durable reply queue; a new
// broker process over the same data directory and instance resumes the request, and the client
// fetches the complete result. The register is asked once: the adapter recognises the resumed
// request's copy and answers it again from what it answered.
func TestBrokerProcessKilledWithAsyncRequestInFlight(t *testing.T) {
	pt := newProcessTopology(t)
	src := newVehicleSource(t)
	first := pt.startBrokerProcess(t, "broker-1", "broker")
	pt.caseRegistryAdapter(t)
	pt.startAdapterProcess(t, "vehicles", vehicleAdapterBody(src, "/vehicles"))

	u, _ := first.e.caseUser(t, siobroker.BasisCriminal)
	code, out, errOut := runSend(t, first.e.sendArgs(u, "--async", "--services", "5")...)
	if code != sendExitOK {
		t.Fatalf("send --async: exit %d\n%s%s", code, out, errOut)
	}
	id := strings.TrimSpace(out)

	src.waitFirst(t, 30*time.Second)
	first.kill(t)
	close(src.release) // the adapter answers to a reply queue nobody consumes now

	second := pt.startBrokerProcess(t, "broker-2", "broker")
	second.e.waitDelivered(t, u.IIN, id, 30*time.Second)
	code, out, errOut = runCmd(t, second.e.asyncArgs("fetch", u.IIN, id)...)
	if code != sendExitOK || !strings.Contains(out, "service 5: ok") || !strings.Contains(out, heldPlate) {
		t.Fatalf("fetch: exit %d, want service 5 answered with the register's vehicle\n%s%s", code, out, errOut)
	}
	if n := src.total.Load(); n != 1 {
		t.Errorf("the register was asked %d times, want once", n)
	}
}

// TestTwoBrokerAndThreeAdapterProcesses: two broker processes and three adapter processes share
// one RabbitMQ. Requests sent to both brokers at once are all answered, each by its own broker:
// an answer that reached the other broker would be a late answer there and a timeout here.
func TestTwoBrokerAndThreeAdapterProcesses(t *testing.T) {
	pt := newProcessTopology(t)
	brokers := []*brokerProcess{pt.startBrokerProcess(t, "broker-1", "broker-1"), pt.startBrokerProcess(t, "broker-2", "broker-2")}
	for i := range 3 {
		pt.startAdapterProcess(t, fmt.Sprintf("demo-%d", i), fmt.Sprintf(
			"services:\n  1: {backend: demo}\n  5: {backend: demo}\ncase_registries: {names: [erdr, courts, aisoip], demo_pki: %q}\n", pt.pki()))
	}

	u := brokers[0].e.user(t, devpki.KeyRSA, devpki.StatusValid)
	const perBroker = 6
	var wg sync.WaitGroup
	for _, b := range brokers {
		for range perBroker {
			wg.Go(func() {
				code, out, errs := runSend(t, b.e.sendArgs(u, "--services", "1,5")...)
				if code != sendExitOK || !strings.Contains(out, "\nservice 1: ok ") || !strings.Contains(out, "\nservice 5: ok ") {
					t.Errorf("send to %s exited %d, want services 1 and 5 answered:\n%s%s", b.name, code, out, errs)
				}
			})
		}
	}
	wg.Wait()

	for _, b := range brokers {
		families, err := metrics.Scrape(t.Context(), b.e.ops(t)+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if got := metricSum(families, metrics.Prefix+"service_answers_total"); got != 2*perBroker {
			t.Errorf("%s counted %v service answers, want %d (two services of each of its requests)", b.name, got, 2*perBroker)
		}
		if got := metricSum(families, metrics.Prefix+"service_late_answers_total"); got != 0 {
			t.Errorf("%s counted %v late answers, want none", b.name, got)
		}
	}
}

// metricSum is the sum of a counter's or gauge's values over all its labels.
func metricSum(families map[string]*dto.MetricFamily, name string) float64 {
	var sum float64
	if f, ok := families[name]; ok {
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// TestRabbitMQKilledUnderProcesses: a broker process and an adapter process on a private RabbitMQ
// node that is killed (SIGKILL, as in a crash) and started again. While it is down a request is
// refused with SIO-UNAVAILABLE; once it is back, both processes have reconnected by themselves,
// without a restart, and requests are answered again.
func TestRabbitMQKilledUnderProcesses(t *testing.T) {
	node := rabbitnode.Start(t)
	pt := newProcessTopologyOn(t, node)
	b := pt.startBrokerProcess(t, "broker", "broker")
	adapter := pt.startAdapterProcess(t, "registries", fmt.Sprintf("services:\n  1: {backend: demo}\ncase_registries: {names: [erdr, courts, aisoip], demo_pki: %q}\n", pt.pki()))
	u := b.e.user(t, devpki.KeyRSA, devpki.StatusValid)

	answered := func(within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			code, out, errs := runSend(t, b.e.sendArgs(u, "--services", "1")...)
			if code == sendExitOK && strings.Contains(out, "\nservice 1: ok ") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no answer within %s: send exited %d\n%s%s", within, code, out, errs)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	answered(30 * time.Second)

	// A quorum queue killed within seconds of its creation does not come back on RabbitMQ 3.10
	// (its consumers time out), which a deployment, whose queues are old, never sees: every
	// queue here was declared before the first answer (see quorumSettle).
	time.Sleep(quorumSettle)
	node.Kill()
	code, out, errs := runSend(t, b.e.sendArgs(u, "--services", "1")...)
	if code != sendExitFault || !strings.Contains(out, "SIO-UNAVAILABLE") {
		t.Fatalf("a request while RabbitMQ is down: exit %d, want the fault SIO-UNAVAILABLE\n%s%s", code, out, errs)
	}

	node.Start()
	answered(60 * time.Second)
	for _, p := range []*osProcess{b.osProcess, adapter} {
		select {
		case <-p.done:
			t.Errorf("%s exited during the outage", p.name)
		default:
		}
	}
}
