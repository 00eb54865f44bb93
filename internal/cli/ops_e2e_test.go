package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// logBuffer collects a broker's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the log lines from offset on, decoded.
func (l *logBuffer) lines(t *testing.T, offset int) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()[offset:]))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// waitLog waits up to ten seconds for a log line containing s.
func (l *logBuffer) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", s, l.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// opsBroker starts a broker of the test's own, over a copy of the shared broker's PKI, with its
// log in JSON (as `log.format: json` gives) into logs, on clock; edit changes the configuration.
func opsBroker(t *testing.T, clock siobroker.Clock, logs io.Writer, edit func(*config.Broker)) *e2eBroker {
	t.Helper()
	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	cfg := testConfig(dir)
	if edit != nil {
		edit(&cfg)
	}
	logger := testLogger()
	if logs != nil {
		logger = app.NewLogger(logs, config.Log{Format: "json", Level: "info"})
	}
	// startBroker's context bounds the broker's life, not only its start: Close stops it.
	b, err := app.Start(context.Background(), cfg, clock, logger)
	if err != nil {
		t.Fatalf("start a broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close the broker: %v", err)
		}
	})
	e := *src
	e.b, e.cfg, e.base, e.url, e.pki = b, cfg, b.BaseURL(), b.BaseURL()+cfg.Endpoint, filepath.Join(dir, "pki")
	return &e
}

// scrape returns the broker's /metrics in the Prometheus text format.
func scrape(t *testing.T, e *e2eBroker) string {
	t.Helper()
	status, hdr, body := do(t, http.MethodGet, e.ops(t)+app.MetricsPath, nil)
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: HTTP %d %s", status, hdr.Get("Content-Type"))
	}
	return string(body)
}

// metric finds the sample of name whose labels include every `k="v"` of labels. (The label
// values of the broker's metrics hold no commas or quotes.)
func metric(body, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		have := map[string]bool{}
		if strings.HasPrefix(rest, "{") {
			var set string
			set, rest, _ = strings.Cut(rest[1:], "}")
			for _, l := range strings.Split(set, `",`) {
				have[strings.TrimSuffix(l, `"`)+`"`] = true
			}
		}
		match := true
		for _, l := range labels {
			match = match && have[l]
		}
		if match {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

func wantMetric(t *testing.T, body string, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := metric(body, name, labels...)
	if !ok || got != want {
		t.Errorf("%s%v = %v (found %v), want %v", name, labels, got, ok, want)
	}
}

// readyz returns /readyz's status and report.
func readyz(t *testing.T, e *e2eBroker) (int, health.Report) {
	t.Helper()
	status, _, body := do(t, http.MethodGet, e.ops(t)+app.ReadyzPath, nil)
	var rep health.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("/readyz: HTTP %d %q: %v", status, body, err)
	}
	return status, rep
}

func checkOf(rep health.Report, name string) health.CheckResult {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	return health.CheckResult{}
}

// TestMetricsAndHealthMoveWithRequests: on the embedded default, /metrics counts the requests by
// outcome and code, the services' dispatches, answers and latency, the journal's progress, and
// has the Go and process metrics; no label carries a request's ids or the subject. /healthz and
// /readyz answer.
func TestMetricsAndHealthMoveWithRequests(t *testing.T) {
	e := opsBroker(t, siobroker.SystemClock{}, nil, nil)
	before := scrape(t, e)
	wantMetric(t, before, 0, "siobroker_service_dispatches_total", `service="1"`)
	if _, ok := metric(before, "siobroker_requests_total", `outcome="answered"`); ok {
		t.Errorf("an answered request before any was sent")
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "siobroker_incidents_open",
		"siobroker_journal_last_sequence", "siobroker_archive_last_sequence"} {
		if _, ok := metric(before, name); !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if strings.Contains(before, "siobroker_service_queue_depth{") || strings.Contains(before, "siobroker_service_dead_letters{") {
		t.Errorf("queue depths on GoChannel, which cannot tell them")
	}
	journalBefore, _ := metric(before, "siobroker_journal_last_sequence")

	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	reqFile := filepath.Join(t.TempDir(), "request.xml")
	// Article 190 is the case's, not of Chapter 8: service 37 is denied and never dispatched.
	if code, out, errs := runSend(t, e.sendArgs(u, "--services", "1,5,37", "--article", "190", "--save-request", reqFile)...); code != sendExitOK {
		t.Fatalf("send exited %d\n%s%s", code, out, errs)
	}
	raw, err := os.ReadFile(reqFile)
	if err != nil {
		t.Fatal(err)
	}
	status, body := post(t, e.url, signedRequest(t, nil, signing.PlacementWSSE, newInfo(), e.query(1)))
	wantFault(t, status, body, 0, siobroker.CodeSigMissing)

	after := scrape(t, e)
	wantMetric(t, after, 1, "siobroker_requests_total", `channel="sync"`, `outcome="answered"`, `code="none"`)
	wantMetric(t, after, 1, "siobroker_requests_total", `channel="sync"`, `outcome="refused"`, `code="SIO-SIG-MISSING"`)
	wantMetric(t, after, 2, "siobroker_request_duration_seconds_count", `channel="sync"`)
	wantMetric(t, after, 2, "siobroker_request_stage_seconds_count", `stage="verify"`) // the refused one too
	for _, stage := range []string{"replay", "journal_request", "case_check", "services", "sign", "journal_reply"} {
		wantMetric(t, after, 1, "siobroker_request_stage_seconds_count", `stage="`+stage+`"`)
	}
	for _, svc := range []string{"1", "5"} {
		wantMetric(t, after, 1, "siobroker_service_dispatches_total", `service="`+svc+`"`)
		wantMetric(t, after, 1, "siobroker_service_answers_total", `service="`+svc+`"`, `result="ok"`)
		wantMetric(t, after, 1, "siobroker_service_answer_duration_seconds_count", `service="`+svc+`"`)
		wantMetric(t, after, 0, "siobroker_service_in_flight", `service="`+svc+`"`)
		wantMetric(t, after, 0, "siobroker_service_oldest_undelivered_seconds", `service="`+svc+`"`)
	}
	wantMetric(t, after, 0, "siobroker_service_dispatches_total", `service="37"`) // denied: never dispatched
	wantMetric(t, after, 1, "siobroker_service_not_dispatched_total", `service="37"`, `reason="denied"`)
	wantMetric(t, after, 0, "siobroker_service_timeouts_total", `service="1"`)
	wantMetric(t, after, 0, "siobroker_incidents_open")
	// What the alert rules (deploy/prometheus) read besides: the transport, the journal's writes,
	// the certificates' and the CRLs' ends.
	wantMetric(t, after, 1, "siobroker_transport_up")
	wantMetric(t, after, 0, "siobroker_journal_writes_total", `result="failed"`)
	if n, _ := metric(after, "siobroker_journal_writes_total", `result="appended"`); n < 2 {
		t.Errorf("journal_writes_total{appended} %v: the request and its reply were journaled", n)
	}
	wantFuture := func(name string, labels ...string) {
		t.Helper()
		if at, ok := metric(after, name, labels...); !ok || at < float64(time.Now().Unix()) {
			t.Errorf("%s%v = %v (found %v), want a time to come", name, labels, at, ok)
		}
	}
	wantFuture("siobroker_certificate_expiry_timestamp_seconds", `role="signing"`)
	wantFuture("siobroker_certificate_expiry_timestamp_seconds", `role="root"`)
	wantFuture("siobroker_crl_next_update_timestamp_seconds") // the development PKI's CRL
	if j, _ := metric(after, "siobroker_journal_last_sequence"); j <= journalBefore {
		t.Errorf("journal_last_sequence %v, not past %v", j, journalBefore)
	}
	for _, private := range []string{e.subject, messageID(t, raw), u.IIN} {
		if strings.Contains(after, private) {
			t.Errorf("/metrics carries %q", private)
		}
	}
	// The snapshot the dashboard and the command line read agrees.
	states, err := e.b.ServiceStates(context.Background())
	if err != nil || states[0].Dispatched != 1 || states[0].Answered != 1 || states[0].QueueDepth != -1 {
		t.Errorf("snapshot of service 1: %+v, %v", states[0], err)
	}
	var out, errb strings.Builder
	if code := Main(context.Background(), []string{"services", "--url", e.ops(t)}, &out, &errb); code != 0 {
		t.Fatalf("services exited %d: %s", code, errb.String())
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 94 ||
		!regexp.MustCompile(`^\s*1\s+-\s+-\s+0\s+-\s+0%\s+1\s+0\s*$`).MatchString(lines[1]) {
		t.Errorf("services: %d lines, service 1 %q; want 93 services, service 1 dispatched once, depths unknown", len(lines), lines[1])
	}

	if status, _, body := do(t, http.MethodGet, e.base+"/healthz", nil); status != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz: %d %q", status, body)
	}
	status, rep := readyz(t, e)
	if status != http.StatusOK || rep.Status != "ok" {
		t.Fatalf("/readyz: %d %+v", status, rep)
	}
	for _, name := range []string{"transport", "store", "signing_key", "certificate"} {
		if c := checkOf(rep, name); c.Status != health.CheckOK {
			t.Errorf("check %s: %+v", name, c)
		}
	}
	if strings.Contains(fmt.Sprint(rep), e.pki) || strings.Contains(fmt.Sprint(rep), ".key") {
		t.Errorf("/readyz names key files: %+v", rep)
	}
}

// TestRequestLogsCarryIDsNotSubjects: a real request through startBroker with a JSON logger:
// every line logged about it carries the client's messageId and the broker's id (per service,
// request/service), and neither the subject's IIN, name nor birth date, nor the case number of a
// refused request, appears anywhere in the log.
func TestRequestLogsCarryIDsNotSubjects(t *testing.T) {
	logs := &logBuffer{}
	e := opsBroker(t, siobroker.SystemClock{}, logs, nil)
	cfg := e.cfg
	person := demo.Generate(cfg.Demo.Seed, cfg.Demo.People, cfg.Demo.Organisations).People()[0]
	if person.IIN != e.subject {
		t.Fatalf("the demo subject %s is not the first person %s", e.subject, person.IIN)
	}
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	const foreignCase = "267100041000042" // a criminal case of another demo user

	send := func(wantCode int, extra ...string) (messageID, requestID string) {
		t.Helper()
		dir := t.TempDir()
		reqFile, replyFile := filepath.Join(dir, "request.xml"), filepath.Join(dir, "reply.xml")
		mark := len(logs.String())
		code, out, errs := runSend(t, e.sendArgs(u, append(extra, "--save-request", reqFile, "--save-reply", replyFile)...)...)
		if code != wantCode {
			t.Fatalf("send exited %d, want %d\n%s%s", code, wantCode, out, errs)
		}
		raw, err := os.ReadFile(reqFile)
		if err != nil {
			t.Fatal(err)
		}
		messageID = msgIDOf(t, raw)
		if wantCode == sendExitOK {
			reply, err := os.ReadFile(replyFile)
			if err != nil {
				t.Fatal(err)
			}
			_, info, _ := verifiedReply(t, reply, filepath.Join(e.pki, devpki.CAFile))
			requestID = info.MessageID
			logs.waitLog(t, `"msg":"request answered"`)
		} else {
			logs.waitLog(t, `"msg":"request refused"`)
		}
		lines := logs.lines(t, mark)
		if len(lines) < 2 {
			t.Fatalf("only %d log lines about the request", len(lines))
		}
		if requestID == "" { // a refusal: the broker's id is the one its lines carry
			requestID, _ = lines[len(lines)-1]["correlation_id"].(string)
		}
		for _, l := range lines {
			if ts, _ := l["time"].(string); !strings.HasSuffix(ts, "+05:00") {
				t.Errorf("log time %q is not in Astana time", ts)
			}
			corr, _ := l["correlation_id"].(string)
			if l["message_id"] != messageID || requestID == "" || (corr != requestID && !strings.HasPrefix(corr, requestID+"/")) {
				t.Errorf("line without the request's ids (message_id %s, correlation_id %s): %v", messageID, requestID, l)
			}
		}
		return messageID, requestID
	}
	send(sendExitOK, "--services", "1,5,11,37")
	send(sendExitFault, "--case", foreignCase, "--services", "1")
	// A refusal by the user registry, which logs with the request's context.
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"users", "block", "--data", e.cfg.DataDir, "--iin", u.IIN, "--reason", "test"}, &out, &errb); code != 0 {
		t.Fatalf("users block exited %d: %s", code, errb.String())
	}
	mark := len(logs.String())
	send(sendExitFault, "--services", "1")
	if !strings.Contains(logs.String()[mark:], "request refused by the user registry") {
		t.Errorf("the user registry did not log the refusal:\n%s", logs.String()[mark:])
	}

	all := logs.String()
	for what, private := range map[string]string{
		"the subject's IIN": person.IIN, "the subject's last name": person.LastName, "the subject's first name": person.FirstName,
		"the subject's birth date": person.BirthDate.Format("2006-01-02"), "the refused case number": foreignCase,
	} {
		if private != "" && strings.Contains(all, private) {
			t.Errorf("the log holds %s (%s):\n%s", what, private, all)
		}
	}
}

// msgIDOf reads requestInfo/messageId of a saved request.
func msgIDOf(t *testing.T, raw []byte) string {
	t.Helper()
	doc, _, err := soap.ReadEnvelope(bytes.NewReader(raw), "text/xml; charset=utf-8", soap.Limits{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	el := doc.FindElement("//requestInfo/messageId")
	if el == nil {
		t.Fatal("no messageId in the saved request")
	}
	return strings.TrimSpace(el.Text())
}

// TestCertificateWarningBeforeExpiry: with the injected clock 29 days before the broker's
// certificate expires, the start-up log warns naming the date, and /readyz passes with the
// certificate check warning.
func TestCertificateWarningBeforeExpiry(t *testing.T) {
	src := sharedBroker(t)
	signer, err := signing.LoadSigner(filepath.Join(src.pki, src.manifest.BrokerCert), filepath.Join(src.pki, src.manifest.BrokerKey))
	if err != nil {
		t.Fatal(err)
	}
	notAfter := signer.Certificate().NotAfter
	at := notAfter.Add(-29*24*time.Hour - time.Hour)
	logs := &logBuffer{}
	e := opsBroker(t, offsetClock{time.Until(at)}, logs, nil)

	logs.waitLog(t, "the broker's signing certificate expires soon")
	date := siobroker.FormatTime(notAfter)
	found := false
	for _, l := range logs.lines(t, 0) {
		if l["msg"] == "the broker's signing certificate expires soon" {
			found = true
			if l["level"] != "WARN" || l["not_after"] != date || !strings.Contains(fmt.Sprint(l["detail"]), "in 29 days") {
				t.Errorf("warning line %v; want WARN naming %s, in 29 days", l, date)
			}
		}
	}
	if !found {
		t.Fatal("no certificate warning at start-up")
	}
	status, rep := readyz(t, e)
	c := checkOf(rep, "certificate")
	if status != http.StatusOK || rep.Status != "ok" || c.Status != health.CheckWarn || !strings.Contains(c.Detail, date) {
		t.Errorf("/readyz %d %+v; want ok with the certificate warning naming %s", status, rep, date)
	}
}

// tcpProxy forwards connections to target until cut; restore listens again on the same address.
type tcpProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), target: target}
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener and every connection through the proxy, as when RabbitMQ goes away.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *tcpProxy) restore(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}

// amqpOpsBroker starts a broker on RabbitMQ at url with a fresh prefix.
func amqpOpsBroker(t *testing.T, url string, inProcessAdapters bool) (*e2eBroker, string) {
	t.Helper()
	prefix := amqpPrefix(t)
	e := opsBroker(t, siobroker.SystemClock{}, nil, func(cfg *config.Broker) {
		cfg.Transport = "amqp"
		cfg.AMQP.URL, cfg.AMQP.Prefix, cfg.AMQP.Instance = url, prefix, prefix+"broker"
		cfg.AMQP.ClassicQueues, cfg.AMQP.InProcessAdapters = true, inProcessAdapters
	})
	return e, prefix
}

// TestReadyzWhenRabbitMQIsCut: when the connection to RabbitMQ goes away (a proxy in between is
// cut), /readyz fails naming the transport while /healthz still answers, a request is refused
// with SIO-UNAVAILABLE; once RabbitMQ is back, the broker is ready again.
func TestReadyzWhenRabbitMQIsCut(t *testing.T) {
	amqpPrefix(t) // skips, or fails under CI, without RabbitMQ
	proxy := startProxy(t, "127.0.0.1:5672")
	e, _ := amqpOpsBroker(t, "amqp://guest:guest@"+proxy.addr+"/", true)
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	if code, out, errs := runSend(t, e.sendArgs(u)...); code != sendExitOK {
		t.Fatalf("send before the cut exited %d\n%s%s", code, out, errs)
	}
	if status, rep := readyz(t, e); status != http.StatusOK {
		t.Fatalf("/readyz before the cut: %d %+v", status, rep)
	}

	proxy.cut()
	waitReady(t, e, http.StatusServiceUnavailable, 15*time.Second)
	status, rep := readyz(t, e)
	c := checkOf(rep, "transport")
	if status != http.StatusServiceUnavailable || rep.Status != "fail" || c.Status != health.CheckFail ||
		!strings.Contains(c.Detail, "RabbitMQ") {
		t.Fatalf("/readyz during the outage: %d %+v; want transport failing, naming RabbitMQ", status, rep)
	}
	if strings.Contains(c.Detail, proxy.addr) || strings.Contains(c.Detail, "guest") {
		t.Errorf("the transport detail names the server or its credentials: %q", c.Detail)
	}
	if s := checkOf(rep, "store"); s.Status != health.CheckOK {
		t.Errorf("store check during a RabbitMQ outage: %+v", s)
	}
	if status, _, _ := do(t, http.MethodGet, e.base+"/healthz", nil); status != http.StatusOK {
		t.Errorf("/healthz during the outage: %d, want 200 (the process serves)", status)
	}
	code, out, _ := runSend(t, e.sendArgs(u)...)
	if code != sendExitFault || !strings.Contains(out, "fault SIO-UNAVAILABLE") {
		t.Errorf("send during the outage exited %d: %s; want SIO-UNAVAILABLE", code, out)
	}
	// The outage is an incident the broker opened by itself (§39–41), whoever asked.
	outage := waitIncident(t, e, siobroker.IncidentTransportOutage, 15*time.Second)
	if !strings.Contains(outage.LastError, "not connected") || outage.Status != siobroker.IncidentOpen {
		t.Errorf("the transport-outage incident: %+v", outage)
	}
	// What the alert SiobrokerTransportDown reads (deploy/prometheus).
	wantMetric(t, scrape(t, e), 0, "siobroker_transport_up")

	proxy.restore(t)
	waitReady(t, e, http.StatusOK, 60*time.Second)
	wantMetric(t, scrape(t, e), 1, "siobroker_transport_up")
}

// waitIncident polls the broker's store for an open incident of typ, or fails the test after limit.
func waitIncident(t *testing.T, e *e2eBroker, typ string, limit time.Duration) siobroker.Incident {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		open, err := e.b.Store().Incidents(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		for _, inc := range open {
			if inc.Type == typ {
				return inc
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no open %s incident within %s; open: %+v", typ, limit, open)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady polls /readyz until it answers status, or fails the test after limit.
func waitReady(t *testing.T, e *e2eBroker, status int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got, rep := readyz(t, e)
		if got == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz stayed %d %+v for %s, want %d", got, rep, limit, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestQueueDepthMetricsOverRabbitMQ: on RabbitMQ, a message published to a service queue that no
// adapter consumes shows in that service's queue depth, and a dead letter of the service in its
// dead-letter count, in /metrics and in the snapshot.
func TestQueueDepthMetricsOverRabbitMQ(t *testing.T) {
	e, prefix := amqpOpsBroker(t, testAMQPURL, false)
	conn, err := amqp091.Dial(testAMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []struct {
		queue   string
		headers amqp091.Table
	}{
		{prefix + "sio.service.042", nil},
		{prefix + "sio.service.042", nil},
		{prefix + "sio.dlq", amqp091.Table{"sio_service": "42"}},
	} {
		conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q.queue, true, false,
			amqp091.Publishing{Headers: q.headers, DeliveryMode: amqp091.Persistent, Body: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := conf.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish to %s not confirmed: %v", q.queue, err)
		}
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		body := scrape(t, e)
		depth, _ := metric(body, "siobroker_service_queue_depth", `service="42"`)
		dead, _ := metric(body, "siobroker_service_dead_letters", `service="42"`)
		if depth == 2 && dead == 1 {
			wantMetric(t, body, 0, "siobroker_service_queue_depth", `service="41"`)
			wantMetric(t, body, 0, "siobroker_service_dead_letters", `service="41"`)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service 42: queue depth %v, dead letters %v; want 2 and 1", depth, dead)
		}
		time.Sleep(250 * time.Millisecond)
	}
	states, err := e.b.ServiceStates(context.Background())
	if err != nil || states[41].QueueDepth != 2 || states[41].DeadLetters != 1 || states[41].Queue != "sio.service.042" {
		t.Errorf("snapshot of service 42: %+v, %v", states[41], err)
	}
	// The command line reads the same figures.
	var out, errb strings.Builder
	if code := Main(context.Background(), []string{"services", "--url", e.ops(t), "--busy", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("services exited %d: %s", code, errb.String())
	}
	var rows []serviceRow
	if err := json.Unmarshal([]byte(out.String()), &rows); err != nil || len(rows) != 1 || rows[0].Service != 42 ||
		rows[0].QueueDepth != 2 || rows[0].DeadLetters != 1 {
		t.Errorf("services --busy --json: %v %+v", err, rows)
	}
}
