package amqp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Several nodes. Config.URL may name the nodes of a RabbitMQ cluster, comma-separated
// ("amqp://u:p@rabbit1:5672/sio,amqp://u:p@rabbit2:5672/sio"): every connection is dialled to one
// of them, and when it is lost (its node died, or was stopped for an upgrade) it is dialled
// again to the next node that answers. Each entry is a whole AMQP URI, dialled as written: the
// nodes may have their own credentials, and an amqps entry's TLS server name is its own host,
// so certificates are checked against the node actually dialled and the logs name that node.
// A comma inside a password must be written %2C, as it would have to be in any URI list.

// NodeDialTimeout bounds one attempt at one node (TCP connect, TLS and the AMQP handshake), so
// that a node whose host is gone (packets dropped rather than refused) does not hold up the
// move to the next one for the system's TCP time-out.
const NodeDialTimeout = 10 * time.Second

// SplitURLs splits an amqp.url value into its nodes' URIs: separated by commas, blanks around
// each ignored, empty entries dropped.
func SplitURLs(s string) []string {
	var out []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// urls is SplitURLs(c.URL).
func (c Config) urls() []string { return SplitURLs(c.URL) }

// validateURLs reports each entry of s that is not an AMQP URI, by position. The error of
// ParseURI quotes the URI, password included, when net/url cannot parse it: only the reason is
// kept then.
func validateURLs(s string) error {
	urls := SplitURLs(s)
	if len(urls) == 0 {
		return errors.New("amqp: empty URL")
	}
	var errs []error
	for i, u := range urls {
		if _, err := amqp091.ParseURI(u); err != nil {
			if ue := (*url.Error)(nil); errors.As(err, &ue) {
				err = fmt.Errorf("%w (a reserved character in the user name or password must be percent-encoded)", ue.Err)
			}
			if len(urls) == 1 {
				errs = append(errs, fmt.Errorf("amqp: URL: %w", err))
			} else {
				errs = append(errs, fmt.Errorf("amqp: URL %d of %d: %w", i+1, len(urls), err))
			}
		}
	}
	return errors.Join(errs...)
}

// cursors holds, per URL list, the node where the next dial starts: the one after the node
// connected last, or after the first node of the last round that failed. So a connection lost
// with its node is dialled first to the next node rather than to the dead one, and a process's
// connections spread over the nodes. A process starts at a random node, so that processes
// started with the same list do not all put their first connection on its first node.
var cursors sync.Map // string (Config.URL) → *atomic.Uint32

func cursor(url string) *atomic.Uint32 {
	if c, ok := cursors.Load(url); ok {
		return c.(*atomic.Uint32)
	}
	start := new(atomic.Uint32)
	start.Store(rand.Uint32())
	c, _ := cursors.LoadOrStore(url, start)
	return c.(*atomic.Uint32)
}

// dialNodes tries each node of cfg.URL once, starting at the cursor, and returns the first
// connection made. A round takes its start from the cursor once and then goes through every
// node in order, so that rounds of connections dialled at the same time each try every node
// (taking each node from the shared cursor, one of them could be given a node twice and miss
// the one that is up). On failure it returns every node's error, and whether every one of them
// failed to open the TCP connection at all (nothing listens: see dialRetry's probe).
func dialNodes(cfg Config) (conn *amqp091.Connection, refused bool, err error) {
	urls := cfg.urls()
	if len(urls) == 0 {
		return nil, false, errors.New("amqp: empty URL")
	}
	n := uint32(len(urls))
	cur := cursor(cfg.URL)
	start := cur.Add(1) - 1
	refused = true
	var errs []error
	for k := range n {
		i := (start + k) % n
		u := urls[i]
		conn, err := amqp091.DialConfig(u, amqp091.Config{
			Heartbeat:  10 * time.Second,
			Locale:     "en_US",
			Properties: amqp091.Table{"connection_name": "siobroker " + cfg.Instance},
			Dial:       amqp091.DefaultDial(NodeDialTimeout),
		})
		if err == nil {
			cur.Store(i + 1)
			return conn, false, nil
		}
		refused = refused && tcpFailed(err)
		if len(urls) > 1 {
			err = fmt.Errorf("node %s: %w", serverAddr(u), err)
		}
		errs = append(errs, err)
	}
	return nil, refused, errors.Join(errs...)
}

// Dial connects once to the first node of url (one AMQP URI, or several comma-separated) that
// accepts, for the commands that need a connection for a moment (dlq, siobench's checks).
func Dial(url string) (*amqp091.Connection, error) {
	if err := validateURLs(url); err != nil {
		return nil, err
	}
	conn, _, err := dialNodes(Config{URL: url})
	if err != nil {
		return nil, fmt.Errorf("amqp: connect to RabbitMQ: %w", err)
	}
	return conn, nil
}

// serverAddrs are the host:port of each node of url that parses.
func serverAddrs(url string) []string {
	var out []string
	for _, u := range SplitURLs(url) {
		if a := serverAddr(u); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// NodeAddr is the address of the node conn is connected to, for the logs.
func NodeAddr(conn *amqp091.Connection) string {
	if a := conn.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}
