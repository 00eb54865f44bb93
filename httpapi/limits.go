package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/internal/ratelimit"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// ClientLimits bound what one client address (an IPv6 client by its /64, broker.ClientKey) may
// ask of the SOAP endpoints: a request rate, and connections open at once. Both are decided on
// the connection's peer address alone, never a forwarded header (that is the client's word),
// before anything of the request's body is read, so that a request over them costs a map
// look-up and a short fault: a flood from one address can neither take the broker's CPU from the
// others nor hold its connections.
type ClientLimits struct {
	// Rate is the SOAP requests a second an address may send, sustained, and Burst how many at
	// once above it (0: the rate rounded up). A zero Rate is no limit.
	Rate  float64
	Burst int
	// Connections is how many connections an address may have open at once; 0 is no limit. A
	// connection opened past it has every SOAP request refused, and is closed after the fault.
	Connections int
	// Allow are the addresses exempt from these limits: the e-government gateway's, which relays
	// the traffic of many systems from few addresses (the per-signer limits still hold for it).
	Allow []netip.Prefix
	// Clock is the limits' time; required.
	Clock siobroker.Clock
	// Refused, if set, is told of every refusal, with ctx carrying the client (broker.WithClient)
	// and the body length the request declared (-1 if none): to journal it (broker.RefuseUnread)
	// and count it. It is called before the fault is written.
	Refused func(ctx context.Context, cause error, contentLength int64)
}

// ClientLimiter applies ClientLimits. One limiter is shared by every endpoint of a server (both
// SOAP channels), so that an address's limits are for all of them; its ConnContext and ConnState
// must be the server's (ServerConfig.Limiter), or the connections are not counted. It is safe
// for concurrent use. A nil *ClientLimiter limits nothing.
type ClientLimiter struct {
	lim     ClientLimits
	rate    *ratelimit.Limiter
	conns   *ratelimit.Limiter
	open    sync.Map // net.Conn → *connSlot, the connections holding a slot
	refused func(ctx context.Context, cause error, contentLength int64)
}

// NewClientLimiter returns the limiter of lim, or an error naming what is invalid.
func NewClientLimiter(lim ClientLimits) (*ClientLimiter, error) {
	var errs []error
	if lim.Clock == nil {
		errs = append(errs, errors.New("httpapi: ClientLimits.Clock is required"))
	}
	if lim.Connections < 0 {
		errs = append(errs, fmt.Errorf("httpapi: ClientLimits.Connections must not be negative, got %d", lim.Connections))
	}
	for _, p := range lim.Allow {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("httpapi: ClientLimits.Allow: invalid prefix %v", p))
		}
	}
	rate, err := ratelimit.New(ratelimit.Limits{Rate: lim.Rate, Burst: lim.Burst})
	if err != nil {
		errs = append(errs, fmt.Errorf("httpapi: ClientLimits: %w", err))
	}
	conns, err := ratelimit.New(ratelimit.Limits{Concurrent: max(lim.Connections, 0)})
	if err != nil {
		errs = append(errs, fmt.Errorf("httpapi: ClientLimits: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &ClientLimiter{lim: lim, rate: rate, conns: conns, refused: lim.Refused}, nil
}

// connSlot is what the limiter knows of one connection.
type connSlot struct {
	over    bool   // opened past ClientLimits.Connections: its SOAP requests are refused
	release func() // frees its slot; nil for a connection over the limit, which holds none
}

type connSlotKey struct{}

// ConnContext is the server's http.Server.ConnContext: it counts a new connection against its
// address, and marks it over the limit when the address has its ClientLimits.Connections open
// already. Such a connection is still accepted, so that its request gets its fault (429) rather
// than a reset the client cannot tell from a network failure.
func (c *ClientLimiter) ConnContext(ctx context.Context, conn net.Conn) context.Context {
	if c == nil || c.lim.Connections == 0 {
		return ctx
	}
	addr := conn.RemoteAddr().String()
	if c.allowed(addr) {
		return ctx
	}
	release, refused := c.conns.Acquire(broker.ClientKey(addr), c.lim.Clock.Now())
	slot := &connSlot{over: refused != nil, release: release}
	if !slot.over {
		c.open.Store(conn, slot)
	}
	return context.WithValue(ctx, connSlotKey{}, slot)
}

// ConnState is the server's http.Server.ConnState: a connection that is closed or hijacked frees
// its slot.
func (c *ClientLimiter) ConnState(conn net.Conn, state http.ConnState) {
	if c == nil || (state != http.StateClosed && state != http.StateHijacked) {
		return
	}
	if v, ok := c.open.LoadAndDelete(conn); ok {
		v.(*connSlot).release()
	}
}

// connContext and connState are the server's hooks of c: nil for no limiter, so that a server
// without one is the server it was.
func (c *ClientLimiter) connContext() func(context.Context, net.Conn) context.Context {
	if c == nil {
		return nil
	}
	return c.ConnContext
}

func (c *ClientLimiter) connState() func(net.Conn, http.ConnState) {
	if c == nil {
		return nil
	}
	return c.ConnState
}

// check refuses a SOAP request of r over its address's limits, or returns nil: first a
// connection opened past the connection limit, then the rate. An allowlisted address is never
// refused.
func (c *ClientLimiter) check(w http.ResponseWriter, r *http.Request) error {
	if c == nil {
		return nil
	}
	if slot, _ := r.Context().Value(connSlotKey{}).(*connSlot); slot != nil && slot.over {
		// Closed after the fault: the client keeps the connections it has and may retry on one.
		w.Header().Set("Connection", "close")
		return siobroker.Wrap(siobroker.CodeTooManyConnections, &soap.RetryAfter{Wait: connectionRetry},
			"this client address has %d connections open to the broker, its limit; this one is closed: send on the others, or retry when one has closed",
			c.lim.Connections)
	}
	if c.lim.Rate == 0 || c.allowed(r.RemoteAddr) {
		return nil
	}
	release, refused := c.rate.Acquire(broker.ClientKey(r.RemoteAddr), c.lim.Clock.Now())
	if refused == nil {
		release() // a rate only: nothing is held for the request's duration
		return nil
	}
	retry := &soap.RetryAfter{Wait: refused.RetryAfter}
	return siobroker.Wrap(siobroker.CodeRateLimited, retry,
		"this client address is over its request rate (%v a second); retry in %d s", c.lim.Rate, soap.RetryAfterSeconds(retry))
}

// connectionRetry is the Retry-After of a connection over the limit: no telling when one of the
// others closes, and a second is a polite pause that does not strand the client.
const connectionRetry = time.Second

// allowed reports whether the peer address addr is within ClientLimits.Allow.
func (c *ClientLimiter) allowed(addr string) bool {
	if len(c.lim.Allow) == 0 {
		return false
	}
	ip, ok := peerIP(addr)
	if !ok {
		return false
	}
	for _, p := range c.lim.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// peerIP is the IP of a connection's peer address (IP:port, or a bare IP), IPv4-mapped IPv6
// unmapped so that an allowlisted IPv4 prefix holds for it.
func peerIP(addr string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap(), true
	}
	ip, err := netip.ParseAddr(addr)
	return ip.Unmap(), err == nil
}

// Limit applies the client address's limits to the POSTs of h, a face of the server beside the
// SOAP channels (the dashboard's signed login and actions, the reports): each such POST reads and
// parses a body before its signer is known, as a SOAP request does, so it counts toward the same
// rate, and a connection over the limit gets the same fault (429, with its code) before its body is
// read. GETs pass: they read no body. A nil limiter limits nothing.
func (c *ClientLimiter) Limit(h http.Handler, clock siobroker.Clock) http.Handler {
	if c == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if err := c.check(w, r); err != nil {
				if c.refused != nil {
					c.refused(broker.WithClient(r.Context(), r.RemoteAddr), err, r.ContentLength)
				}
				soap.WriteFault(w, err, clock.Now())
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
