package httpapi

import (
	"context"
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
	"github.com/sio-pso/siobroker/internal/ratelimit"
)

// scopes counts the refusals a ClientLimiter observes.
type scopes struct {
	mu sync.Mutex
	n  map[ratelimit.Scope]int
}

func (s *scopes) observe(scope ratelimit.Scope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[ratelimit.Scope]int{}
	}
	s.n[scope]++
}

func (s *scopes) get(scope ratelimit.Scope) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[scope]
}

func limitedHandler(t *testing.T, p Pipeline, lim ratelimit.Limits, allow []netip.Prefix, seen *scopes) http.Handler {
	t.Helper()
	l, err := NewClientLimiter(lim, allow, seen.observe)
	if err != nil {
		t.Fatal(err)
	}
	// The clock stands still: no token is earned during the test, whatever the machine's speed.
	return newHandler(t, Config{Endpoint: endpoint, Clock: fixedClock{time.Date(2026, 12, 7, 9, 0, 0, 0, siobroker.Astana)},
		Logger: slog.New(slog.DiscardHandler), Limiter: l}, p)
}

// clientFrom is an HTTP client whose connections come from the loopback address local.
func clientFrom(t *testing.T, local string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func post(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
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
// SIO-RATE-LIMITED, without its body reaching the pipeline, while 127.0.0.2 is still served; an
// allowlisted 127.0.0.3 is never limited.
func TestClientOverItsRateIsRefusedOthersServed(t *testing.T) {
	p := &fakePipeline{}
	seen := &scopes{}
	srv := httptest.NewServer(limitedHandler(t, p, ratelimit.Limits{Rate: 0.5, Burst: 2},
		[]netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}, seen))
	t.Cleanup(srv.Close)
	a, b, gw := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")
	for i := range 2 {
		if resp, body := post(t, a, srv.URL+endpoint); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := post(t, a, srv.URL+endpoint)
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
	if resp, body := post(t, b, srv.URL+endpoint); resp.StatusCode != http.StatusOK {
		t.Fatalf("another client while the first is limited: %d %s", resp.StatusCode, body)
	}
	for i := range 10 {
		if resp, body := post(t, gw, srv.URL+endpoint); resp.StatusCode != http.StatusOK {
			t.Fatalf("allowlisted request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if n := seen.get(ratelimit.ScopeRate); n != 1 {
		t.Errorf("%d rate refusals observed, want 1", n)
	}
}

// TestConcurrentRequestsPerClientBounded: with two requests of a client held in the pipeline, its
// third gets 429, another client is served meanwhile, and once one ends the client is served again.
func TestConcurrentRequestsPerClientBounded(t *testing.T) {
	entered, unblock := make(chan struct{}), make(chan struct{})
	p := &fakePipeline{handle: func(ctx context.Context, body io.Reader, _ string) (*broker.Reply, broker.Request, error) {
		if broker.ClientOf(ctx) == "192.0.2.1" {
			entered <- struct{}{}
			<-unblock
		}
		return &broker.Reply{Bytes: []byte("<reply/>")}, broker.Request{}, nil
	}}
	seen := &scopes{}
	h := limitedHandler(t, p, ratelimit.Limits{Concurrent: 2}, nil, seen)
	serve := func(remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, endpoint, strings.NewReader("<x/>"))
		r.Header.Set("Content-Type", "text/xml")
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Go(func() { codes <- serve("192.0.2.1:4000").Code })
	}
	<-entered
	<-entered
	if w := serve("192.0.2.1:4001"); w.Code != http.StatusTooManyRequests || faultOf(t, w.Body.Bytes()).Code != siobroker.CodeRateLimited ||
		w.Header().Get("Retry-After") == "" {
		t.Errorf("the third concurrent request: %d %s, want 429 with Retry-After", w.Code, w.Body)
	}
	if w := serve("192.0.2.2:4000"); w.Code != http.StatusOK {
		t.Errorf("another client while the first holds its slots: %d", w.Code)
	}
	unblock <- struct{}{}
	if c := <-codes; c != http.StatusOK {
		t.Errorf("a held request ended %d", c)
	}
	done := make(chan int)
	go func() { done <- serve("192.0.2.1:4002").Code }()
	<-entered // admitted: a slot was freed
	close(unblock)
	wg.Wait()
	if c := <-done; c != http.StatusOK {
		t.Errorf("after a slot was freed: %d", c)
	}
	if n := seen.get(ratelimit.ScopeConcurrent); n != 1 {
		t.Errorf("%d concurrency refusals observed, want 1", n)
	}
}

// TestIPv6ClientsCountedByTheir64: two addresses of one /64 share their limits, another /64 does not.
func TestIPv6ClientsCountedByTheir64(t *testing.T) {
	h := limitedHandler(t, &fakePipeline{}, ratelimit.Limits{Rate: 1, Burst: 1}, nil, &scopes{})
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
	}{{"[2001:db8:1:1::1]:5", 200}, {"[2001:db8:1:1::2]:5", 429}, {"[2001:db8:1:2::1]:5", 200}} {
		if got := serve(c.remote); got != c.want {
			t.Errorf("%s: %d, want %d", c.remote, got, c.want)
		}
	}
}
