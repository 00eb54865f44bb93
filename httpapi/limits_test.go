package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/internal/testclock"
)

// refusal is one call of ClientLimits.Refused.
type refusal struct {
	client        string
	code          siobroker.Code
	contentLength int64
}

// refusals records the calls of ClientLimits.Refused.
type refusals struct {
	mu  sync.Mutex
	got []refusal
}

func (r *refusals) record(ctx context.Context, cause error, contentLength int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, refusal{broker.ClientOf(ctx), siobroker.ErrorCode(cause), contentLength})
}

func (r *refusals) all() []refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]refusal(nil), r.got...)
}

// limitedServer is a real server (NewServer, on a loopback listener) of the SOAP endpoint over p,
// with the client limits lim; the clock stands still unless the test moves it, so that no token
// is earned during a test, whatever the machine's speed.
func limitedServer(t *testing.T, p Pipeline, lim ClientLimits) (url string, clock *testclock.Clock, seen *refusals) {
	t.Helper()
	clock = testclock.New(time.Date(2026, 12, 7, 9, 0, 0, 0, siobroker.Astana))
	seen = &refusals{}
	lim.Clock, lim.Refused = clock, seen.record
	l, err := NewClientLimiter(lim)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	h := newHandler(t, Config{Endpoint: endpoint, PublicURL: publicURL, Clock: clock, Logger: logger, Limiter: l}, p)
	srv := NewServer(ServerConfig{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, Limiter: l}, h, logger)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + endpoint, clock, seen
}

// clientFrom is an HTTP client whose connections come from the loopback address local.
func clientFrom(t *testing.T, local string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func postFrom(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("<x/>"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := c.Do(req)
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

// TestClientOverItsRateIsRefusedOthersServed: 127.0.0.1 past its burst gets 429, Retry-After and
// SIO-RATE-LIMITED, without its body reaching the pipeline, and the refusal is handed over to be
// journaled with its client; 127.0.0.2 is still served; an allowlisted 127.0.0.3 is never limited;
// once the clock has earned a token, 127.0.0.1 is served again.
func TestClientOverItsRateIsRefusedOthersServed(t *testing.T) {
	p := &fakePipeline{}
	url, clock, seen := limitedServer(t, p, ClientLimits{Rate: 0.5, Burst: 2,
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}})
	a, b, gw := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")
	for i := range 2 {
		if resp, body := postFrom(t, a, url); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := postFrom(t, a, url)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("past the burst: status %d, want 429", resp.StatusCode)
	}
	if f := faultOf(t, body); f.Code != siobroker.CodeRateLimited {
		t.Errorf("fault %s, want %s", f.Code, siobroker.CodeRateLimited)
	}
	if got := resp.Header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2 (one token at 0.5/s)", got)
	}
	if n := p.calls.Load(); n != 2 {
		t.Errorf("the pipeline was called %d times, want 2: a refused request must not be read", n)
	}
	if got, want := fmt.Sprint(seen.all()), fmt.Sprint([]refusal{{"127.0.0.1", siobroker.CodeRateLimited, 4}}); got != want {
		t.Errorf("refusals handed over %s, want %s", got, want)
	}
	if resp, body := postFrom(t, b, url); resp.StatusCode != http.StatusOK {
		t.Fatalf("another client while the first is limited: %d %s", resp.StatusCode, body)
	}
	for i := range 10 {
		if resp, body := postFrom(t, gw, url); resp.StatusCode != http.StatusOK {
			t.Fatalf("allowlisted request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	clock.Advance(2 * time.Second)
	if resp, body := postFrom(t, a, url); resp.StatusCode != http.StatusOK {
		t.Fatalf("the first client once a token is earned: %d %s", resp.StatusCode, body)
	}
}

// rawConn is one TCP connection from a given loopback address, speaking HTTP/1.1 by hand, so that
// the test decides exactly how many connections each client has open.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialFrom(t *testing.T, local, url string) *rawConn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	host := strings.TrimPrefix(url, "http://")
	host = host[:strings.Index(host, "/")]
	c, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, r: bufio.NewReader(c)}
}

// post sends one SOAP POST on the connection and reads the answer.
func (rc *rawConn) post(t *testing.T) (*http.Response, []byte, error) {
	t.Helper()
	_ = rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(rc.c, "POST %s HTTP/1.1\r\nHost: broker\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: 4\r\n\r\n<x/>", endpoint); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(rc.r, nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// TestConnectionsPerClientBounded: with 2 connections of 127.0.0.1 open (idle after a request
// each), its third connection's request gets 429 SIO-TOO-MANY-CONNECTIONS with Retry-After and the
// connection is closed; its two others still work, and 127.0.0.2 opens its own meanwhile; once one
// of the first two closes, a new connection of 127.0.0.1 is served.
func TestConnectionsPerClientBounded(t *testing.T) {
	p := &fakePipeline{}
	url, _, seen := limitedServer(t, p, ClientLimits{Connections: 2})
	first := []*rawConn{dialFrom(t, "127.0.0.1", url), dialFrom(t, "127.0.0.1", url)}
	for i, c := range first {
		if resp, body, err := c.post(t); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d within the limit: %v %v %s", i, err, resp, body)
		}
	}
	third := dialFrom(t, "127.0.0.1", url)
	resp, body, err := third.post(t)
	if err != nil {
		t.Fatalf("the third connection got no answer: %v", err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || faultOf(t, body).Code != siobroker.CodeTooManyConnections ||
		resp.Header.Get("Retry-After") != "1" || !resp.Close {
		t.Errorf("the third connection: %d %v %s, want 429 %s, Retry-After 1 and the connection closed",
			resp.StatusCode, resp.Header, body, siobroker.CodeTooManyConnections)
	}
	if _, err := third.r.ReadByte(); err != io.EOF {
		t.Errorf("the third connection after its fault: %v, want it closed (EOF)", err)
	}
	if got, want := fmt.Sprint(seen.all()), fmt.Sprint([]refusal{{"127.0.0.1", siobroker.CodeTooManyConnections, 4}}); got != want {
		t.Errorf("refusals handed over %s, want %s", got, want)
	}
	for i, c := range first {
		if resp, body, err := c.post(t); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d again, while the third was refused: %v %v %s", i, err, resp, body)
		}
	}
	other := []*rawConn{dialFrom(t, "127.0.0.2", url), dialFrom(t, "127.0.0.2", url)}
	for i, c := range other {
		if resp, body, err := c.post(t); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d of another client: %v %v %s", i, err, resp, body)
		}
	}
	// The server frees the slot when it sees the close, which it does in its own time: a new
	// connection is tried until it is served, each refused one closed by the server.
	first[0].c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _, err := dialFrom(t, "127.0.0.1", url).post(t)
		if err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection of 127.0.0.1 served after one of its two closed: %v %v", err, resp)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIPv6ClientsCountedByTheir64: two addresses of one /64 share their limits, another /64 does
// not; an IPv4-mapped address is limited as its IPv4 address, and allowlisted likewise.
func TestIPv6ClientsCountedByTheir64(t *testing.T) {
	seen := &refusals{}
	l, err := NewClientLimiter(ClientLimits{Rate: 1, Burst: 1, Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Clock: fixedClock{time.Date(2026, 12, 7, 9, 0, 0, 0, siobroker.Astana)}, Refused: seen.record})
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, Config{Endpoint: endpoint, PublicURL: publicURL, Clock: fixedClock{time.Now()}, Logger: slog.New(slog.DiscardHandler), Limiter: l}, &fakePipeline{})
	serve := func(remote string) int {
		r := httptest.NewRequest(http.MethodPost, endpoint, strings.NewReader("<x/>"))
		r.Header.Set("Content-Type", "text/xml")
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, c := range []struct {
		remote string
		want   int
	}{
		{"[2001:db8:1:1::1]:5", 200}, {"[2001:db8:1:1::2]:5", 429}, {"[2001:db8:1:2::1]:5", 200},
		{"[::ffff:198.51.100.1]:5", 200}, {"198.51.100.1:6", 429},
		{"[::ffff:192.0.2.1]:5", 200}, {"[::ffff:192.0.2.1]:5", 200},
	} {
		if got := serve(c.remote); got != c.want {
			t.Errorf("%s: %d, want %d", c.remote, got, c.want)
		}
	}
	if n := len(seen.all()); n != 2 {
		t.Errorf("%d refusals handed over, want 2", n)
	}
}

// TestClientLimitsValidated: a limiter without a clock, or with a negative limit, is refused.
func TestClientLimitsValidated(t *testing.T) {
	for _, tt := range []struct {
		lim  ClientLimits
		want string
	}{
		{ClientLimits{}, "ClientLimits.Clock is required"},
		{ClientLimits{Clock: fixedClock{}, Connections: -1}, "Connections must not be negative"},
		{ClientLimits{Clock: fixedClock{}, Rate: -1}, "must be finite and not negative"},
		{ClientLimits{Clock: fixedClock{}, Allow: []netip.Prefix{{}}}, "invalid prefix"},
	} {
		if _, err := NewClientLimiter(tt.lim); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewClientLimiter(%+v) = %v, want %q", tt.lim, err, tt.want)
		}
	}
}
