package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// `siobench --cluster` (issue 20): throughput, latency and CPU per request against the number of
// broker and adapter processes on this machine. For each combination of --cluster-brokers and
// --cluster-adapters it starts that many brokers (one PostgreSQL journal, --journal-dsn, as
// brokers of one deployment share) and adapter processes (the demo backend for services
// 1..10 and the case registries), runs one closed-loop load per broker at the same time
// (--concurrency each, --services of the first value, --duration), meters the CPU time of every
// process over the loads, stops everything and deletes the queues. docs/deployment.md derives
// its sizing table from these figures.

// clusterFlags are the flags of --cluster.
type clusterFlags struct {
	clusterBrokers, clusterAdapters []int
	journalDSN                      string
}

func (c *clusterFlags) registerCluster(fs *flag.FlagSet, brokers, adapters *string) {
	fs.StringVar(brokers, "cluster-brokers", "1,2", "with --cluster: the numbers of broker processes to measure")
	fs.StringVar(adapters, "cluster-adapters", "1,2,4", "with --cluster: the numbers of adapter processes to measure")
	fs.StringVar(&c.journalDSN, "journal-dsn", "", "with --cluster: the PostgreSQL journal the brokers share (journal.dsn), e.g. postgres://127.0.0.1:5432/test?search_path=siobench; records stay there")
}

func (c *clusterFlags) parse(brokers, adapters string) error {
	var errs []error
	for _, p := range []struct {
		text string
		into *[]int
		name string
	}{{brokers, &c.clusterBrokers, "--cluster-brokers"}, {adapters, &c.clusterAdapters, "--cluster-adapters"}} {
		for s := range strings.SplitSeq(p.text, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 || n > 16 {
				errs = append(errs, fmt.Errorf("%s: %q is not 1..16", p.name, s))
				continue
			}
			*p.into = append(*p.into, n)
		}
	}
	if c.journalDSN == "" {
		errs = append(errs, errors.New("--cluster needs --journal-dsn: the brokers share a PostgreSQL journal"))
	}
	return errors.Join(errs...)
}

// clusterRun is one combination's figures.
type clusterRun struct {
	Brokers    int            `json:"brokers"`
	Adapters   int            `json:"adapters"`
	Seconds    float64        `json:"elapsed_s"`
	Answered   int            `json:"answered"`
	Throughput float64        `json:"throughput_per_s"` // answered per second, over every broker
	P50Ms      float64        `json:"p50_ms"`           // the mean of the brokers' p50
	P99Ms      float64        `json:"p99_ms"`           // the worst broker's p99
	Errors     map[string]int `json:"errors"`
	// CPU is the CPU seconds each kind of process used over the loads: broker and adapter (all
	// of them), rabbitmq, load tool, others (the rest of the machine).
	CPU map[string]float64 `json:"cpu_s"`
	// CPUPerProcess is each broker's and adapter's CPU seconds, by process name.
	CPUPerProcess map[string]float64 `json:"cpu_per_process_s"`
	BusyCores     float64            `json:"busy_cores"` // the machine's, over the loads
}

type clusterResult struct {
	Machine machine           `json:"machine"`
	Flags   map[string]string `json:"flags"`
	Runs    []clusterRun      `json:"runs"`
	Started time.Time         `json:"started"`
	Took    time.Duration     `json:"took_ns"`
}

func runCluster(ctx context.Context, f benchFlags, c clusterFlags, log io.Writer) (*clusterResult, error) {
	res := &clusterResult{Machine: describeMachine(f.siobroker), Started: time.Now(), Flags: map[string]string{
		"duration": f.duration.String(), "concurrency per broker": strconv.Itoa(f.concurrency), "services": strconv.Itoa(f.services[0]),
		"warmup": f.warmup.String()}}
	res.Machine.RabbitMQ = rabbitVersion(f.amqpURL)
	for _, b := range c.clusterBrokers {
		for _, a := range c.clusterAdapters {
			run, err := clusterCombination(ctx, f, c, b, a, log)
			if err != nil {
				return nil, fmt.Errorf("%d brokers, %d adapters: %w", b, a, err)
			}
			res.Runs = append(res.Runs, run)
		}
	}
	res.Took = time.Since(res.Started)
	return res, nil
}

// clusterCombination starts brokers brokers and adapters adapter processes, loads them, and stops
// them.
func clusterCombination(ctx context.Context, f benchFlags, c clusterFlags, brokers, adapters int, log io.Writer) (_ clusterRun, err error) {
	run := clusterRun{Brokers: brokers, Adapters: adapters, Errors: map[string]int{}, CPUPerProcess: map[string]float64{}}
	dir, err := os.MkdirTemp("", "siobench-cluster-")
	if err != nil {
		return run, err
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	t := &topology{f: f.setupFlags, dir: dir, prefix: "siobench" + hex.EncodeToString(b[:]) + "."}
	var procs []*process
	var instances []string
	defer func() {
		for _, p := range slices.Backward(procs) {
			stopProcess(p)
		}
		if derr := deleteClusterQueues(f.amqpURL, t.prefix, instances); derr != nil {
			fmt.Fprintf(log, "siobench: deleting the queues %s*: %v\n", t.prefix, derr)
		}
		if f.keep {
			fmt.Fprintf(log, "siobench: kept %s\n", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}()
	fmt.Fprintf(log, "siobench: cluster: %d broker(s), %d adapter(s) in %s\n", brokers, adapters, dir)

	var endpoints []string
	masterKey := filepath.Join(dir, "data-1", "transport.key")
	for i := 1; i <= brokers; i++ {
		data := filepath.Join(dir, fmt.Sprintf("data-%d", i))
		if i > 1 {
			// The same PKI, master key and demo subjects as the first: brokers of one deployment.
			if err := copyTree(filepath.Join(dir, "data-1", "pki"), filepath.Join(data, "pki")); err != nil {
				return run, err
			}
		}
		listen, err := freePort()
		if err != nil {
			return run, err
		}
		ops, err := freePort()
		if err != nil {
			return run, err
		}
		instance := fmt.Sprintf("bench-%d", i)
		instances = append(instances, instance)
		env := []string{
			"SIOBROKER_TRANSPORT=amqp", "SIOBROKER_AMQP_URL=" + f.amqpURL, "SIOBROKER_AMQP_PREFIX=" + t.prefix,
			"SIOBROKER_AMQP_INSTANCE=" + instance, "SIOBROKER_AMQP_IN_PROCESS_ADAPTERS=false",
			"SIOBROKER_LISTEN=" + listen, "SIOBROKER_DATA_DIR=" + data, "SIOBROKER_OPERATOR_LISTEN=" + ops, "SIOBROKER_LOG_LEVEL=warn",
			"SIOBROKER_JOURNAL_DRIVER=postgres", "SIOBROKER_JOURNAL_DSN=" + c.journalDSN,
			"SIOBROKER_HTTP_LIMITS_PER_CLIENT_RATE=0", "SIOBROKER_HTTP_LIMITS_PER_CLIENT_CONNECTIONS=0",
			"SIOBROKER_HTTP_LIMITS_PER_SIGNER_RATE=0", "SIOBROKER_HTTP_LIMITS_PER_SIGNER_CONCURRENT=0",
		}
		if i > 1 {
			env = append(env, "SIOBROKER_AMQP_MESSAGE_KEY_FILE="+masterKey)
		}
		p, err := t.start(ctx, fmt.Sprintf("broker-%d", i), env, "serve", "--config", "configs/broker.yaml", "--dev")
		if err != nil {
			return run, err
		}
		procs = append(procs, p)
		if err := p.waitFor(ctx, "listening on", 2*time.Minute); err != nil {
			return run, err
		}
		endpoints = append(endpoints, "http://"+listen+"/SyncChannel/v10")
	}
	t.adapterKey = filepath.Join(dir, "adapter.key")
	derive := exec.CommandContext(ctx, f.broker, "transport-key", "derive", "--master", masterKey, "--adapter", "demo", "--out", t.adapterKey)
	derive.Dir = f.brokerDir
	if out, err := derive.CombinedOutput(); err != nil {
		return run, fmt.Errorf("derive the adapters' key: %w: %s", err, out)
	}
	// t.pki() is data/pki: the adapters read the first broker's.
	cfg := strings.Replace(t.adapterConfig(), filepath.Join(dir, "data", "pki"), filepath.Join(dir, "data-1", "pki"), 1)
	for i := 1; i <= adapters; i++ {
		file := filepath.Join(dir, fmt.Sprintf("adapter-%d.yaml", i))
		text := strings.Replace(cfg, "name: siobench-adapter", fmt.Sprintf("name: siobench-adapter-%d", i), 1)
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			return run, err
		}
		p, err := t.start(ctx, fmt.Sprintf("adapter-%d", i), nil, "adapter", "--config", file)
		if err != nil {
			return run, err
		}
		procs = append(procs, p)
		if err := p.waitFor(ctx, "serving services", 2*time.Minute); err != nil {
			return run, err
		}
	}

	pki := filepath.Join(dir, "data-1", "pki")
	services := strconv.Itoa(f.services[0])
	if _, err := clusterLoads(ctx, f, t, endpoints, pki, log, "--services", services, "--concurrency", strconv.Itoa(f.concurrency),
		"--duration", f.warmup.String()); err != nil {
		return run, fmt.Errorf("warm-up: %w", err)
	}
	pids := map[string][]int{"rabbitmq": rabbitPIDs(f.amqpURL)}
	for _, p := range procs {
		kind, _, _ := strings.Cut(p.name, "-")
		pids[kind] = append(pids[kind], p.pid())
		pids[p.name] = []int{p.pid()}
	}
	var meter *cpuMeter
	var busy0 float64
	var started time.Time
	reports, err := clusterLoads(ctx, f, t, endpoints, pki, log, "--services", services, "--concurrency", strconv.Itoa(f.concurrency),
		"--duration", f.duration.String(), "--presign", strconv.Itoa(presignCount(500, f.duration)), "--skip-verify",
		"--on-sending", func() { meter, busy0, started = newCPUMeter(pids), machineBusy(), time.Now() })
	if err != nil {
		return run, err
	}
	used, busy := meter.used(), machineBusy()-busy0
	run.Seconds = time.Since(started).Seconds()
	run.BusyCores = busy / run.Seconds
	run.CPU = map[string]float64{"broker": used["broker"], "adapter": used["adapter"], "rabbitmq": used["rabbitmq"]}
	for _, p := range procs {
		run.CPUPerProcess[p.name] = used[p.name]
	}
	var p50 float64
	for _, r := range reports {
		run.Answered += r.Answered
		run.Throughput += r.Throughput
		p50 += r.P50Ms
		run.P99Ms = max(run.P99Ms, r.P99Ms)
		run.CPU["load tool"] += r.ClientCPUSeconds
		for k, v := range r.Errors {
			run.Errors[k] += v
		}
	}
	run.P50Ms = p50 / float64(len(reports))
	ours := 0.0
	for _, v := range run.CPU {
		ours += v
	}
	run.CPU["others"] = max(0, busy-ours)
	return run, nil
}

// clusterLoads runs one `siobroker load` per endpoint at once and returns their reports. An
// argument "--on-sending" followed by a func() is not passed on: the func is called once every
// load has signed its requests and started sending.
func clusterLoads(ctx context.Context, f benchFlags, t *topology, endpoints []string, pki string, log io.Writer, args ...any) ([]loadReport, error) {
	var pass []string
	var onSending func()
	for i := 0; i < len(args); i++ {
		if args[i] == "--on-sending" {
			onSending = args[i+1].(func())
			i++
			continue
		}
		pass = append(pass, args[i].(string))
	}
	var wg sync.WaitGroup
	reports := make([]loadReport, len(endpoints))
	errs := make([]error, len(endpoints))
	var sendingWG sync.WaitGroup
	sendingWG.Add(len(endpoints))
	allSending := make(chan struct{})
	go func() { sendingWG.Wait(); close(allSending) }()
	for i, ep := range endpoints {
		file := filepath.Join(t.dir, fmt.Sprintf("load-%d-%d.json", i, time.Now().UnixNano()))
		cmd := exec.CommandContext(ctx, f.siobroker, append([]string{"load", "--url", ep, "--pki", pki, "--user", f.user, "--json", file}, pass...)...)
		out, err := os.Create(filepath.Join(t.dir, fmt.Sprintf("load-%d.log", i)))
		if err != nil {
			return nil, err
		}
		sending := &lineWatcher{prefix: "sending for ", seen: make(chan struct{})}
		cmd.Stdout, cmd.Stderr = io.MultiWriter(out, sending), out
		if err := cmd.Start(); err != nil {
			out.Close()
			return nil, err
		}
		done := make(chan struct{})
		wg.Go(func() {
			defer out.Close()
			errs[i] = cmd.Wait()
			close(done)
			if errs[i] == nil {
				data, err := os.ReadFile(file)
				if err == nil {
					err = json.Unmarshal(data, &reports[i])
				}
				errs[i] = err
			}
		})
		go func() {
			select {
			case <-sending.seen:
			case <-done:
			}
			sendingWG.Done()
		}()
	}
	if onSending != nil {
		<-allSending
		onSending()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("load on %s: %w (logs in %s; --keep keeps them)", endpoints[i], err, t.dir)
		}
	}
	fmt.Fprintf(log, "siobench: %d load(s) done\n", len(endpoints))
	return reports, nil
}

// copyTree copies the regular files of directory from into to.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
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
}

// deleteClusterQueues deletes what the brokers of a combination declared under prefix.
func deleteClusterQueues(amqpURL, prefix string, instances []string) error {
	conn, err := amqp091.DialConfig(amqpURL, amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
	if err != nil {
		return err
	}
	defer conn.Close()
	queues := []string{"sio.dlq", "sio.registry.erdr", "sio.registry.courts", "sio.registry.aisoip"}
	for _, in := range instances {
		queues = append(queues, "sio.reply."+in)
	}
	for n := 1; n <= 93; n++ {
		queues = append(queues, fmt.Sprintf("sio.service.%03d", n))
	}
	var errs []error
	for _, q := range queues {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		if _, err := ch.QueueDelete(prefix+q, false, false, false); err != nil {
			errs = append(errs, err)
			continue
		}
		_ = ch.Close()
	}
	if ch, err := conn.Channel(); err == nil {
		errs = append(errs, ch.ExchangeDelete(prefix+"sio.dlx", false, false), ch.ExchangeDelete(prefix+"sio.replies", false, false))
		_ = ch.Close()
	}
	return errors.Join(errs...)
}

// write prints the cluster figures as Markdown: per combination, throughput and latency, and
// the CPU milliseconds per answered request of each kind of process and of one process.
func (r *clusterResult) write(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\n## siobench --cluster, %s (took %s)\n\n", r.Started.Format("2006-01-02 15:04 MST"), r.Took.Round(time.Second))
	fmt.Fprintf(w, "Machine: %d cores (%s), RabbitMQ %s (one node, on this machine), siobroker %s; load average at the start %s. "+
		"Each broker gets its own closed-loop load of %s requests in flight, %s service(s) per request, for %s after a %s warm-up; "+
		"the brokers share a PostgreSQL journal.\n\n",
		m.Cores, m.CPU, m.RabbitMQ, m.Siobroker, m.LoadAverage, r.Flags["concurrency per broker"], r.Flags["services"], r.Flags["duration"], r.Flags["warmup"])
	fmt.Fprintln(w, "| brokers | adapters | req/s | p50 ms | p99 ms | errors | CPU ms/req: brokers | adapters | RabbitMQ | load tool | others | one broker | one adapter | busy cores |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, run := range r.Runs {
		per := func(s float64) string {
			if run.Answered == 0 {
				return "–"
			}
			return fmt.Sprintf("%.2f", s*1000/float64(run.Answered))
		}
		var oneBroker, oneAdapter float64
		for name, s := range run.CPUPerProcess {
			switch {
			case strings.HasPrefix(name, "broker-"):
				oneBroker += s / float64(run.Brokers)
			case strings.HasPrefix(name, "adapter-"):
				oneAdapter += s / float64(run.Adapters)
			}
		}
		fmt.Fprintf(w, "| %d | %d | %.0f | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %.2f |\n",
			run.Brokers, run.Adapters, run.Throughput, run.P50Ms, run.P99Ms, errorsText(run.Errors),
			per(run.CPU["broker"]), per(run.CPU["adapter"]), per(run.CPU["rabbitmq"]), per(run.CPU["load tool"]), per(run.CPU["others"]),
			per(oneBroker), per(oneAdapter), run.BusyCores)
	}
	fmt.Fprintln(w, "\nCPU ms/req is CPU time over the load divided by the requests answered: for all brokers, all adapters, RabbitMQ, "+
		"the load tools, and the rest of the machine; \"one broker\" and \"one adapter\" are the mean of one process. "+
		"A request's services are answered by the adapters, so their CPU per request grows with --services.")
}
