package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// soakSample is the broker's memory at one moment of a soak.
type soakSample struct {
	At         time.Duration `json:"at_ns"`
	RSSKiB     int64         `json:"rss_kib"`
	HeapAlloc  uint64        `json:"heap_alloc"`
	HeapInuse  uint64        `json:"heap_inuse"`
	HeapLive   uint64        `json:"heap_live"` // found live by the last garbage collection
	Sys        uint64        `json:"sys"`
	Goroutines int           `json:"goroutines"`
}

// soakResult is a soak's samples, the load's report and the fitted slopes.
type soakResult struct {
	Machine   machine      `json:"machine"`
	Transport string       `json:"transport"`
	Rate      float64      `json:"rate"`
	Services  int          `json:"services"`
	Duration  string       `json:"duration"`
	Samples   []soakSample `json:"samples"`
	Load      loadReport   `json:"load"`
	Started   time.Time    `json:"started"`
}

func cmdSoak(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f setupFlags
	fs := flag.NewFlagSet("siobench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs)
	fs.StringVar(&f.transport, "transport", transportAMQP, "amqp: the broker on RabbitMQ with the adapters as --adapters says; embedded: the embedded default of make run")
	duration := fs.Duration("duration", 10*time.Minute, "how long the load runs")
	rate := fs.Float64("rate", 100, "requests per second (open loop)")
	services := fs.Int("services", 1, "services per request, 1..10")
	every := fs.Duration("sample", 10*time.Second, "how often the broker's memory is sampled")
	user := fs.String("user", "900114302034", "the demo user the load tool signs as")
	out := fs.String("out", "", "also write the summary (Markdown) and the samples (JSON, FILE.json) to FILE")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 2
	}
	if err := f.validate(); err != nil {
		fmt.Fprintf(stderr, "siobench soak: %v\n", err)
		return 2
	}
	if *duration <= 0 || *duration > 2*time.Hour || *rate <= 0 || *services < 1 || *services > adaptedServices || *every < time.Second {
		fmt.Fprintln(stderr, "siobench soak: --duration 0..2h, --rate > 0, --services 1..10, --sample ≥ 1s")
		return 2
	}
	res := &soakResult{Machine: describeMachine(f.siobroker), Transport: f.transport, Rate: *rate, Services: *services, Duration: duration.String(), Started: time.Now()}
	res.Machine.RabbitMQ = rabbitVersion(f.amqpURL)
	if err := runSoak(ctx, f, *duration, *every, *user, res, stderr); err != nil {
		fmt.Fprintf(stderr, "siobench soak: %v\n", err)
		return 1
	}
	return printSummary("siobench soak", res, *out, stdout, stderr)
}

func runSoak(ctx context.Context, f setupFlags, d, every time.Duration, user string, res *soakResult, log io.Writer) error {
	t, err := startTopology(ctx, f, log)
	if err != nil {
		return err
	}
	defer t.stop(log)
	report := filepath.Join(t.dir, "soak-load.json")
	// Requests are signed as they are sent: pre-signed ones would age past the replay window
	// (replay.window) of a long run. Replies are not verified, to keep the tool's cost low.
	cmd := exec.CommandContext(ctx, t.f.siobroker, "load", "--url", t.endpoint, "--pki", t.pki(), "--user", user,
		"--pid", strconv.Itoa(t.broker.pid()), "--rate", strconv.FormatFloat(res.Rate, 'f', -1, 64),
		"--services", strconv.Itoa(res.Services), "--duration", d.String(), "--skip-verify", "--json", report)
	logFile, err := os.Create(filepath.Join(t.dir, "soak-load.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(logFile, log), io.MultiWriter(logFile, log)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	start := time.Now()
	fmt.Fprintf(log, "siobench soak: %s at %.0f/s, sampling every %s\n", d, res.Rate, every)
	fmt.Fprintln(log, "   at   VmRSS KiB   live heap KiB   HeapAlloc KiB   HeapInuse KiB   goroutines")
	sample := func() {
		s := soakSample{At: time.Since(start).Round(time.Second), RSSKiB: rssKiB(t.broker.pid())}
		if h, err := readHeap(ctx, t.debugAddr); err == nil {
			s.HeapAlloc, s.HeapInuse, s.HeapLive, s.Sys, s.Goroutines = h.HeapAlloc, h.HeapInuse, h.Live, h.Sys, h.Goroutines
		} else {
			fmt.Fprintf(log, "siobench soak: heap: %v\n", err)
		}
		res.Samples = append(res.Samples, s)
		fmt.Fprintf(log, "%5.0fs %11d %15d %15d %15d %12d\n", s.At.Seconds(), s.RSSKiB, s.HeapLive>>10, s.HeapAlloc>>10, s.HeapInuse>>10, s.Goroutines)
	}
	sample()
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	var loadErr error
loop:
	for {
		select {
		case loadErr = <-done:
			break loop
		case <-ticker.C:
			sample()
		}
	}
	sample()
	data, err := os.ReadFile(report)
	if err != nil {
		return fmt.Errorf("load: %v; no report: %w", loadErr, err)
	}
	return json.Unmarshal(data, &res.Load)
}

// slopes returns the least-squares slopes of VmRSS and of the live heap, in KiB per minute, over
// the samples taken while the load ran from "from" on. The sample after the load is left out: a
// broker at rest is not comparable.
func (r *soakResult) slopes(from time.Duration) (rss, live float64, n int) {
	var xs, rs, ls []float64
	for i, s := range r.Samples {
		if s.At < from || i == len(r.Samples)-1 {
			continue
		}
		xs = append(xs, s.At.Minutes())
		rs = append(rs, float64(s.RSSKiB))
		ls = append(ls, float64(s.HeapLive)/1024)
	}
	return slope(xs, rs), slope(xs, ls), len(xs)
}

func (r *soakResult) write(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\n## siobench soak, %s\n\n", r.Started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "Machine: %d cores (%s), %s GiB, %s, %s, RabbitMQ %s, siobroker %s; load average at the start %s.\n",
		m.Cores, m.CPU, m.MemoryGiB, m.OS, m.Go, m.RabbitMQ, m.Siobroker, m.LoadAverage)
	l := r.Load
	fmt.Fprintf(w, "Broker: %s.\n", topologyName(r.Transport))
	fmt.Fprintf(w, "Load: %s at %.0f/s, %d service(s) per request: %d requests, %.1f/s answered, p50 %.1f ms, p99 %.1f ms, max %.1f ms, errors %s.\n\n",
		r.Duration, r.Rate, r.Services, l.Requests, l.Throughput, l.P50Ms, l.P99Ms, l.MaxMs, errorsText(l.Errors))
	fmt.Fprintln(w, "| at | VmRSS KiB | live heap KiB | HeapInuse KiB | HeapAlloc KiB | goroutines |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for i, s := range r.Samples {
		// A minute apart is enough for the table; the JSON keeps every sample.
		if i%6 != 0 && i != len(r.Samples)-1 {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d |\n", s.At, s.RSSKiB, s.HeapLive>>10, s.HeapInuse>>10, s.HeapAlloc>>10, s.Goroutines)
	}
	if len(r.Samples) == 0 {
		return
	}
	last := r.Samples[len(r.Samples)-1].At
	rssAll, liveAll, nAll := r.slopes(0)
	rssLate, liveLate, nLate := r.slopes(last / 2)
	fmt.Fprintf(w, "\nSlope (least squares) under load, KiB per minute: live heap %+.1f, VmRSS %+.1f over all %d samples; live heap %+.1f, VmRSS %+.1f over the second half (%d samples). The last row is the broker after the load stopped.\n",
		liveAll, rssAll, nAll, liveLate, rssLate, nLate)
}
