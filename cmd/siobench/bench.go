package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/config"
)

// loadReport is the JSON report of `siobroker load --json`.
type loadReport struct {
	Services           int            `json:"services"`
	Concurrency        int            `json:"concurrency"`
	Rate               float64        `json:"rate"`
	User               string         `json:"user"`
	Presigned          int            `json:"presigned"`
	VerifiedReplies    bool           `json:"verified_replies"`
	ElapsedSeconds     float64        `json:"elapsed_s"`
	Requests           int            `json:"requests"`
	Answered           int            `json:"answered"`
	Throughput         float64        `json:"throughput_per_s"`
	P50Ms              float64        `json:"p50_ms"`
	P95Ms              float64        `json:"p95_ms"`
	P99Ms              float64        `json:"p99_ms"`
	MaxMs              float64        `json:"max_ms"`
	Errors             map[string]int `json:"errors"`
	BrokerRSSBeforeKiB int64          `json:"broker_rss_before_kib"`
	BrokerRSSAfterKiB  int64          `json:"broker_rss_after_kib"`
	BrokerCPUSeconds   float64        `json:"broker_cpu_s"`
	ClientCPUSeconds   float64        `json:"client_cpu_s"`
}

// loadRun is one load and the CPU time every party used during it.
type loadRun struct {
	Name string `json:"name"`
	// Transport is the topology's: transportEmbedded or transportAMQP.
	Transport string `json:"transport"`
	// HalfRate marks the open-loop loads at half the closed-loop throughput, whose p99 is a
	// target; the others are closed loops.
	HalfRate bool               `json:"half_rate,omitempty"`
	Report   loadReport         `json:"report"`
	CPU      map[string]float64 `json:"cpu_s"` // broker, adapter, rabbitmq, load tool, others
	// BrokerAllocBytes is what the broker process allocated over the load (runtime.MemStats
	// TotalAlloc, all its goroutines: the requests and its background jobs alike); 0 when its
	// expvar could not be read.
	BrokerAllocBytes uint64 `json:"broker_alloc_bytes,omitempty"`
	// Stages are the broker's stage histograms over the load's window (empty when its metrics
	// could not be read).
	Stages []stageFigure `json:"stages,omitempty"`
}

// benchFlags are the flags of the benchmark.
type benchFlags struct {
	setupFlags
	duration time.Duration
	// latencyDuration is the half-rate load's: its p99 is the figure of a target, and at about
	// 100/s the p99 of 20 s is the 20th-worst of 2,000 requests, which moved from 37 to 90 ms
	// between runs of the same build.
	latencyDuration time.Duration
	// latencyRuns is how many half-rate loads each topology runs: the p99 target holds in each.
	latencyRuns int
	// transports are the topologies measured, in order (transportEmbedded, transportAMQP).
	transports   []string
	warmup       time.Duration
	concurrency  int
	services     []int
	baselineTime time.Duration
	journalTime  time.Duration // -benchtime of each of the journal commit benchmark's four cases
	reportRows   int           // the request index entries of the report benchmark
	cores        int
	user         string
	presign      bool
	skipVerify   bool
	out          string
	goTool       string
	profile      string
	profileHalf  string
	// cluster: measure the combinations of brokers and adapters instead (cluster.go).
	cluster bool
	clusterFlags
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f benchFlags
	var services, transports string
	fs := flag.NewFlagSet("siobench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs)
	fs.DurationVar(&f.duration, "duration", 20*time.Second, "each load's duration")
	fs.DurationVar(&f.latencyDuration, "latency-duration", time.Minute, "the duration of the open-loop load at half the one-service throughput, whose p99 is a target")
	fs.IntVar(&f.latencyRuns, "latency-runs", 3, "how many half-rate loads each topology runs (the p99 target holds in each)")
	fs.StringVar(&transports, "transports", transportEmbedded+","+transportAMQP, "the topologies measured: embedded (the embedded default of make run: in-process pub/sub, the demo adapters in the broker) and amqp (RabbitMQ, with the adapters as --adapters says)")
	fs.DurationVar(&f.warmup, "warmup", 3*time.Second, "an unrecorded load first (connections, caches)")
	fs.IntVar(&f.concurrency, "concurrency", 8, "requests in flight in the closed-loop loads, and in the raw RabbitMQ baseline")
	fs.StringVar(&services, "services", "1,10", "the services-per-request of the closed-loop loads; the first one is also run at half its throughput")
	fs.DurationVar(&f.baselineTime, "baseline-time", 5*time.Second, "-benchtime of each baseline (each is run before and after the loads)")
	fs.DurationVar(&f.journalTime, "journal-time", 2*time.Second, "-benchtime of each case of the journal commit baseline (synchronous full and normal, 1 and --concurrency in flight)")
	fs.IntVar(&f.reportRows, "report-rows", 1_000_000, "the request index entries of the organisation the report benchmark reports on (0: no report benchmark)")
	fs.IntVar(&f.cores, "cores", runtime.NumCPU(), "GOMAXPROCS of the baselines: the cores the broker has")
	fs.StringVar(&f.user, "user", "900114302034", "the demo user the load tool signs as (ECDSA P-256: the cheapest signature for the tool)")
	fs.BoolVar(&f.presign, "presign", true, "sign the requests before each load's clock starts")
	fs.BoolVar(&f.skipVerify, "skip-verify", true, "the load tool does not verify replies (the warm-up verifies them)")
	fs.StringVar(&f.out, "out", "", "also write the summary (Markdown) and every figure (JSON, FILE.json) to FILE")
	fs.StringVar(&f.goTool, "go", "go", "the go command, to build the baseline test binaries")
	fs.StringVar(&f.profile, "profile", "", "write a CPU profile of the broker during the first closed-loop load to FILE (go tool pprof FILE)")
	fs.StringVar(&f.profileHalf, "profile-half-rate", "", "write a CPU profile of the broker during the first half-rate load to FILE, where fixed costs are not amortised")
	var clusterBrokers, clusterAdapters string
	fs.BoolVar(&f.cluster, "cluster", false, "measure throughput, latency and CPU per request against the number of brokers and adapter processes (--cluster-brokers, --cluster-adapters, --journal-dsn) instead")
	f.registerCluster(fs, &clusterBrokers, &clusterAdapters)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 2
	}
	for s := range strings.SplitSeq(services, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > adaptedServices {
			fmt.Fprintf(stderr, "siobench: --services: %q is not 1..%d\n", s, adaptedServices)
			return 2
		}
		f.services = append(f.services, n)
	}
	for s := range strings.SplitSeq(transports, ",") {
		s = strings.TrimSpace(s)
		if s != transportEmbedded && s != transportAMQP || slices.Contains(f.transports, s) {
			fmt.Fprintf(stderr, "siobench: --transports: %q is not %s or %s, or named twice\n", s, transportEmbedded, transportAMQP)
			return 2
		}
		f.transports = append(f.transports, s)
	}
	if f.cluster {
		f.transports = []string{transportAMQP}
	}
	f.transport = f.transports[0]
	if err := f.validate(); err != nil {
		fmt.Fprintf(stderr, "siobench: %v\n", err)
		return 2
	}
	if f.latencyRuns < 1 || f.latencyRuns > 10 {
		fmt.Fprintln(stderr, "siobench: --latency-runs 1..10")
		return 2
	}
	if f.duration <= 0 || f.duration > time.Hour || f.latencyDuration <= 0 || f.latencyDuration > time.Hour || f.concurrency < 1 || f.cores < 1 || f.baselineTime <= 0 || f.journalTime <= 0 || len(f.services) == 0 || f.reportRows < 0 {
		fmt.Fprintln(stderr, "siobench: --duration 0..1h, --concurrency ≥ 1, --cores ≥ 1, --baseline-time > 0, --services not empty, --report-rows ≥ 0")
		return 2
	}
	if f.cluster {
		if err := f.clusterFlags.parse(clusterBrokers, clusterAdapters); err != nil {
			fmt.Fprintf(stderr, "siobench: %v\n", err)
			return 2
		}
		res, err := runCluster(ctx, f, f.clusterFlags, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "siobench: %v\n", err)
			return 1
		}
		return printSummary("siobench", res, f.out, stdout, stderr)
	}
	res, err := runBench(ctx, f, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "siobench: %v\n", err)
		return 1
	}
	return printSummary("siobench", res, f.out, stdout, stderr)
}

// printSummary prints res's summary (Markdown) and, with --out, writes it to out and every figure
// (JSON) to out.json; it returns the exit code of the command (cmd, in its error message).
func printSummary(cmd string, res interface{ write(io.Writer) }, out string, stdout, stderr io.Writer) int {
	var md strings.Builder
	res.write(&md)
	fmt.Fprint(stdout, md.String())
	if out == "" {
		return 0
	}
	data, _ := json.MarshalIndent(res, "", "  ")
	if err := errors.Join(os.WriteFile(out, []byte(md.String()), 0o644), os.WriteFile(out+".json", data, 0o644)); err != nil {
		fmt.Fprintf(stderr, "%s: --out: %v\n", cmd, err)
		return 1
	}
	return 0
}

// benchResult is everything one run measured.
type benchResult struct {
	Machine   machine              `json:"machine"`
	Flags     map[string]string    `json:"flags"`
	Baselines map[string][]float64 `json:"baselines_ops_per_s"` // each measured before and after the loads
	// BaselineCPU is the CPU milliseconds per operation the crypto baselines report (their
	// process's CPU over the loop), measured with Baselines.
	BaselineCPU map[string][]float64 `json:"baselines_cpu_ms_per_op,omitempty"`
	// RabbitCores is the RabbitMQ server's CPU, in cores, during each raw round-trip baseline.
	RabbitCores map[string][]float64 `json:"rabbitmq_cores_during_baselines,omitempty"`
	// JournalCommit is BenchmarkJournalCommit's figures, measured before and after the loads:
	// sub-benchmark ("sync=full/inflight=8") → unit ("appends/s", "cpu-ms/op") → values.
	JournalCommit map[string]map[string][]float64 `json:"journal_commit,omitempty"`
	// Reports is BenchmarkReport's and BenchmarkReindex's figures: case ("csv/year",
	// "reindex") → unit ("rows/s", "cpu-us/row", "peak-heap-MB") → value.
	Reports map[string]map[string]float64 `json:"reports,omitempty"`
	Loads   []loadRun                     `json:"loads"`
	// BrokerMemory is each topology's broker's VmRSS after the warm-up and after the loads.
	BrokerMemory map[string]brokerMemory `json:"broker_memory"`
	Started      time.Time               `json:"started"`
	Took         time.Duration           `json:"took_ns"`
	// request is the warm-up's request the baselines verify.
	request string
}

// brokerMemory is a broker's VmRSS after its warm-up and after its loads.
type brokerMemory struct {
	StartKiB int64 `json:"rss_start_kib"`
	EndKiB   int64 `json:"rss_end_kib"`
}

func runBench(ctx context.Context, f benchFlags, log io.Writer) (*benchResult, error) {
	res := newBenchResult(f)
	binDir, err := os.MkdirTemp("", "siobench-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(binDir)
	// The baselines are test binaries, built before anything runs so that compiling does not
	// overlap a measurement.
	if err := buildBaselines(ctx, f.goTool, binDir, log); err != nil {
		return nil, err
	}

	// One topology at a time, so that one broker's background work does not fall in another's
	// loads. The last stays up (idle) for the baselines after the loads, which use its disk.
	var t *topology
	defer func() {
		if t != nil {
			t.stop(log)
		}
	}()
	for i, transport := range f.transports {
		if t != nil {
			t.stop(log)
			t = nil
		}
		sf := f.setupFlags
		sf.transport = transport
		if t, err = startTopology(ctx, sf, log); err != nil {
			return nil, err
		}
		if err := measureTopology(ctx, f, t, binDir, i == 0, res, log); err != nil {
			return nil, err
		}
	}

	if err := runBaselines(ctx, f, binDir, res.request, res, log); err != nil {
		return nil, err
	}
	if err := runJournalCommit(ctx, f, binDir, t.dir, res, log); err != nil {
		return nil, err
	}
	if f.reportRows > 0 {
		if err := runReports(ctx, f, binDir, t.dir, res, log); err != nil {
			return nil, err
		}
	}
	res.Took = time.Since(res.Started)
	return res, nil
}

// measureTopology runs the loads against the started topology t: a warm-up that verifies its
// replies, a closed-loop load per services-per-request and --latency-runs open-loop loads at half
// the first one's throughput. With first, the baselines run after the warm-up (whose request
// they verify), before any load.
func measureTopology(ctx context.Context, f benchFlags, t *topology, binDir string, first bool, res *benchResult, log io.Writer) error {
	request := filepath.Join(t.dir, "request.xml")
	// The warm-up verifies its replies, so that a run whose broker answers wrongly fails here.
	warm, err := t.load(ctx, f, log, "warm-up", "--services", strconv.Itoa(f.services[0]), "--concurrency", strconv.Itoa(f.concurrency),
		"--duration", f.warmup.String(), "--save-request", request)
	if err != nil {
		return err
	}
	if warm.Report.Answered == 0 || len(warm.Report.Errors) > 0 {
		return fmt.Errorf("the warm-up load (%s) failed: %d answered, errors %v (logs in %s; --keep keeps them)", t.f.transport, warm.Report.Answered, warm.Report.Errors, t.dir)
	}
	memory := brokerMemory{StartKiB: rssKiB(t.broker.pid())}
	if first {
		// The baselines verify a copy of the request the load sends; kept for the second round.
		res.request = filepath.Join(binDir, "request.xml")
		data, err := os.ReadFile(request)
		if err == nil {
			err = os.WriteFile(res.request, data, 0o600)
		}
		if err != nil {
			return fmt.Errorf("keep the warm-up's request: %w", err)
		}
		if err := runBaselines(ctx, f, binDir, res.request, res, log); err != nil {
			return err
		}
		if err := runJournalCommit(ctx, f, binDir, t.dir, res, log); err != nil {
			return err
		}
	}
	expected := warm.Report.Throughput
	firstLoad := len(res.Loads)
	for i, n := range f.services {
		args := []string{"--services", strconv.Itoa(n), "--concurrency", strconv.Itoa(f.concurrency), "--duration", f.duration.String()}
		if f.presign {
			args = append(args, "--presign", strconv.Itoa(presignCount(expected, f.duration)))
		}
		if i == 0 && first && f.profile != "" {
			stopProfile := t.profileBroker(ctx, f.profile, f.duration, log)
			defer stopProfile()
		}
		run, err := t.load(ctx, f, log, fmt.Sprintf("%s, %d service(s), %d in flight", topologyLabel(t.f.transport), n, f.concurrency), args...)
		if err != nil {
			return err
		}
		res.Loads = append(res.Loads, run)
		if i == 0 {
			expected = run.Report.Throughput
		}
	}
	for k := range f.latencyRuns {
		if k == 0 && first && f.profileHalf != "" {
			stopProfile := t.profileBroker(ctx, f.profileHalf, f.latencyDuration, log)
			defer stopProfile()
		}
		run, err := t.halfRateLoad(ctx, f, log, res.Loads[firstLoad].Report.Throughput, k+1)
		if err != nil {
			return err
		}
		res.Loads = append(res.Loads, run)
	}
	memory.EndKiB = rssKiB(t.broker.pid())
	res.BrokerMemory[t.f.transport] = memory
	return nil
}

// newBenchResult starts the result of a run: the machine, RabbitMQ's version and the flags.
func newBenchResult(f benchFlags) *benchResult {
	res := &benchResult{Machine: describeMachine(f.siobroker), Baselines: map[string][]float64{}, BaselineCPU: map[string][]float64{}, RabbitCores: map[string][]float64{},
		BrokerMemory: map[string]brokerMemory{}, Started: time.Now(),
		Flags: map[string]string{"duration": f.duration.String(), "concurrency": strconv.Itoa(f.concurrency), "cores": strconv.Itoa(f.cores),
			"adapters": f.adapters, "queues": f.queues, "user": f.user, "presign": strconv.FormatBool(f.presign),
			"skip_verify": strconv.FormatBool(f.skipVerify), "baseline_time": f.baselineTime.String(),
			"latency_duration": f.latencyDuration.String(), "ledger": strconv.FormatBool(f.ledger != ""),
			"latency_runs": strconv.Itoa(f.latencyRuns), "transports": strings.Join(f.transports, ","),
			"synchronous": cmp.Or(f.synchronous, configuredSynchronous(f.brokerDir))}}
	res.Machine.RabbitMQ = rabbitVersion(f.amqpURL)
	return res
}

// configuredSynchronous is the store.synchronous the broker's configuration in dir sets (the
// environment included, as the broker reads it), or what it could not read.
func configuredSynchronous(dir string) string {
	cfg, err := config.Load(filepath.Join(dir, "configs", "broker.yaml"), true)
	if err != nil {
		return "unknown (configs/broker.yaml: " + err.Error() + ")"
	}
	return cfg.Store.Synchronous
}

// buildBaselines builds the test binaries of the baseline benchmarks into binDir with goTool.
func buildBaselines(ctx context.Context, goTool, binDir string, log io.Writer) error {
	fmt.Fprintln(log, "siobench: building the baseline benchmarks")
	for _, pkg := range []string{"signing", "routing/amqp", "sqlite", "operator/reports"} {
		out, err := exec.CommandContext(ctx, goTool, "test", "-c", "-o", filepath.Join(binDir, filepath.Base(pkg)+".test"), "./"+pkg).CombinedOutput()
		if err != nil {
			return fmt.Errorf("build %s benchmarks: %w\n%s", pkg, err, out)
		}
	}
	return nil
}

// halfRateLoad runs an open-loop load of the first services-per-request at half throughput, the
// first closed-loop load's: the latency a broker shows with room to spare.
func (t *topology) halfRateLoad(ctx context.Context, f benchFlags, log io.Writer, throughput float64, round int) (loadRun, error) {
	rate := max(1, throughput/2)
	args := []string{"--services", strconv.Itoa(f.services[0]), "--rate", strconv.FormatFloat(rate, 'f', 1, 64), "--duration", f.latencyDuration.String()}
	if f.presign {
		args = append(args, "--presign", strconv.Itoa(presignCount(rate*1.1, f.latencyDuration)))
	}
	run, err := t.load(ctx, f, log, fmt.Sprintf("%s, %d service(s) at %.0f/s, run %d of %d", topologyLabel(t.f.transport), f.services[0], rate, round, f.latencyRuns), args...)
	run.HalfRate = true
	return run, err
}

// profileBroker starts a CPU profile of the broker for about d (from its operator listener, with
// debug.pprof) and returns a function that waits for it to be written to file.
func (t *topology) profileBroker(ctx context.Context, file string, d time.Duration, log io.Writer) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The load tool pre-signs for a few seconds first; the profile starts a little later and
		// ends before the load does.
		seconds := max(1, int(d.Seconds())-2)
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.debugAddr, seconds)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			fmt.Fprintf(log, "siobench: profile: %v\n", err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintf(log, "siobench: profile: %v\n", err)
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(file, data, 0o644)
		}
		if err != nil {
			fmt.Fprintf(log, "siobench: profile: %v\n", err)
			return
		}
		fmt.Fprintf(log, "siobench: CPU profile of the broker in %s (go tool pprof %s %s)\n", file, t.f.siobroker, file)
	}()
	return func() { <-done }
}

// presignCount is how many requests a load of d at about perSecond needs, with room, within the
// load tool's bounds.
func presignCount(perSecond float64, d time.Duration) int {
	return int(min(200000, max(1000, perSecond*1.5*d.Seconds())))
}

// load runs `siobroker load` against the topology and meters every party's CPU time meanwhile.
func (t *topology) load(ctx context.Context, f benchFlags, log io.Writer, name string, args ...string) (loadRun, error) {
	run := loadRun{Name: name, Transport: t.f.transport}
	report := filepath.Join(t.dir, fmt.Sprintf("load-%d.json", time.Now().UnixNano()))
	args = append([]string{"load", "--url", t.endpoint, "--pki", t.pki(), "--user", f.user, "--pid", strconv.Itoa(t.broker.pid()),
		"--json", report}, args...)
	if f.skipVerify && name != "warm-up" {
		args = append(args, "--skip-verify")
	}
	pids := map[string][]int{"broker": {t.broker.pid()}}
	if t.f.transport == transportAMQP {
		pids["rabbitmq"] = rabbitPIDs(t.f.amqpURL)
	}
	if t.adapter != nil {
		pids["adapter"] = []int{t.adapter.pid()}
	}
	fmt.Fprintf(log, "siobench: load %s\n", name)
	cmd := exec.CommandContext(ctx, t.f.siobroker, args...)
	out, err := os.Create(filepath.Join(t.dir, "load.log"))
	if err != nil {
		return run, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(out, log), io.MultiWriter(out, log)
	// The load tool signs its requests before its clock starts; meter from its "sending" line on.
	// Its own CPU time during the run is in its report.
	sending := &lineWatcher{prefix: "sending for ", seen: make(chan struct{})}
	cmd.Stdout = io.MultiWriter(out, log, sending)
	if err := cmd.Start(); err != nil {
		return run, fmt.Errorf("load %s: %w", name, err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	select {
	case <-sending.seen:
	case <-done:
	}
	meter, busy0 := newCPUMeter(pids), machineBusy()
	stages0, stagesErr := scrapeStages(ctx, t.metrics)
	heap0, heapErr := readHeap(ctx, t.debugAddr)
	<-done
	cpu, busy := meter.used(), machineBusy()-busy0
	heap1, err := readHeap(ctx, t.debugAddr)
	if heapErr = errors.Join(heapErr, err); heapErr != nil {
		fmt.Fprintf(log, "siobench: load %s: no allocation figure: %v\n", name, heapErr)
	} else {
		run.BrokerAllocBytes = heap1.TotalAlloc - heap0.TotalAlloc
	}
	stages1, err := scrapeStages(ctx, t.metrics)
	if stagesErr = errors.Join(stagesErr, err); stagesErr != nil {
		fmt.Fprintf(log, "siobench: load %s: no stage figures: %v\n", name, stagesErr)
	} else {
		order := make([]string, len(broker.Stages))
		for i, s := range broker.Stages {
			order[i] = string(s)
		}
		run.Stages = stageFigures(stages0, stages1, order)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		return run, fmt.Errorf("load %s: %v; no report: %w", name, waitErr, err)
	}
	if err := json.Unmarshal(data, &run.Report); err != nil {
		return run, fmt.Errorf("load %s: report: %w", name, err)
	}
	cpu["broker"] = run.Report.BrokerCPUSeconds // measured by the tool over exactly its window
	cpu["load tool"] = run.Report.ClientCPUSeconds
	ours := 0.0
	for _, v := range cpu {
		ours += v
	}
	cpu["others"] = max(0, busy-ours)
	run.CPU = cpu
	return run, nil
}

// lineWatcher closes seen when a line starting with prefix has been written to it.
type lineWatcher struct {
	prefix string
	seen   chan struct{}
	buf    []byte
	closed bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	if w.closed {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for _, line := range strings.Split(string(w.buf), "\n") {
		if strings.HasPrefix(line, w.prefix) {
			w.closed = true
			close(w.seen)
			w.buf = nil
			return len(p), nil
		}
	}
	if i := strings.LastIndexByte(string(w.buf), '\n'); i >= 0 {
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// runBaselines runs the crypto and RabbitMQ baselines once and appends their ops/s.
func runBaselines(ctx context.Context, f benchFlags, binDir, request string, res *benchResult, log io.Writer) error {
	cpu := strconv.Itoa(f.cores)
	bt := f.baselineTime.String()
	queueType := f.queues
	runs := []struct {
		bin, dir, pattern string
		env               []string
		suffix            string // appended to the benchmark's name in the results
	}{
		{"signing.test", "signing", "^(BenchmarkGoxmldsigVerifyAndSign|BenchmarkVerifyAndSignParallel)$", []string{"SIOBENCH_REQUEST=" + request}, ""},
		{"amqp.test", "routing/amqp", "^BenchmarkRawRoundTrip$", []string{"SIOBENCH_INFLIGHT=" + strconv.Itoa(f.concurrency), "SIOBENCH_QUEUE_TYPE=" + queueType}, ""},
		// One at a time: the latency of a bare round trip, beside the case check's and the
		// services' in the stage table.
		{"amqp.test", "routing/amqp", "^BenchmarkRawRoundTrip$", []string{"SIOBENCH_INFLIGHT=1", "SIOBENCH_QUEUE_TYPE=" + queueType}, oneInFlight},
	}
	for _, r := range runs {
		fmt.Fprintf(log, "siobench: baseline %s\n", r.pattern)
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, r.bin), "-test.run", "^$", "-test.bench", r.pattern,
			"-test.benchtime", bt, "-test.cpu", cpu)
		cmd.Dir = r.dir // the tests read ../testdata
		cmd.Env = append(os.Environ(), r.env...)
		// RabbitMQ's CPU over the raw round trips: beside its CPU during the loads it shows how
		// little that follows the rate (see writeCeiling).
		rabbit := newCPUMeter(map[string][]int{"rabbitmq": rabbitPIDs(f.amqpURL)})
		started := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("baseline %s: %w\n%s", r.bin, err, out)
		}
		rabbitCores := rabbit.used()["rabbitmq"] / time.Since(started).Seconds()
		got := parseOpsPerSecond(string(out))
		if len(got) == 0 {
			return fmt.Errorf("baseline %s printed no ops/s:\n%s", r.bin, out)
		}
		for name, v := range parseBenchMetric(string(out), "cpu-ms/op") {
			res.BaselineCPU[name+r.suffix] = append(res.BaselineCPU[name+r.suffix], v)
		}
		for name, v := range got {
			res.Baselines[name+r.suffix] = append(res.Baselines[name+r.suffix], v)
			if r.bin == "amqp.test" {
				res.RabbitCores[name+r.suffix] = append(res.RabbitCores[name+r.suffix], rabbitCores)
			}
		}
	}
	return nil
}
