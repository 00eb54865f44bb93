package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/client"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/signing/devpki"
)

const loadUsage = `usage:
  siobroker load [--url URL] [--user IIN] [--pki DIR] [--rate R | --concurrency N] [--duration D]
                 [--services N] [--pid PID] [flags]

Sends signed requests to a broker on this machine (127.0.0.0/8 or localhost only) at a rate (open
loop) or with a number in flight (closed loop) for a duration, and reports the throughput, the
latency percentiles, the errors by code, the broker's memory (--pid) and the CPU time of the
broker and of the load tool itself (they share the machine). The demo user's first criminal case
and a demo subject are used, so that a running embedded default is all a load needs.
Exit status: 0 some requests answered, 1 none answered (or a file could not be written), 2 usage
error.
`

// loadOptions are the flags of load beyond the request's.
type loadOptions struct {
	rate          float64
	concurrency   int
	duration      time.Duration
	services, pid int
	presign       int
	skipVerify    bool
	jsonFile      string
}

func (o *loadOptions) register(fs *cmdFlags, f *sendFlags) {
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080/SyncChannel/v10", "the broker's SOAP endpoint")
	fs.StringVar(&f.user, "user", "750312300458", "the demo user who signs (its first criminal case is used); 900114302034 signs with ECDSA P-256, cheaper for the load tool")
	fs.StringVar(&f.pki, "pki", "data/pki", "the development PKI directory")
	fs.StringVar(&f.subject, "subject", "", "the IIN asked about (default: the first person of DATA/demo-subjects.json beside --pki)")
	fs.StringVar(&f.placement, "placement", "wsse", "signature placement")
	fs.Float64Var(&o.rate, "rate", 0, "requests per second (open loop); 0 uses --concurrency")
	fs.IntVar(&o.concurrency, "concurrency", 8, "requests in flight (closed loop)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to send")
	fs.IntVar(&o.services, "services", 1, "services per request: 1..N")
	fs.IntVar(&o.pid, "pid", 0, "the broker's process id, to report its memory (VmRSS) before and after and its CPU time")
	fs.IntVar(&o.presign, "presign", 0, "build and sign this many requests before the clock starts (at most 200000); later ones are signed as they are sent")
	fs.BoolVar(&o.skipVerify, "skip-verify", false, "do not parse or verify replies: an HTTP 200 with a SendMessageResponse counts as answered (cheaper for the load tool)")
	fs.StringVar(&o.jsonFile, "json", "", "also write the report as JSON to FILE")
	fs.StringVar(&f.saveRequest, "save-request", "", "write the first request's exact bytes to FILE (the crypto baselines verify the same envelope)")
}

// check refuses options out of range, and a broker not on this machine.
func (o *loadOptions) check(url string) error {
	if o.duration <= 0 || o.duration > 2*time.Hour || o.services < 1 || o.services > siobroker.LastService || o.concurrency < 1 || o.rate < 0 ||
		o.presign < 0 || o.presign > 200000 {
		return errors.New("--duration 0..2h, --services 1..93, --concurrency ≥ 1, --rate ≥ 0, --presign 0..200000")
	}
	if !strings.HasPrefix(url, "http://127.") && !strings.HasPrefix(url, "https://127.") &&
		!strings.HasPrefix(url, "http://localhost") && !strings.HasPrefix(url, "https://localhost") {
		return errors.New("only a broker on this machine (127.0.0.0/8 or localhost) may be loaded")
	}
	return nil
}

// cmdLoad runs "siobroker load".
func cmdLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("load", loadUsage, stdout, stderr)
	var f sendFlags
	var o loadOptions
	o.register(fs, &f)
	if code, ok := fs.parseNoArgs(args); !ok {
		return code
	}
	if err := o.check(f.url); err != nil {
		return fs.usageError("%v", err)
	}
	if err := f.loadDefaults(o.services); err != nil {
		return fs.usageError("%v", err)
	}
	q, err := f.query()
	if err != nil {
		return fs.usageError("%v", err)
	}
	f.timeout = time.Minute
	c, err := f.client()
	if err != nil {
		return fs.usageError("%v", err)
	}
	// The default transport keeps two idle connections per host: a load with more in flight would
	// open and close a connection for nearly every request, and measure that instead of the broker.
	conns := o.concurrency
	if o.rate > 0 {
		conns = max(64, int(o.rate/10))
	}
	c.HTTP = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute,
	}}
	reqs, err := newRequestSource(c, q, o.presign)
	if err != nil {
		return fs.fail(exitFailed, "%v", err)
	}
	if f.saveRequest != "" {
		first, err := c.Prepare(q)
		if err == nil {
			err = os.WriteFile(f.saveRequest, first.Raw, 0o600)
		}
		if err != nil {
			return fs.fail(exitFailed, "--save-request: %v", err)
		}
	}
	return o.run(ctx, fs, c, reqs, f.user)
}

// run sends for the duration and reports.
func (o *loadOptions) run(ctx context.Context, fs *cmdFlags, c *client.Client, reqs *requestSource, user string) int {
	rep := loadReport{Services: o.services, Concurrency: o.concurrency, Rate: o.rate, User: user,
		Presigned: o.presign, VerifiedReplies: !o.skipVerify}
	if o.rate > 0 {
		rep.Concurrency = 0
	}
	// scripts/bench.sh starts metering the other processes at this line.
	fmt.Fprintf(fs.stdout, "sending for %s (%d requests pre-signed)\n", o.duration, o.presign)
	pid := strconv.Itoa(o.pid)
	rep.BrokerRSSBeforeKiB = procRSSKiB(pid)
	brokerCPU, clientCPU := procCPUSeconds(pid), procCPUSeconds("self")
	res := runLoad(ctx, func(ctx context.Context) error {
		p, err := reqs.next()
		if err != nil {
			return err
		}
		_, err = c.SendPrepared(ctx, p, !o.skipVerify)
		return err
	}, o.rate, o.concurrency, o.duration)
	rep.ClientCPUSeconds = procCPUSeconds("self") - clientCPU
	if o.pid > 0 {
		rep.BrokerCPUSeconds = procCPUSeconds(pid) - brokerCPU
	}
	rep.BrokerRSSAfterKiB = procRSSKiB(pid)
	rep.fill(res)
	rep.print(fs.stdout)
	if o.jsonFile != "" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonFile, append(data, '\n'), 0o644); err != nil {
			return fs.fail(exitFailed, "--json: %v", err)
		}
	}
	if res.ok == 0 {
		return exitFailed
	}
	return exitOK
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
		subjects, err := os.ReadFile(strings.TrimSuffix(f.pki, "/pki") + "/" + app.DemoSubjectsFile)
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

// requestSource hands out signed requests: the pre-signed ones first, then freshly signed ones.
// Every request has its own messageId, as the broker's replay defence requires.
type requestSource struct {
	c      *client.Client
	q      siobroker.Query
	signed []client.Prepared
	taken  atomic.Int64
}

func newRequestSource(c *client.Client, q siobroker.Query, presign int) (*requestSource, error) {
	s := &requestSource{c: c, q: q, signed: make([]client.Prepared, 0, presign)}
	for range presign {
		p, err := c.Prepare(q)
		if err != nil {
			return nil, err
		}
		s.signed = append(s.signed, p)
	}
	return s, nil
}

func (s *requestSource) next() (client.Prepared, error) {
	if i := s.taken.Add(1) - 1; i < int64(len(s.signed)) {
		p := s.signed[i]
		s.signed[i] = client.Prepared{} // sent once; let it be collected
		return p, nil
	}
	return s.c.Prepare(s.q)
}

type loadResult struct {
	elapsed   time.Duration
	ok        int
	latencies []time.Duration
	errors    map[string]int
}

// runLoad calls send at rate per second (open loop: a late answer does not delay the next
// request), or with concurrency calls in flight, until d has passed, and collects the outcomes.
func runLoad(ctx context.Context, send func(context.Context) error, rate float64, concurrency int, d time.Duration) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	res := loadResult{errors: map[string]int{}}
	one := func() {
		start := time.Now()
		err := send(context.WithoutCancel(ctx))
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

// loadReport is what a load reports, as text and as JSON for scripts/bench.sh.
type loadReport struct {
	Services           int            `json:"services"`
	Concurrency        int            `json:"concurrency,omitempty"` // closed loop
	Rate               float64        `json:"rate,omitempty"`        // open loop, requests per second
	User               string         `json:"user"`
	Presigned          int            `json:"presigned"`
	VerifiedReplies    bool           `json:"verified_replies"`
	ElapsedSeconds     float64        `json:"elapsed_s"`
	Requests           int            `json:"requests"`
	Answered           int            `json:"answered"`
	Throughput         float64        `json:"throughput_per_s"` // answered per second
	P50Ms              float64        `json:"p50_ms"`
	P95Ms              float64        `json:"p95_ms"`
	P99Ms              float64        `json:"p99_ms"`
	MaxMs              float64        `json:"max_ms"`
	Errors             map[string]int `json:"errors"`
	BrokerRSSBeforeKiB int64          `json:"broker_rss_before_kib,omitempty"`
	BrokerRSSAfterKiB  int64          `json:"broker_rss_after_kib,omitempty"`
	BrokerCPUSeconds   float64        `json:"broker_cpu_s,omitempty"`
	ClientCPUSeconds   float64        `json:"client_cpu_s"` // the load tool's own CPU time during the run
}

func (r *loadReport) fill(res loadResult) {
	slices.Sort(res.latencies)
	pct := func(p float64) float64 {
		if len(res.latencies) == 0 {
			return 0
		}
		return ms(res.latencies[min(len(res.latencies)-1, int(p*float64(len(res.latencies))))])
	}
	r.ElapsedSeconds = res.elapsed.Seconds()
	r.Answered = res.ok
	r.Requests = res.ok
	for _, n := range res.errors {
		r.Requests += n
	}
	r.Throughput = float64(res.ok) / res.elapsed.Seconds()
	r.P50Ms, r.P95Ms, r.P99Ms = pct(0.50), pct(0.95), pct(0.99)
	if len(res.latencies) > 0 {
		r.MaxMs = ms(res.latencies[len(res.latencies)-1])
	}
	r.Errors = res.errors
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r loadReport) print(w io.Writer) {
	fmt.Fprintf(w, "requests: %d in %.3fs (%d services each): %.1f/s answered\n", r.Requests, r.ElapsedSeconds, r.Services, r.Throughput)
	fmt.Fprintf(w, "latency of answered requests: p50 %.1fms  p95 %.1fms  p99 %.1fms  max %.1fms\n", r.P50Ms, r.P95Ms, r.P99Ms, r.MaxMs)
	codes := slices.Sorted(func(yield func(string) bool) {
		for k := range r.Errors {
			if !yield(k) {
				return
			}
		}
	})
	if len(codes) == 0 {
		fmt.Fprintln(w, "errors: none")
	}
	for _, k := range codes {
		fmt.Fprintf(w, "errors %s: %d\n", k, r.Errors[k])
	}
	if r.BrokerRSSBeforeKiB > 0 {
		fmt.Fprintf(w, "broker memory (VmRSS): %d KiB before, %d KiB after\n", r.BrokerRSSBeforeKiB, r.BrokerRSSAfterKiB)
	}
	if r.BrokerCPUSeconds > 0 {
		fmt.Fprintf(w, "broker CPU: %.2fs (%.2f cores)\n", r.BrokerCPUSeconds, r.BrokerCPUSeconds/r.ElapsedSeconds)
	}
	fmt.Fprintf(w, "load tool CPU: %.2fs (%.2f cores; %d requests pre-signed, replies %s)\n", r.ClientCPUSeconds,
		r.ClientCPUSeconds/r.ElapsedSeconds, r.Presigned, map[bool]string{true: "verified", false: "not verified"}[r.VerifiedReplies])
}

// procRSSKiB reads a process's resident memory from /proc ("self" or a pid); 0 when unknown.
func procRSSKiB(pid string) int64 {
	if pid == "0" {
		return 0
	}
	fh, err := os.Open("/proc/" + pid + "/status")
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

// procCPUSeconds reads a process's user and system CPU time from /proc ("self" or a pid); 0 when
// unknown. The kernel counts it in clock ticks, which user space sees at 100 per second on Linux.
func procCPUSeconds(pid string) float64 {
	if pid == "0" {
		return 0
	}
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after its closing parenthesis are
	// fixed: utime and stime are the 12th and 13th of them.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return (utime + stime) / 100
}
