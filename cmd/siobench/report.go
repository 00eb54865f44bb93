package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// machine describes where a run ran: the figures mean nothing without it.
type machine struct {
	Cores       int    `json:"cores"`
	CPU         string `json:"cpu"`
	MemoryGiB   string `json:"memory_gib"`
	OS          string `json:"os"`
	Kernel      string `json:"kernel"`
	Go          string `json:"go"`
	Siobroker   string `json:"siobroker"`
	RabbitMQ    string `json:"rabbitmq"`
	LoadAverage string `json:"load_average_at_start"`
}

func describeMachine(siobroker string) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib float64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %f kB", &kib); err == nil {
			m.MemoryGiB = fmt.Sprintf("%.1f", kib/(1<<20))
		}
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) >= 3 {
			m.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Siobroker = "commit " + strings.TrimSpace(string(out))
	}
	return m
}

// rabbitVersion asks the server for its version in the connection handshake.
func rabbitVersion(url string) string {
	conn, err := amqp091.DialConfig(url, amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
	if err != nil {
		return "unknown"
	}
	defer conn.Close()
	if v, ok := conn.Properties["version"].(string); ok {
		return v
	}
	return "unknown"
}

// Baseline names, as the benchmarks are called.
const (
	baseGoxmldsig = "BenchmarkGoxmldsigVerifyAndSign"
	baseSigning   = "BenchmarkVerifyAndSignParallel"
	baseAMQP      = "BenchmarkRawRoundTrip"
	// oneInFlight marks the raw round trip measured one at a time, whose ops/s give its latency.
	oneInFlight = "/1-in-flight"
	baseAMQPOne = baseAMQP + oneInFlight
)

// The targets of issue 20 ("Performance close to the crypto floor"), each read from one run's
// loads against the baselines of the same run.
const (
	// targetEmbeddedRatio: the embedded default, one service, answers at least this multiple of
	// goxmldsig's verify-and-sign rate.
	targetEmbeddedRatio = 1.0
	// targetEmbeddedCPUMs: and its broker spends at most this much CPU per request.
	targetEmbeddedCPUMs = 1.5
	// targetTenServices: ten services per request cost the broker at most this multiple of one.
	targetTenServices = 2.0
	// targetAMQPCPURatio: over RabbitMQ, the broker's CPU per request is at most this multiple of
	// goxmldsig's CPU per verify-and-sign, closed loop and at half rate alike.
	targetAMQPCPURatio = 1.2
	// targetP99Ms: the p99 of every half-rate load, on either topology.
	targetP99Ms = 50
	// targetAllocKB: what the broker allocates per one-service request, in KB.
	targetAllocKB = 64
)

// topologyLabel is a load's topology as the tables name it.
func topologyLabel(transport string) string {
	if transport == transportEmbedded {
		return "embedded"
	}
	return "RabbitMQ"
}

// topologyName describes a topology in a sentence.
func topologyName(transport string) string {
	if transport == transportEmbedded {
		return "the embedded default of make run (in-process pub/sub, the demo adapters inside the broker)"
	}
	return "over RabbitMQ"
}

func mean(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := 0.0
	for _, v := range vs {
		s += v
	}
	return s / float64(len(vs))
}

// write prints the summary as Markdown.
func (r *benchResult) write(w io.Writer) {
	r.writeSetup(w)
	r.writeBaselines(w)
	gox := mean(r.Baselines[baseGoxmldsig])
	r.writeThroughput(w, gox)
	r.writeCPU(w, gox)
	for _, transport := range []string{transportEmbedded, transportAMQP} {
		var loads []loadRun
		for _, l := range r.Loads {
			if l.Transport == transport {
				loads = append(loads, l)
			}
		}
		raw := 0.0
		if transport == transportAMQP {
			raw = mean(r.Baselines[baseAMQPOne])
		}
		writeStages(w, topologyLabel(transport), loads, raw)
	}
	r.writeCeiling(w, gox)
	r.writeJournalCommit(w)
	r.writeReports(w)
	r.writeTargets(w, gox)
	for _, transport := range []string{transportEmbedded, transportAMQP} {
		if m, ok := r.BrokerMemory[transport]; ok {
			fmt.Fprintf(w, "Broker memory (VmRSS), %s: %d KiB after the warm-up, %d KiB after the loads.\n", topologyLabel(transport), m.StartKiB, m.EndKiB)
		}
	}
}

// ratio formats v ÷ base, or "–" when there is no base.
func ratio(v, base float64) string {
	if base == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v/base)
}

// writeSetup writes the heading and what the run ran on and with: the machine, the broker's
// setup and the load tool's flags.
func (r *benchResult) writeSetup(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\n## siobench, %s (took %s)\n\n", r.Started.Format("2006-01-02 15:04 MST"), r.Took.Round(time.Second))
	fmt.Fprintf(w, "Machine: %d cores (%s), %s GiB, %s, kernel %s, %s, RabbitMQ %s, siobroker %s; load average at the start %s.\n",
		m.Cores, m.CPU, m.MemoryGiB, m.OS, m.Kernel, m.Go, m.RabbitMQ, m.Siobroker, m.LoadAverage)
	ledger := ""
	if r.Flags["ledger"] == "true" {
		ledger = " with a PostgreSQL ledger"
	}
	var topologies []string
	for t := range strings.SplitSeq(cmp.Or(r.Flags["transports"], transportAMQP), ",") {
		if t == transportEmbedded {
			topologies = append(topologies, "embedded: "+topologyName(t))
		} else {
			topologies = append(topologies, fmt.Sprintf("RabbitMQ: the broker over RabbitMQ (%s queues), demo adapters: %s%s", r.Flags["queues"], r.Flags["adapters"], ledger))
		}
	}
	fmt.Fprintf(w, "Brokers, one after the other: %s; store.synchronous %s. Load tool: user %s, pre-signed %s, replies skipped-verify %s; %s per closed-loop load, %s × %s at half rate.\n\n",
		strings.Join(topologies, "; "), r.Flags["synchronous"], r.Flags["user"], r.Flags["presign"], r.Flags["skip_verify"], r.Flags["duration"],
		cmp.Or(r.Flags["latency_runs"], "1"), r.Flags["latency_duration"])
}

// writeBaselines writes the table of baselines, each measured before and after the loads.
func (r *benchResult) writeBaselines(w io.Writer) {
	fmt.Fprintf(w, "Baselines, ops/s with GOMAXPROCS=%s, measured before and after the loads:\n\n", r.Flags["cores"])
	fmt.Fprintln(w, "| baseline | before | after | mean |")
	fmt.Fprintln(w, "|---|---|---|---|")
	names := map[string]string{
		baseGoxmldsig: "goxmldsig: verify the request (RSA-2048, enveloped) + sign a reply of its size",
		baseSigning:   "our signing: verify the request (RSA-2048, WS-Security, chain + CRL) + sign a reply of its size",
		baseAMQP:      fmt.Sprintf("raw amqp091-go round trip, persistent + confirmed both ways, %s in flight, %s queues", r.Flags["concurrency"], r.Flags["queues"]),
		baseAMQPOne:   fmt.Sprintf("the same, one at a time (a round trip's latency: 1000 ÷ this, in ms), %s queues", r.Flags["queues"]),
	}
	for _, b := range []string{baseGoxmldsig, baseSigning, baseAMQP, baseAMQPOne} {
		if len(r.Baselines[b]) == 0 {
			continue // a summary written before it was measured
		}
		vs := r.Baselines[b]
		cells := make([]string, 2)
		for i := range cells {
			if i < len(vs) {
				cells[i] = fmt.Sprintf("%.0f", vs[i])
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f |\n", names[b], cells[0], cells[1], mean(vs))
	}
	if cpu := r.BaselineCPU[baseGoxmldsig]; len(cpu) > 0 {
		fmt.Fprintf(w, "\ngoxmldsig's CPU per verify-and-sign, as its benchmark measured its process's CPU: %s ms (mean %.3f); the CPU targets are read against it.\n",
			joinFloats(cpu, "%.3f"), mean(cpu))
	}
}

// joinFloats formats each of vs with format, comma-separated.
func joinFloats(vs []float64, format string) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf(format, v)
	}
	return strings.Join(parts, ", ")
}

// writeThroughput writes the table of loads: answered requests per second, their latency, and
// the throughput as a multiple of each baseline (gox is goxmldsig's).
func (r *benchResult) writeThroughput(w io.Writer, gox float64) {
	sig, raw := mean(r.Baselines[baseSigning]), mean(r.Baselines[baseAMQP])
	fmt.Fprintln(w, "\nLoads (siobroker load), answered requests per second and their latency:")
	fmt.Fprintln(w, "\n| load | answered/s | p50 ms | p95 ms | p99 ms | max ms | errors | × goxmldsig | × our signing | × raw AMQP |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, l := range r.Loads {
		overRaw := ratio(l.Report.Throughput, raw)
		if l.Transport == transportEmbedded {
			overRaw = "–" // no RabbitMQ round trip in its requests
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %s | %s | %s |\n", l.Name, l.Report.Throughput,
			l.Report.P50Ms, l.Report.P95Ms, l.Report.P99Ms, l.Report.MaxMs, errorsText(l.Report.Errors),
			ratio(l.Report.Throughput, gox), ratio(l.Report.Throughput, sig), overRaw)
	}
}

// goxmldsigCPUms is goxmldsig's CPU milliseconds per verify-and-sign: as its benchmark measured
// it (its process's CPU over the loop), or, from a benchmark that did not report it, the cores it
// ran on (--cores) divided by its ops/s (gox), which other work on the machine inflates.
func (r *benchResult) goxmldsigCPUms(gox float64) float64 {
	if v := mean(r.BaselineCPU[baseGoxmldsig]); v > 0 {
		return v
	}
	if gox <= 0 {
		return 0
	}
	cores, err := strconv.Atoi(r.Flags["cores"])
	if err != nil || cores < 1 {
		cores = r.Machine.Cores
	}
	return 1000 * float64(cores) / gox
}

// writeCPU writes the table of the CPU each party used during each load, and the broker's CPU
// per request beside goxmldsig's per operation (gox is goxmldsig's ops/s on all the cores).
func (r *benchResult) writeCPU(w io.Writer, gox float64) {
	fmt.Fprintln(w, "\nCPU during each load, in cores (CPU seconds ÷ the load's seconds); \"others\" is the rest of the machine's busy time (other work on the machine):")
	fmt.Fprintln(w, "\n| load | broker | adapter | rabbitmq | load tool | others | broker CPU ms per request | ÷ goxmldsig CPU ms per op | broker KB allocated per request |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	perOp := r.goxmldsigCPUms(gox)
	for _, l := range r.Loads {
		el := l.Report.ElapsedSeconds
		c := func(k string) string {
			v, ok := l.CPU[k]
			if !ok {
				return "–"
			}
			return fmt.Sprintf("%.2f", v/el)
		}
		perReq := 0.0
		if l.Report.Answered > 0 {
			perReq = 1000 * l.CPU["broker"] / float64(l.Report.Answered)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %.2f | %s | %s |\n", l.Name, c("broker"), c("adapter"), c("rabbitmq"),
			c("load tool"), c("others"), perReq, ratio(perReq, perOp), allocText(l))
	}
}

// brokerCPUms is the broker's CPU milliseconds per answered request of a load (0 without any).
func brokerCPUms(l loadRun) float64 {
	if l.Report.Answered == 0 {
		return 0
	}
	return 1000 * l.CPU["broker"] / float64(l.Report.Answered)
}

// allocKB is what the broker allocated per answered request of a load, in KB (0 unknown).
func allocKB(l loadRun) float64 {
	if l.Report.Answered == 0 || l.BrokerAllocBytes == 0 {
		return 0
	}
	return float64(l.BrokerAllocBytes) / 1000 / float64(l.Report.Answered)
}

// clean reports whether a load's figures can meet a target: it answered, and no request of it
// failed. A load whose requests were refused or lost reads as cheap per answered request (or as
// 0 ms when nothing was answered), which is no measure of the broker doing its work.
func clean(l loadRun) bool {
	return l.Report.Answered > 0 && len(l.Report.Errors) == 0
}

// failures is what a load that is not clean adds to its figure.
func failures(l loadRun) string {
	if clean(l) {
		return ""
	}
	return fmt.Sprintf(" (%d answered, errors %s)", l.Report.Answered, errorsText(l.Report.Errors))
}

func allocText(l loadRun) string {
	if kb := allocKB(l); kb > 0 {
		return fmt.Sprintf("%.0f", kb)
	}
	return "–"
}

// findLoad is the first load of the topology that is (halfRate) or is not a half-rate one, with
// services services per request; ok false if the run has none.
func (r *benchResult) findLoad(transport string, services int, halfRate bool) (loadRun, bool) {
	for _, l := range r.Loads {
		if l.Transport == transport && l.HalfRate == halfRate && l.Report.Services == services {
			return l, true
		}
	}
	return loadRun{}, false
}

// halfRateLoads are the topology's half-rate loads.
func (r *benchResult) halfRateLoads(transport string) []loadRun {
	var out []loadRun
	for _, l := range r.Loads {
		if l.Transport == transport && l.HalfRate {
			out = append(out, l)
		}
	}
	return out
}

// writeTargets writes each target of issue 20 with the figure of this run and whether it was
// met; a target whose loads did not run says so. gox is goxmldsig's verify-and-sign ops/s on all
// the cores, so its CPU per operation is cores ÷ gox.
func (r *benchResult) writeTargets(w io.Writer, gox float64) {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**NOT met**"
	}
	goxCPUms := r.goxmldsigCPUms(gox)
	type row struct{ target, figure, verdict string }
	var rows []row
	missing := func(target, what string) { rows = append(rows, row{target, "not measured (" + what + ")", "–"}) }

	emb1, okEmb1 := r.findLoad(transportEmbedded, 1, false)
	if okEmb1 && gox > 0 {
		got := emb1.Report.Throughput / gox
		rows = append(rows, row{fmt.Sprintf("embedded, 1 service: throughput ≥ %.1f × goxmldsig", targetEmbeddedRatio),
			fmt.Sprintf("%.1f/s = %.2f ×%s", emb1.Report.Throughput, got, failures(emb1)), verdict(clean(emb1) && got >= targetEmbeddedRatio)})
		cpu := brokerCPUms(emb1)
		rows = append(rows, row{fmt.Sprintf("embedded, 1 service: broker CPU ≤ %.1f ms per request", targetEmbeddedCPUMs),
			fmt.Sprintf("%.2f ms%s", cpu, failures(emb1)), verdict(clean(emb1) && cpu > 0 && cpu <= targetEmbeddedCPUMs)})
	} else {
		missing("embedded, 1 service: throughput and broker CPU", "--transports embedded and --services 1,…")
	}
	if emb10, ok := r.findLoad(transportEmbedded, 10, false); ok && okEmb1 && brokerCPUms(emb1) > 0 {
		got := brokerCPUms(emb10) / brokerCPUms(emb1)
		rows = append(rows, row{fmt.Sprintf("embedded, 10 services: broker CPU ≤ %.0f × the 1-service request's", targetTenServices),
			fmt.Sprintf("%.2f ms = %.2f ×%s", brokerCPUms(emb10), got, failures(emb10)), verdict(clean(emb1) && clean(emb10) && got <= targetTenServices)})
	} else {
		missing("embedded, 10 services against 1", "--services 1,10")
	}
	amqp1, okAMQP1 := r.findLoad(transportAMQP, 1, false)
	if okAMQP1 && goxCPUms > 0 {
		got := brokerCPUms(amqp1) / goxCPUms
		rows = append(rows, row{fmt.Sprintf("RabbitMQ, 1 service, closed loop: broker CPU ≤ %.1f × goxmldsig's per op", targetAMQPCPURatio),
			fmt.Sprintf("%.2f ms ÷ %.2f ms = %.2f ×%s", brokerCPUms(amqp1), goxCPUms, got, failures(amqp1)), verdict(clean(amqp1) && got <= targetAMQPCPURatio)})
	} else {
		missing("RabbitMQ, 1 service, closed loop: broker CPU", "--transports amqp")
	}
	if halves := r.halfRateLoads(transportAMQP); len(halves) > 0 && goxCPUms > 0 {
		worst, allClean, figures := 0.0, true, make([]string, len(halves))
		for i, l := range halves {
			got := brokerCPUms(l) / goxCPUms
			worst = max(worst, got)
			allClean = allClean && clean(l)
			figures[i] = fmt.Sprintf("%.2f%s", got, failures(l))
		}
		rows = append(rows, row{fmt.Sprintf("RabbitMQ, 1 service at half rate: broker CPU ≤ %.1f × goxmldsig's per op, in each run", targetAMQPCPURatio),
			strings.Join(figures, ", ") + " ×", verdict(allClean && worst <= targetAMQPCPURatio)})
	} else {
		missing("RabbitMQ, 1 service at half rate: broker CPU", "--transports amqp")
	}
	for _, transport := range []string{transportEmbedded, transportAMQP} {
		halves := r.halfRateLoads(transport)
		if len(halves) == 0 {
			missing(topologyLabel(transport)+": p99 at half rate", "--transports")
			continue
		}
		ok, figures := len(halves) >= 3, make([]string, len(halves))
		if d, err := time.ParseDuration(r.Flags["latency_duration"]); err != nil || d < time.Minute {
			ok = false // the target's runs are 60 seconds each
		}
		for i, l := range halves {
			figures[i] = fmt.Sprintf("%.1f", l.Report.P99Ms)
			ok = ok && l.Report.P99Ms < targetP99Ms && l.Report.Answered > 0 && len(l.Report.Errors) == 0
		}
		rows = append(rows, row{fmt.Sprintf("%s, 1 service at half rate (%.0f/s): p99 < %d ms in each of %d runs", topologyLabel(transport), halves[0].Report.Rate, targetP99Ms, len(halves)),
			strings.Join(figures, ", ") + " ms, " + r.Flags["latency_duration"] + " each", verdict(ok)})
	}
	// Only full is durable: normal is not, and neither is a setting the run could not read.
	durable := r.Flags["synchronous"] == "full"
	rows = append(rows, row{"durable: the journal's commits on the disk before a reply (store.synchronous full)",
		"store.synchronous " + r.Flags["synchronous"], verdict(durable)})
	// The broker's allocations are read where the adapters are not in its process.
	if okAMQP1 && allocKB(amqp1) > 0 && r.Flags["adapters"] != "in-broker" {
		rows = append(rows, row{fmt.Sprintf("allocation ≤ %d KB per 1-service request (the broker process over RabbitMQ, its background jobs included)", targetAllocKB),
			fmt.Sprintf("%.0f KB", allocKB(amqp1)), verdict(allocKB(amqp1) <= targetAllocKB)})
	} else {
		missing(fmt.Sprintf("allocation ≤ %d KB per 1-service request", targetAllocKB), "--transports amqp with --adapters process")
	}
	rows = append(rows, row{"memory flat over 10 minutes", "not measured by this command: make bench-soak", "–"})

	fmt.Fprintln(w, "\nTargets of issue 20, from this run:")
	fmt.Fprintln(w, "\n| target | this run | |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s |\n", r.target, r.figure, r.verdict)
	}
	fmt.Fprintln(w)
}

// writeCeiling writes the most the machine's cores could carry, from the CPU each party used in
// the first load (one service, closed loop). RabbitMQ's use is taken as a fixed share of the
// cores: it follows the rate little (its CPU during the raw round trips, at two rates, is
// printed beside it), since a quorum queue's work comes in batches that grow with the rate. The
// adapter's, the load tool's and the broker's are costs per request. The same sum with the
// broker costing only goxmldsig's verify-and-sign says whether any broker could meet the target
// with these neighbours on these cores. Both figures are upper bounds: RabbitMQ takes somewhat
// more at higher rates.
func (r *benchResult) writeCeiling(w io.Writer, gox float64) {
	l, ok := r.findLoad(transportAMQP, 1, false)
	if !ok || gox == 0 {
		return
	}
	answered, elapsed := float64(l.Report.Answered), l.Report.ElapsedSeconds
	rabbitCPU, metered := l.CPU["rabbitmq"]
	if answered == 0 || elapsed == 0 || !metered || l.CPU["broker"] == 0 {
		return
	}
	cores := float64(r.Machine.Cores)
	rabbit := rabbitCPU / elapsed
	neighbours := (l.CPU["adapter"] + l.CPU["load tool"]) / answered // CPU seconds per request
	broker := l.CPU["broker"] / answered
	baseline := cores / gox // CPU seconds per verify-and-sign
	free := cores - rabbit
	atBroker, atBaseline := free/(broker+neighbours), free/(baseline+neighbours)
	raw := ""
	if many, one := mean(r.RabbitCores[baseAMQP]), mean(r.RabbitCores[baseAMQPOne]); many > 0 && one > 0 {
		raw = fmt.Sprintf(" (during the raw round trips it took %.2f cores at %.0f/s and %.2f one at a time at %.0f/s: its CPU follows the rate little, so it counts here as a fixed share)",
			many, mean(r.Baselines[baseAMQP]), one, mean(r.Baselines[baseAMQPOne]))
	}
	fmt.Fprintf(w, "\nWhat the %d cores could carry over RabbitMQ, from the CPU of its 1-service closed-loop load: RabbitMQ took %.2f cores%s; the adapter and the load tool %.2f ms of CPU per request; the broker %.2f ms. "+
		"The %.2f cores RabbitMQ leaves would carry at most %.0f requests/s at the broker's cost (%.2f × goxmldsig), and at most %.0f/s (%.2f ×) at goxmldsig's own %.2f ms per verify-and-sign: "+
		"which is why the throughput target is the embedded default's, where nothing else shares the cores, and over RabbitMQ the target is the broker's CPU.\n",
		r.Machine.Cores, rabbit, raw, 1000*neighbours, 1000*broker, free, atBroker, atBroker/gox, atBaseline, atBaseline/gox, 1000*baseline)
}

func errorsText(errs map[string]int) string {
	if len(errs) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range errs {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, errs[k]))
	}
	return strings.Join(parts, ", ")
}

// writeStages writes where the broker's time went in each load, from its stage histograms: the
// mean and the p99 of each step, and the whole synchronous request's, in milliseconds; and, for
// the two steps that are AMQP round trips, a bare round trip's time from rawOnePerSecond (the raw
// baseline one at a time; 0 if not measured).
func writeStages(w io.Writer, label string, loads []loadRun, rawOnePerSecond float64) {
	var names []string
	for _, l := range loads {
		for _, s := range l.Stages {
			if !slices.Contains(names, s.Stage) {
				names = append(names, s.Stage)
			}
		}
	}
	if len(names) == 0 {
		return
	}
	// The whole request last, whichever load listed it first.
	if i := slices.Index(names, wholeRequest); i >= 0 {
		names = append(slices.Delete(names, i, i+1), wholeRequest)
	}
	fmt.Fprintf(w, "\nWhere a request's time went in the broker, %s, per step (its `siobroker_request_stage_seconds` over each load; mean / p99 ms, the p99 estimated from the histogram's buckets, so only as fine as they are):\n", label)
	fmt.Fprint(w, "\n| step |")
	for _, l := range loads {
		fmt.Fprintf(w, " %s |", l.Name)
	}
	fmt.Fprint(w, "\n|---|")
	for range loads {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, n := range names {
		fmt.Fprintf(w, "| %s |", n)
		for _, l := range loads {
			i := slices.IndexFunc(l.Stages, func(s stageFigure) bool { return s.Stage == n })
			if i < 0 {
				fmt.Fprint(w, " – |")
				continue
			}
			fmt.Fprintf(w, " %.2f / %.1f |", l.Stages[i].MeanMs, l.Stages[i].P99Ms)
		}
		fmt.Fprintln(w)
	}
	if rawOnePerSecond > 0 {
		fmt.Fprintf(w, "\nA bare round trip on amqp091-go alone (the raw baseline, one at a time): %.2f ms, beside the mean of `case_check` and `services` above, each one round trip per service.\n",
			1000/rawOnePerSecond)
	}
}
