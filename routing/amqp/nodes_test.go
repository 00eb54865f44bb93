package amqp

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker/schemas"
)

func TestSplitURLs(t *testing.T) {
	for in, want := range map[string][]string{
		"":                          nil,
		" , ":                       nil,
		"amqp://a/":                 {"amqp://a/"},
		"amqp://a/, amqp://b:5673/": {"amqp://a/", "amqp://b:5673/"},
		"amqp://a/,,amqps://c/,":    {"amqp://a/", "amqps://c/"},
	} {
		if got := SplitURLs(in); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("SplitURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestValidateURLs: every node's URI is checked, a bad one named by its position, and the
// password is not repeated.
func TestValidateURLs(t *testing.T) {
	good := Config{URL: "amqp://u:secret@rabbit1:5672/sio, amqps://v:other@rabbit2/sio"}
	if err := good.Validate(); err != nil {
		t.Errorf("two nodes: %v", err)
	}
	for _, bad := range []string{"", " , ", "amqp://u:secret@rabbit1/,http://u:secret@rabbit2/", "amqp://u:secret@rabbit1/,amqp://u:secret@[::1/"} {
		err := Config{URL: bad}.Validate()
		if err == nil {
			t.Errorf("%q: no error", bad)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error shows the password: %v", bad, err)
		}
		if strings.Contains(bad, ",") && strings.TrimSpace(strings.Trim(bad, ", ")) != "" && !strings.Contains(err.Error(), "URL 2 of 2") {
			t.Errorf("%q: the error does not name the second URL: %v", bad, err)
		}
	}
}

// refusingAddr is a loopback address where nothing listens: a dial is refused.
func refusingAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestDialFailsOverToSecondNode: with the first node refusing connections, every dial lands on
// the second, at once (no back-off: one attempt tries each node).
func TestDialFailsOverToSecondNode(t *testing.T) {
	requireRabbit(t)
	cfg := Config{URL: "amqp://guest:guest@" + refusingAddr(t) + "/," + testURL, Instance: "failover-test"}
	cfg.setDefaults()
	cfg.ReconnectMin = time.Minute // a back-off would show as a time-out
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		start := time.Now()
		conn, err := dialRetry(ctx, cfg, watermill.NopLogger{})
		cancel()
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if got := NodeAddr(conn); got != "127.0.0.1:5672" {
			t.Errorf("dial %d: connected to %s, want the second node 127.0.0.1:5672", i, got)
		}
		_ = conn.Close()
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("dial %d took %s", i, d)
		}
	}

	// No node accepts: the error names each.
	bad := Config{URL: "amqp://guest:guest@" + refusingAddr(t) + "/,amqp://guest:guest@" + refusingAddr(t) + "/"}
	_, refused, err := dialNodes(bad)
	if err == nil || !refused || strings.Count(err.Error(), "node 127.0.0.1:") != 2 {
		t.Errorf("two refusing nodes: refused %v, err %v", refused, err)
	}
}

// proxy forwards TCP connections from a loopback port to target until it is stopped, which
// closes the listener and every forwarded connection: to the transport, a node that died.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(u, c); _ = u.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, u); _ = c.Close() }()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) stop() {
	_ = p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// TestTransportMovesToSurvivingNode: a transport whose node dies (here a proxy in front of the
// server, stopped) reconnects to the other node of its URL list, publishes and consumes there,
// well within the back-off it would otherwise sleep: neither the dial nor the consumers pause.
func TestTransportMovesToSurvivingNode(t *testing.T) {
	cfg := testConfig(t, []int{32}, nil)
	if err := Declare(ctxFor(t, 10*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, "127.0.0.1:5672")
	// The publishing and the consuming connection are dialled one after the other, so to
	// consecutive nodes: one of them is on the proxy.
	cfg.URL = "amqp://guest:guest@" + p.addr() + "/," + testURL
	cfg.ReconnectMin, cfg.ReconnectMax = 20*time.Second, 30*time.Second // a back-off would show
	tr := newTransport(t, cfg)
	onProxy := 0
	for _, c := range []string{NodeAddr(tr.pubConn.get()), NodeAddr(tr.subConn.get())} {
		if c == p.addr() {
			onProxy++
		}
	}
	if onProxy == 0 {
		t.Fatalf("neither connection went to the node %s", p.addr())
	}
	msgs, err := tr.Subscriber().Subscribe(ctxFor(t, 30*time.Second), schemas.ServiceTopic(32))
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	p.stop()
	waitFor(t, 10*time.Second, func() bool {
		return tr.Ready() == nil && NodeAddr(tr.pubConn.get()) == "127.0.0.1:5672" && NodeAddr(tr.subConn.get()) == "127.0.0.1:5672"
	}, "both connections on the surviving node")
	t.Logf("connections on the surviving node %s after the first died", time.Since(start).Round(time.Millisecond))

	var perr error
	waitFor(t, 10*time.Second, func() bool {
		perr = tr.Publisher().Publish(schemas.ServiceTopic(32), message.NewMessage("after-failover", []byte("x")))
		return perr == nil
	}, "a publish on the surviving node")
	t.Logf("published %s after the first died", time.Since(start).Round(time.Millisecond))
	select {
	case m := <-msgs:
		t.Logf("consumed %s after the first died", time.Since(start).Round(time.Millisecond))
		if m.UUID != "after-failover" {
			t.Errorf("consumed %s, want after-failover", m.UUID)
		}
		m.Ack()
	case <-time.After(5 * time.Second):
		// A consumer whose connection died while it opened its channel used to pause
		// ReconnectMin/2..ReconnectMin (10-20 s here) before consuming again.
		t.Fatal(errors.New("the message published after the failover was not consumed within 5 s"))
	}
}

// TestConcurrentRoundsTryEveryNode: dials at the same time share the cursor, yet each round
// tries every node once (a round that took each node from the shared cursor could be given one
// node twice and miss the one that is up).
func TestConcurrentRoundsTryEveryNode(t *testing.T) {
	addrs := []string{refusingAddr(t), refusingAddr(t), refusingAddr(t)}
	url := "amqp://guest:guest@" + addrs[0] + "/,amqp://guest:guest@" + addrs[1] + "/,amqp://guest:guest@" + addrs[2] + "/"
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				_, refused, err := dialNodes(Config{URL: url})
				if err == nil || !refused {
					t.Errorf("refusing nodes: refused %v, err %v", refused, err)
					return
				}
				for _, a := range addrs {
					if n := strings.Count(err.Error(), "node "+a+":"); n != 1 {
						t.Errorf("a round tried %s %d times: %v", a, n, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
