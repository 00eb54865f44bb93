package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/client"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// cmdLoad sends signed requests at a rate or a concurrency for a duration, and reports the
// throughput, the latency percentiles, the errors by code and the broker's memory.
func cmdLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f sendFlags
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080/SyncChannel/v10", "the broker's SOAP endpoint")
	fs.StringVar(&f.user, "user", "750312300458", "the demo user who signs (its first criminal case is used)")
	fs.StringVar(&f.pki, "pki", "data/pki", "the development PKI directory")
	fs.StringVar(&f.subject, "subject", "", "the IIN asked about (default: the first person of DATA/demo-subjects.json beside --pki)")
	fs.StringVar(&f.placement, "placement", "wsse", "signature placement")
	rate := fs.Float64("rate", 0, "requests per second (open loop); 0 uses --concurrency")
	concurrency := fs.Int("concurrency", 8, "requests in flight (closed loop)")
	duration := fs.Duration("duration", 30*time.Second, "how long to send")
	services := fs.Int("services", 1, "services per request: 1..N")
	pid := fs.Int("pid", 0, "the broker's process id, to report its memory (VmRSS) before and after")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 2
	}
	if *duration <= 0 || *duration > 2*time.Hour || *services < 1 || *services > siobroker.LastService || *concurrency < 1 || *rate < 0 {
		fmt.Fprintln(stderr, "siobroker load: --duration 0..2h, --services 1..93, --concurrency ≥ 1, --rate ≥ 0")
		return 2
	}
	if !strings.HasPrefix(f.url, "http://127.") && !strings.HasPrefix(f.url, "https://127.") &&
		!strings.HasPrefix(f.url, "http://localhost") && !strings.HasPrefix(f.url, "https://localhost") {
		fmt.Fprintln(stderr, "siobroker load: only a broker on this machine (127.0.0.0/8 or localhost) may be loaded")
		return 2
	}
	if err := f.loadDefaults(*services); err != nil {
		fmt.Fprintf(stderr, "siobroker load: %v\n", err)
		return 2
	}
	q, err := f.query()
	if err != nil {
		fmt.Fprintf(stderr, "siobroker load: %v\n", err)
		return 2
	}
	f.timeout = time.Minute
	c, err := f.client()
	if err != nil {
		fmt.Fprintf(stderr, "siobroker load: %v\n", err)
		return 2
	}
	c.HTTP = client.DefaultHTTPClient(time.Minute)

	memBefore := rssKB(*pid)
	res := runLoad(ctx, c, q, *rate, *concurrency, *duration)
	memAfter := rssKB(*pid)
	res.print(stdout, *services, memBefore, memAfter)
	if res.ok == 0 {
		return 1
	}
	return 0
}

// loadDefaults fills the case from the demo user's first criminal case and the subject from the
// demo subjects, so that a load needs no more than a running embedded default.
func (f *sendFlags) loadDefaults(services int) error {
	m, err := devpki.LoadManifest(f.pki)
	if err != nil {
		return fmt.Errorf("--pki: %w", err)
	}
	for _, u := range m.Users {
		if u.IIN != f.user {
			continue
		}
		for _, c := range u.Cases {
			if c.Basis == siobroker.BasisCriminal {
				r := c.Ref()
				f.basis, f.caseNo, f.instructionNo = int(c.Basis), r.Number, r.InstructionNo
				f.requestingBody, f.letterNo = r.RequestingBody, r.CoveringLetterNo
				break
			}
		}
	}
	if f.caseNo == "" {
		return fmt.Errorf("demo user %s has no criminal case in %s", f.user, f.pki)
	}
	if f.subject == "" {
		subjects, err := os.ReadFile(strings.TrimSuffix(f.pki, "/pki") + "/" + demoSubjectsFile)
		if err != nil {
			return fmt.Errorf("--subject not given and no demo subjects: %w", err)
		}
		i := strings.Index(string(subjects), `"id": "`)
		if i < 0 {
			return errors.New("--subject not given and the demo subjects list none")
		}
		f.subject = string(subjects[i+7 : i+19])
	}
	ns := make([]string, services)
	for i := range ns {
		ns[i] = strconv.Itoa(i + 1)
	}
	f.services = strings.Join(ns, ",")
	f.purpose = "нагрузочный тест"
	f.sender = "SIO_PSO_LOAD"
	return nil
}

type loadResult struct {
	elapsed   time.Duration
	ok        int
	latencies []time.Duration
	errors    map[string]int
}

func runLoad(ctx context.Context, c *client.Client, q siobroker.Query, rate float64, concurrency int, d time.Duration) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	res := loadResult{errors: map[string]int{}}
	one := func() {
		start := time.Now()
		_, err := c.Send(context.WithoutCancel(ctx), q)
		lat := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		var fault *client.FaultError
		switch {
		case err == nil:
			res.ok++
			res.latencies = append(res.latencies, lat)
		case errors.As(err, &fault):
			res.errors[string(fault.Fault.Code)]++
		default:
			res.errors["transport"]++
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	if rate > 0 {
		ticker := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer ticker.Stop()
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-ticker.C:
				wg.Go(one)
			}
		}
	} else {
		for range concurrency {
			wg.Go(func() {
				for ctx.Err() == nil {
					one()
				}
			})
		}
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

func (r loadResult) print(w io.Writer, services int, memBefore, memAfter int64) {
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
	}
	total := r.ok
	for _, n := range r.errors {
		total += n
	}
	fmt.Fprintf(w, "requests: %d in %s (%d services each): %.1f/s answered\n", total, r.elapsed.Round(time.Millisecond),
		services, float64(r.ok)/r.elapsed.Seconds())
	fmt.Fprintf(w, "latency of answered requests: p50 %s  p95 %s  p99 %s\n", pct(0.50), pct(0.95), pct(0.99))
	codes := slices.Sorted(func(yield func(string) bool) {
		for k := range r.errors {
			if !yield(k) {
				return
			}
		}
	})
	if len(codes) == 0 {
		fmt.Fprintln(w, "errors: none")
	}
	for _, k := range codes {
		fmt.Fprintf(w, "errors %s: %d\n", k, r.errors[k])
	}
	if memBefore > 0 {
		fmt.Fprintf(w, "broker memory (VmRSS): %d KiB before, %d KiB after\n", memBefore, memAfter)
	}
}

// rssKB reads a process's resident memory from /proc; 0 when unknown.
func rssKB(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}
