package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/schemas/soap"
)

const endpoint = "/SyncChannel/v10"

// publicURL is the configured address the tests' WSDLs must give.
const publicURL = "https://broker.sio.example:8443"

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// fakePipeline records what it was given and answers with handle.
type fakePipeline struct {
	calls  atomic.Int32
	handle func(ctx context.Context, body io.Reader, contentType string) (*broker.Reply, broker.Request, error)

	mu          sync.Mutex
	body        []byte
	contentType string
}

func (p *fakePipeline) Handle(ctx context.Context, body io.Reader, contentType string) (*broker.Reply, broker.Request, error) {
	p.calls.Add(1)
	if p.handle != nil {
		return p.handle(ctx, body, contentType)
	}
	b, err := io.ReadAll(body)
	p.mu.Lock()
	p.body, p.contentType = b, contentType
	p.mu.Unlock()
	if err != nil {
		return nil, broker.Request{}, err
	}
	return &broker.Reply{Bytes: []byte("<reply/>"), MessageID: "r1", RequestID: "m1"}, broker.Request{}, nil
}

func newServer(t *testing.T, p *fakePipeline, ready func(context.Context) error) *httptest.Server {
	t.Helper()
	h := newHandler(t, Config{
		Endpoint:     endpoint,
		PublicURL:    publicURL,
		MaxBodyBytes: 4096,
		Clock:        fixedClock{time.Date(2026, 11, 23, 17, 0, 0, 0, siobroker.Astana)},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ready:        ready,
	}, p)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newHandler is NewHandler, failing the test on an error.
func newHandler(t *testing.T, cfg Config, p Pipeline) http.Handler {
	t.Helper()
	h, err := NewHandler(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestNewHandlerValidates: a missing required field, a negative body limit, a mount without a
// handler or no pipeline is refused, naming it.
func TestNewHandlerValidates(t *testing.T) {
	full := Config{Endpoint: endpoint, PublicURL: publicURL, Clock: fixedClock{time.Now()}, Logger: slog.New(slog.DiscardHandler)}
	if _, err := NewHandler(full, &fakePipeline{}); err != nil {
		t.Fatalf("NewHandler with every field: %v", err)
	}
	for _, tt := range []struct {
		want string
		mod  func(*Config, *Pipeline)
	}{
		{"httpapi: Config.Endpoint is required", func(c *Config, _ *Pipeline) { c.Endpoint = "" }},
		{"httpapi: Config.PublicURL is required", func(c *Config, _ *Pipeline) { c.PublicURL = "" }},
		{"httpapi: Config.Clock is required", func(c *Config, _ *Pipeline) { c.Clock = nil }},
		{"httpapi: Config.Logger is required", func(c *Config, _ *Pipeline) { c.Logger = nil }},
		{"httpapi: Config.MaxBodyBytes must not be negative", func(c *Config, _ *Pipeline) { c.MaxBodyBytes = -1 }},
		{`httpapi: Config.Mount["/reports"] has no handler`, func(c *Config, _ *Pipeline) {
			c.Mount = map[string]http.Handler{"/metrics": http.NotFoundHandler(), "/reports": nil}
		}},
		{"httpapi: NewHandler: pipeline is required", func(_ *Config, p *Pipeline) { *p = nil }},
	} {
		t.Run(tt.want, func(t *testing.T) {
			c, p := full, Pipeline(&fakePipeline{})
			tt.mod(&c, &p)
			if h, err := NewHandler(c, p); err == nil || h != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewHandler: %v, %v, want %q", h, err, tt.want)
			}
		})
	}
}

// getWithHost GETs url with the request's Host header set to host, as a client can.
func getWithHost(t *testing.T, url, host string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func do(t *testing.T, method, url string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func faultOf(t *testing.T, body []byte) *siobroker.Error {
	t.Helper()
	f, ok := soap.ParseFault(body)
	if !ok {
		t.Fatalf("response is not a SOAP fault: %s", body)
	}
	return f
}

func TestPostReturnsPipelineBytes(t *testing.T) {
	p := &fakePipeline{}
	srv := newServer(t, p, nil)
	resp, body := do(t, http.MethodPost, srv.URL+endpoint, strings.NewReader("<Envelope/>"),
		map[string]string{"Content-Type": "text/xml; charset=utf-8"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, body %s", resp.StatusCode, body)
	}
	if string(body) != "<reply/>" {
		t.Fatalf("body = %q, want the pipeline's bytes", body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		t.Fatalf("Content-Type = %q", ct)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("X-Content-Type-Options missing")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if string(p.body) != "<Envelope/>" || p.contentType != "text/xml; charset=utf-8" {
		t.Fatalf("pipeline got body %q content type %q", p.body, p.contentType)
	}
}

func TestPipelineErrorBecomesFault(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   siobroker.Code
		wantMsg    string
	}{
		{"signature", siobroker.Errorf(siobroker.CodeSigInvalid, "digest mismatch"), 500, siobroker.CodeSigInvalid, "digest mismatch"},
		{"replay", siobroker.Errorf(siobroker.CodeReplayID, "seen"), 500, siobroker.CodeReplayID, "seen"},
		{"oversize", siobroker.Errorf(siobroker.CodeOversize, "too big"), 413, siobroker.CodeOversize, "too big"},
		{"unavailable keeps cause out", siobroker.Wrap(siobroker.CodeUnavailable, errors.New("sqlite locked /data/broker.db"), "retry later"), 500, siobroker.CodeUnavailable, "retry later"},
		{"internal hides text", errors.New("nil pointer in /src/secret.go"), 500, siobroker.CodeInternal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakePipeline{handle: func(context.Context, io.Reader, string) (*broker.Reply, broker.Request, error) {
				return nil, broker.Request{MessageID: "m1"}, tt.err
			}}
			srv := newServer(t, p, nil)
			resp, body := do(t, http.MethodPost, srv.URL+endpoint, strings.NewReader("<x/>"), map[string]string{"Content-Type": "text/xml"})
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
				t.Fatalf("Content-Type = %q", ct)
			}
			f := faultOf(t, body)
			if f.Code != tt.wantCode || f.Message != tt.wantMsg {
				t.Fatalf("fault = %s %q, want %s %q", f.Code, f.Message, tt.wantCode, tt.wantMsg)
			}
			if bytes.Contains(body, []byte("secret")) || bytes.Contains(body, []byte("sqlite")) {
				t.Fatalf("fault leaks the cause: %s", body)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		t.Run(method, func(t *testing.T) {
			p := &fakePipeline{}
			srv := newServer(t, p, nil)
			resp, body := do(t, method, srv.URL+endpoint, strings.NewReader("<x/>"), nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("status = %d, want 405", resp.StatusCode)
			}
			if resp.Header.Get("Allow") != http.MethodPost {
				t.Fatalf("Allow = %q", resp.Header.Get("Allow"))
			}
			if f := faultOf(t, body); f.Code != siobroker.CodeMethod {
				t.Fatalf("fault code = %s", f.Code)
			}
			if p.calls.Load() != 0 {
				t.Fatalf("pipeline called %d times", p.calls.Load())
			}
		})
	}
}

func TestContentLengthOverLimit(t *testing.T) {
	p := &fakePipeline{}
	srv := newServer(t, p, nil)
	resp, body := do(t, http.MethodPost, srv.URL+endpoint, bytes.NewReader(make([]byte, 4097)), map[string]string{"Content-Type": "text/xml"})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413", resp.StatusCode)
	}
	if f := faultOf(t, body); f.Code != siobroker.CodeOversize {
		t.Fatalf("fault code = %s", f.Code)
	}
	if p.calls.Load() != 0 {
		t.Fatalf("pipeline called %d times for an oversized Content-Length", p.calls.Load())
	}

	// Exactly at the limit the pipeline is called.
	resp, _ = do(t, http.MethodPost, srv.URL+endpoint, bytes.NewReader(make([]byte, 4096)), map[string]string{"Content-Type": "text/xml"})
	if resp.StatusCode != http.StatusOK || p.calls.Load() != 1 {
		t.Fatalf("at the limit: status %d, calls %d", resp.StatusCode, p.calls.Load())
	}
}

// TestChunkedBodyIsLimited: without a Content-Length the body reader given to the pipeline stops at
// the limit with an *http.MaxBytesError.
func TestChunkedBodyIsLimited(t *testing.T) {
	var readErr atomic.Value
	p := &fakePipeline{handle: func(_ context.Context, body io.Reader, _ string) (*broker.Reply, broker.Request, error) {
		_, err := io.ReadAll(body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			readErr.Store(true)
			return nil, broker.Request{}, siobroker.Wrap(siobroker.CodeOversize, err, "too big")
		}
		return nil, broker.Request{}, errors.New("body was not limited")
	}}
	srv := newServer(t, p, nil)
	// An io.Reader that is not a bytes/strings reader makes the client send chunked.
	body := io.MultiReader(bytes.NewReader(make([]byte, 3000)), bytes.NewReader(make([]byte, 3000)))
	resp, out := do(t, http.MethodPost, srv.URL+endpoint, body, map[string]string{"Content-Type": "text/xml"})
	if resp.StatusCode != http.StatusRequestEntityTooLarge || readErr.Load() == nil {
		t.Fatalf("status = %d, MaxBytesError seen %v, body %s", resp.StatusCode, readErr.Load(), out)
	}
}

// TestWSDL: the WSDL gives the configured public address, whatever Host the request names: a
// client that sends Host: evil.example does not get a WSDL pointing there.
func TestWSDL(t *testing.T) {
	p := &fakePipeline{}
	srv := newServer(t, p, nil)
	u, _ := url.Parse(srv.URL)
	for _, q := range []string{"?wsdl", "?WSDL"} {
		t.Run(q, func(t *testing.T) {
			resp, body := getWithHost(t, srv.URL+endpoint+q, "evil.example")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
				t.Fatalf("Content-Type = %q", ct)
			}
			want := `location="` + publicURL + endpoint + `"`
			if !bytes.Contains(body, []byte(want)) {
				t.Fatalf("WSDL does not carry %s:\n%s", want, body)
			}
			if bytes.Contains(body, []byte("evil.example")) || bytes.Contains(body, []byte(u.Host)) {
				t.Fatalf("WSDL reflects the request's Host:\n%s", body)
			}
			if bytes.Contains(body, []byte(`location="http://127.0.0.1:8080/`)) {
				t.Fatalf("WSDL still carries the placeholder address")
			}
		})
	}
	if p.calls.Load() != 0 {
		t.Fatalf("pipeline called for a GET")
	}
}

// TestWSDLsOfAnEndpoint: each endpoint describes itself, what its WSDL imports and the other
// contracts it takes, with its own address; no other WSDL.
func TestWSDLsOfAnEndpoint(t *testing.T) {
	const asyncPath = "/AsyncChannel/v10"
	async := httptest.NewServer(newHandler(t, Config{
		Endpoint: asyncPath, PublicURL: publicURL, WSDL: soap.WSDLAsyncChannel, WSDLAlso: []string{soap.WSDLSyncChannel},
		Clock: fixedClock{time.Now()}, Logger: slog.New(slog.DiscardHandler),
	}, &fakePipeline{}))
	t.Cleanup(async.Close)
	syncSrv := newServer(t, &fakePipeline{}, nil)
	for _, tc := range []struct {
		base, path, query string
		status            int
		holds             string
	}{
		{async.URL, asyncPath, "?wsdl", 200, `location="?wsdl=async-channel-v10-interface.wsdl"`},
		{async.URL, asyncPath, "?wsdl=async-channel-v10-interface.wsdl", 200, `name="IAsyncChannel"`},
		{async.URL, asyncPath, "?wsdl=sync-channel-v10.wsdl", 200, `"` + publicURL + asyncPath + `"`},
		{syncSrv.URL, endpoint, "?wsdl=async-channel-v10.wsdl", 404, ""},
		{syncSrv.URL, endpoint, "?wsdl=../schemas.go", 404, ""},
	} {
		resp, body := do(t, http.MethodGet, tc.base+tc.path+tc.query, nil, nil)
		if resp.StatusCode != tc.status || !bytes.Contains(body, []byte(tc.holds)) {
			t.Errorf("%s%s: status %d, holds %q: %v", tc.path, tc.query, resp.StatusCode, tc.holds, bytes.Contains(body, []byte(tc.holds)))
		}
	}
}

func TestXSD(t *testing.T) {
	want, ok := soap.XSD("sio-query-v1.xsd")
	if !ok {
		t.Fatal("soap.XSD(sio-query-v1.xsd) not found")
	}
	tests := []struct {
		name       string
		query      string
		wantStatus int
	}{
		{"query schema", "?xsd=sio-query-v1.xsd", 200},
		{"gateway types", "?xsd=bip-sync-v10-types.xsd", 200},
		{"traversal", "?xsd=../etc/passwd", 404},
		{"traversal escaped", "?xsd=..%2F..%2Fetc%2Fpasswd", 404},
		{"absolute", "?xsd=/etc/passwd", 404},
		{"not an xsd", "?xsd=sync-channel-v10.wsdl", 404},
		{"unknown", "?xsd=nope.xsd", 404},
	}
	srv := newServer(t, &fakePipeline{}, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, srv.URL+endpoint+tt.query, nil, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.query == "?xsd=sio-query-v1.xsd" && !bytes.Equal(body, want) {
				t.Fatalf("served schema differs from soap.XSD")
			}
			if bytes.Contains(body, []byte("root:")) {
				t.Fatalf("served a system file")
			}
		})
	}
}

func TestGETWithoutQueryIsAFault(t *testing.T) {
	srv := newServer(t, &fakePipeline{}, nil)
	resp, body := do(t, http.MethodGet, srv.URL+endpoint, nil, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if f := faultOf(t, body); f.Code != siobroker.CodeMethod {
		t.Fatalf("fault code = %s", f.Code)
	}
}

// TestHealthzIsLiveness: /healthz says the process serves HTTP, ready or not; a POST while the
// broker is not ready is refused with SIO-UNAVAILABLE without reaching the pipeline.
func TestHealthzIsLiveness(t *testing.T) {
	var notReady atomic.Bool
	ready := func(context.Context) error {
		if notReady.Load() {
			return errors.New("message router is not running")
		}
		return nil
	}
	p := &fakePipeline{}
	srv := newServer(t, p, ready)

	for _, nr := range []bool{false, true} {
		notReady.Store(nr)
		resp, body := do(t, http.MethodGet, srv.URL+"/healthz", nil, nil)
		if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
			t.Fatalf("healthz (not ready: %v) = %d %q", nr, resp.StatusCode, body)
		}
	}

	resp, body := do(t, http.MethodPost, srv.URL+endpoint, strings.NewReader("<x/>"), map[string]string{"Content-Type": "text/xml"})
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("POST when not ready: status %d", resp.StatusCode)
	}
	f := faultOf(t, body)
	if f.Code != siobroker.CodeUnavailable {
		t.Fatalf("POST when not ready: fault %s", f.Code)
	}
	if strings.Contains(f.Message, "router") {
		t.Fatalf("fault leaks the readiness cause: %q", f.Message)
	}
	if p.calls.Load() != 0 {
		t.Fatalf("pipeline called while not ready")
	}

	notReady.Store(false)
	if resp, _ = do(t, http.MethodPost, srv.URL+endpoint, strings.NewReader("<x/>"), map[string]string{"Content-Type": "text/xml"}); resp.StatusCode != http.StatusOK || p.calls.Load() != 1 {
		t.Fatalf("POST after recovery = %d, calls %d", resp.StatusCode, p.calls.Load())
	}
}

// TestObserveAndLogs: every POST is observed with its outcome and fault code, and the log lines
// carry both ids of the request but not the values of a refused subject.
func TestObserveAndLogs(t *testing.T) {
	type seen struct {
		outcome siobroker.Outcome
		code    siobroker.Code
	}
	var mu sync.Mutex
	var got []seen
	var logs bytes.Buffer
	var logMu sync.Mutex
	p := &fakePipeline{handle: func(ctx context.Context, body io.Reader, _ string) (*broker.Reply, broker.Request, error) {
		b, _ := io.ReadAll(body)
		req := broker.Request{RequestID: "req-1", MessageID: "msg-1"}
		switch string(b) {
		case "subject":
			return nil, req, &siobroker.Error{Code: siobroker.CodeSchema, Field: "query/subject/iin",
				Message: `query/subject/iin: must be 12 digits, got "81080332563"`}
		case "internal":
			return nil, req, errors.New("disk full")
		}
		return &broker.Reply{Bytes: []byte("<reply/>"), MessageID: "req-1", RequestID: "msg-1"}, req, nil
	}}
	h := newHandler(t, Config{
		Endpoint: endpoint, PublicURL: publicURL, MaxBodyBytes: 4096,
		Clock:  fixedClock{time.Date(2026, 11, 23, 17, 0, 0, 0, siobroker.Astana)},
		Logger: slog.New(slog.NewJSONHandler(lockedWriter{&logMu, &logs}, nil)),
		Observe: func(o siobroker.Outcome, c siobroker.Code, _ time.Duration) {
			mu.Lock()
			got = append(got, seen{o, c})
			mu.Unlock()
		},
	}, p)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	xml := map[string]string{"Content-Type": "text/xml"}
	for _, body := range []string{"ok", "subject", "internal"} {
		do(t, http.MethodPost, srv.URL+endpoint, strings.NewReader(body), xml)
	}
	do(t, http.MethodPost, srv.URL+endpoint, strings.NewReader("x"), map[string]string{"Content-Type": "application/json"})

	want := []seen{
		{siobroker.OutcomeAnswered, ""}, {siobroker.OutcomeRefused, siobroker.CodeSchema}, {siobroker.OutcomeFailed, siobroker.CodeInternal},
		{siobroker.OutcomeRefused, siobroker.CodeContentType},
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d observed %v, want %v", i, got[i], want[i])
		}
	}
	logMu.Lock()
	defer logMu.Unlock()
	out := logs.String()
	if strings.Contains(out, "81080332563") {
		t.Errorf("the refused subject's value is in the log:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines[:3] {
		if !strings.Contains(l, `"message_id":"msg-1"`) || !strings.Contains(l, `"correlation_id":"req-1"`) {
			t.Errorf("line lacks the request's ids: %s", l)
		}
	}
	if !strings.Contains(out, "query/subject/iin") {
		t.Errorf("the refusal does not name its field:\n%s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestUnknownPath(t *testing.T) {
	p := &fakePipeline{}
	srv := newServer(t, p, nil)
	resp, _ := do(t, http.MethodPost, srv.URL+"/other", strings.NewReader("<x/>"), nil)
	if resp.StatusCode != http.StatusNotFound || p.calls.Load() != 0 {
		t.Fatalf("status %d, calls %d", resp.StatusCode, p.calls.Load())
	}
}

// TestClientIsThePeer: the pipeline is told the connection's peer as the client, never what a
// forwarded header claims, for the bounds on unauthenticated refusals.
func TestClientIsThePeer(t *testing.T) {
	clients := make(chan string, 1)
	p := &fakePipeline{handle: func(ctx context.Context, body io.Reader, _ string) (*broker.Reply, broker.Request, error) {
		clients <- broker.ClientOf(ctx)
		return &broker.Reply{Bytes: []byte("<reply/>")}, broker.Request{}, nil
	}}
	srv := newServer(t, p, nil)
	resp, _ := do(t, http.MethodPost, srv.URL+endpoint, strings.NewReader("<x/>"),
		map[string]string{"Content-Type": "text/xml; charset=utf-8", "X-Forwarded-For": "203.0.113.9"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := <-clients; got != "127.0.0.1" {
		t.Errorf("client %q, want the peer 127.0.0.1", got)
	}
}
