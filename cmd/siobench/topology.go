package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// setupFlags are the flags of both commands that describe what is started.
type setupFlags struct {
	// transport is what carries the broker's messages to its adapters: transportAMQP (RabbitMQ
	// and, with adapters "process", a separate adapter process) or transportEmbedded (the
	// embedded default of make run: in-process pub/sub and the demo adapters inside the broker).
	// Not a flag of its own: bench takes --transports, soak --transport.
	transport string
	siobroker string
	broker    string // the binary of the broker and adapter processes; "" is siobroker
	brokerDir string // their working directory, whose configs/ they read
	amqpURL   string
	adapters  string // "process" or "in-broker"
	queues    string // "quorum" or "classic"
	ledger    string // the adapter's ledger DSN; "" none
	// synchronous is the broker's store.synchronous (full or normal); "" leaves the
	// configuration's.
	synchronous string
	keep        bool
}

func (f *setupFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.siobroker, "siobroker", "bin/siobroker", "the siobroker binary to start (build it first: make build)")
	fs.StringVar(&f.broker, "broker-binary", "", "another siobroker binary for the broker and adapter processes (the load tool stays --siobroker), to compare two builds")
	fs.StringVar(&f.brokerDir, "broker-dir", ".", "the working directory of the broker and adapter processes: its configs/ are read (with --broker-binary, that build's checkout)")
	fs.StringVar(&f.amqpURL, "amqp-url", "amqp://guest:guest@127.0.0.1:5672/", "the RabbitMQ the broker and adapter use (on this machine)")
	fs.StringVar(&f.adapters, "adapters", "process", "process: a separate `siobroker adapter` process, as deployments run; in-broker: amqp.in_process_adapters")
	fs.StringVar(&f.queues, "queues", "quorum", "quorum (the broker's default) or classic queues")
	fs.StringVar(&f.ledger, "ledger", "", "a PostgreSQL DSN: the adapter process claims every request in this ledger (adapter config ledger.dsn), to measure its cost; its rows stay there, pruned after 7 days")
	fs.StringVar(&f.synchronous, "synchronous", "", "the broker's store.synchronous, full or normal, to compare the two on the whole pipeline; empty: as configs/broker.yaml sets it")
	fs.BoolVar(&f.keep, "keep", false, "keep the temporary directory (logs, data, reports) instead of deleting it")
}

// The transports a topology can run on.
const (
	transportAMQP     = "amqp"
	transportEmbedded = "embedded"
)

func (f *setupFlags) validate() error {
	if f.transport == "" {
		f.transport = transportAMQP
	}
	if f.transport != transportAMQP && f.transport != transportEmbedded {
		return fmt.Errorf("transport %q: use %s or %s", f.transport, transportEmbedded, transportAMQP)
	}
	if f.adapters != "process" && f.adapters != "in-broker" {
		return fmt.Errorf("--adapters %q: use process or in-broker", f.adapters)
	}
	if f.ledger != "" && f.adapters != "process" {
		return fmt.Errorf("--ledger needs --adapters process: the broker's own adapters keep no ledger")
	}
	if f.synchronous != "" && f.synchronous != "full" && f.synchronous != "normal" {
		return fmt.Errorf("--synchronous %q: use full or normal", f.synchronous)
	}
	if f.queues != "quorum" && f.queues != "classic" {
		return fmt.Errorf("--queues %q: use quorum or classic", f.queues)
	}
	if !strings.Contains(f.amqpURL, "@127.") && !strings.Contains(f.amqpURL, "@localhost") {
		return fmt.Errorf("--amqp-url must name a RabbitMQ on this machine (127.0.0.0/8 or localhost)")
	}
	if _, err := os.Stat(f.siobroker); err != nil {
		return fmt.Errorf("--siobroker: %w (run make build)", err)
	}
	if f.broker == "" {
		f.broker = f.siobroker
	}
	if _, err := os.Stat(f.broker); err != nil {
		return fmt.Errorf("--broker-binary: %w", err)
	}
	return nil
}

// adaptedServices are the services the benchmark asks for: a request asks for services 1..N.
const adaptedServices = 10

// topology is a started broker and, unless the adapters run in it, an adapter process.
type topology struct {
	f          setupFlags
	dir        string // the temporary directory: data, logs, reports
	prefix     string // the queue prefix, unique to this run
	instance   string
	endpoint   string // the broker's SOAP endpoint
	metrics    string // the broker's /metrics, on its operator listener
	debugAddr  string // the broker's operator listener: /metrics, and pprof and expvar (debug.pprof)
	broker     *process
	adapter    *process
	adapterKey string // the adapter process's transport key file
}

// process is a started child and its log files.
type process struct {
	name string
	cmd  *exec.Cmd
	out  string // its standard output, for the readiness line
	done chan struct{}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// startTopology starts the broker (which declares the queues) and then the adapter, and returns
// once both are serving.
func startTopology(ctx context.Context, f setupFlags, log io.Writer) (_ *topology, err error) {
	dir, err := os.MkdirTemp("", "siobench-")
	if err != nil {
		return nil, err
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	t := &topology{f: f, dir: dir, prefix: "siobench" + hex.EncodeToString(b[:]) + ".", instance: "bench"}
	defer func() {
		if err != nil {
			t.stop(log)
		}
	}()
	listen, err := freePort()
	if err != nil {
		return nil, err
	}
	if t.debugAddr, err = freePort(); err != nil {
		return nil, err
	}
	t.endpoint = "http://" + listen + "/SyncChannel/v10"
	t.metrics = "http://" + t.debugAddr + "/metrics"
	env := []string{
		"SIOBROKER_LISTEN=" + listen, "SIOBROKER_DATA_DIR=" + filepath.Join(dir, "data"),
		"SIOBROKER_OPERATOR_LISTEN=" + t.debugAddr, "SIOBROKER_DEBUG_PPROF=true", "SIOBROKER_LOG_LEVEL=warn",
		// The loads come from one address and one signer at hundreds of requests a second, past
		// the per-address and per-signer defaults on purpose: they measure the pipeline, so the
		// limits are off (0) here. The limiter's own cost is a map look-up per request.
		"SIOBROKER_HTTP_LIMITS_PER_CLIENT_RATE=0", "SIOBROKER_HTTP_LIMITS_PER_CLIENT_CONNECTIONS=0",
		"SIOBROKER_HTTP_LIMITS_PER_SIGNER_RATE=0", "SIOBROKER_HTTP_LIMITS_PER_SIGNER_CONCURRENT=0",
	}
	if f.transport == transportAMQP {
		env = append(env, "SIOBROKER_TRANSPORT=amqp", "SIOBROKER_AMQP_URL="+f.amqpURL, "SIOBROKER_AMQP_PREFIX="+t.prefix,
			"SIOBROKER_AMQP_INSTANCE="+t.instance, "SIOBROKER_AMQP_CLASSIC_QUEUES="+strconv.FormatBool(f.queues == "classic"),
			"SIOBROKER_AMQP_IN_PROCESS_ADAPTERS="+strconv.FormatBool(f.adapters == "in-broker"))
	} else {
		env = append(env, "SIOBROKER_TRANSPORT=gochannel")
	}
	if f.synchronous != "" {
		env = append(env, "SIOBROKER_STORE_SYNCHRONOUS="+f.synchronous)
	}
	if f.transport == transportAMQP {
		fmt.Fprintf(log, "siobench: %s: broker on %s (metrics and pprof on %s), queues %s%s (%s), adapters: %s\n", dir, listen, t.debugAddr, t.prefix, "sio.*", f.queues, f.adapters)
	} else {
		fmt.Fprintf(log, "siobench: %s: broker on %s (metrics and pprof on %s), embedded: in-process pub/sub and demo adapters\n", dir, listen, t.debugAddr)
	}
	// --dev: the broker signs with the development PKI the adapter's demo case registries read.
	if t.broker, err = t.start(ctx, "broker", env, "serve", "--config", "configs/broker.yaml", "--dev"); err != nil {
		return nil, err
	}
	if err := t.broker.waitFor(ctx, "listening on", time.Minute); err != nil {
		return nil, err
	}
	if f.transport == transportAMQP && f.adapters == "process" {
		// The adapter's key, from the master key the broker made in its data directory; the
		// routing table gives the services to the adapter demo.
		key := filepath.Join(dir, "adapter.key")
		derive := exec.CommandContext(ctx, t.f.broker, "transport-key", "derive", "--master", filepath.Join(dir, "data", "transport.key"),
			"--adapter", "demo", "--out", key)
		derive.Dir = t.f.brokerDir
		if out, err := derive.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("derive the adapter's key: %w: %s", err, out)
		}
		t.adapterKey = key
		cfg := filepath.Join(dir, "adapter.yaml")
		if err := os.WriteFile(cfg, []byte(t.adapterConfig()), 0o600); err != nil {
			return nil, err
		}
		if t.adapter, err = t.start(ctx, "adapter", nil, "adapter", "--config", cfg); err != nil {
			return nil, err
		}
		if err := t.adapter.waitFor(ctx, "serving services", time.Minute); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// adapterConfig serves services 1..adaptedServices from the demo world the broker generates, and
// the demo case registries from the broker's development PKI, with the concurrency of the
// broker's default.
func (t *topology) adapterConfig() string {
	var services []string
	for n := 1; n <= adaptedServices; n++ {
		services = append(services, fmt.Sprintf("%d: {backend: demo}", n))
	}
	cfg := fmt.Sprintf(`name: siobench-adapter
transport: {amqp_url: %q, prefix: %q, prefetch: 16, concurrency: 8, message_key_file: %q}
services: {%s}
case_registries: {names: [erdr, courts, aisoip], demo_pki: %q}
demo: {seed: 1, people: 200, organisations: 50}
`, t.f.amqpURL, t.prefix, t.adapterKey, strings.Join(services, ", "), t.pki())
	if t.f.ledger != "" {
		cfg += fmt.Sprintf("ledger: {dsn: %q}\n", t.f.ledger)
	}
	return cfg
}

func (t *topology) pki() string { return filepath.Join(t.dir, "data", "pki") }

func (t *topology) start(ctx context.Context, name string, env []string, args ...string) (*process, error) {
	p := &process{name: name, out: filepath.Join(t.dir, name+".out"), done: make(chan struct{})}
	out, err := os.Create(p.out)
	if err != nil {
		return nil, err
	}
	errf, err := os.Create(filepath.Join(t.dir, name+".err"))
	if err != nil {
		out.Close()
		return nil, err
	}
	p.cmd = exec.Command(t.f.broker, args...)
	p.cmd.Dir = t.f.brokerDir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = out, errf
	// If siobench itself is killed, its children go with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		out.Close()
		errf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		out.Close()
		errf.Close()
		close(p.done)
	}()
	return p, nil
}

// waitFor waits until the process prints line on its standard output.
func (p *process) waitFor(ctx context.Context, line string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if data, _ := os.ReadFile(p.out); bytes.Contains(data, []byte(line)) {
			return nil
		}
		select {
		case <-p.done:
			errs, _ := os.ReadFile(strings.TrimSuffix(p.out, ".out") + ".err")
			return fmt.Errorf("%s exited before it was ready: %s", p.name, lastLines(errs, 5))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s", p.name, limit)
}

// stopProcess asks p to stop (SIGTERM, a graceful shutdown) and kills it after 20 s.
func stopProcess(p *process) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stop stops the adapter, then the broker, deletes the run's queues and exchange, and removes the
// temporary directory unless --keep.
func (t *topology) stop(log io.Writer) {
	stopProcess(t.adapter)
	stopProcess(t.broker)
	if t.f.transport == transportAMQP {
		if err := t.deleteQueues(); err != nil {
			fmt.Fprintf(log, "siobench: deleting the queues %s*: %v\n", t.prefix, err)
		}
	}
	if t.f.keep {
		fmt.Fprintf(log, "siobench: kept %s\n", t.dir)
		return
	}
	_ = os.RemoveAll(t.dir)
}

// deleteQueues deletes what the broker declared under this run's prefix.
func (t *topology) deleteQueues() error {
	conn, err := amqp091.DialConfig(t.f.amqpURL, amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
	if err != nil {
		return err
	}
	defer conn.Close()
	queues := []string{"sio.dlq", "sio.reply." + t.instance, "sio.registry.erdr", "sio.registry.courts", "sio.registry.aisoip"}
	for n := 1; n <= 93; n++ {
		queues = append(queues, fmt.Sprintf("sio.service.%03d", n))
	}
	var errs []error
	for _, q := range queues {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		if _, err := ch.QueueDelete(t.prefix+q, false, false, false); err != nil {
			errs = append(errs, err) // a missing queue closes only this channel
			continue
		}
		_ = ch.Close()
	}
	if ch, err := conn.Channel(); err == nil {
		errs = append(errs, ch.ExchangeDelete(t.prefix+"sio.dlx", false, false))
		_ = ch.Close()
	}
	return errors.Join(errs...)
}

// freePort returns a loopback address with a port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func lastLines(data []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
