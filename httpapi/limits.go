package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/internal/ratelimit"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// ClientLimiter bounds the request rate and the requests in flight of each client address (an
// IPv6 client by its /64, as broker.ClientKey counts it) on the SOAP endpoints, so that a flood
// from one client neither takes every handler nor delays the others. It decides on the
// connection's peer address alone, before the body is read: a refusal costs a map look-up. One
// limiter is shared by every endpoint that takes it, so a client's limits are for all of them.
//
// Refusals are not logged or journaled one by one (the flood would make the log and the journal
// its sink); Observe counts them.
type ClientLimiter struct {
	lim     *ratelimit.Limiter
	allow   []netip.Prefix
	observe func(scope ratelimit.Scope)
}

// NewClientLimiter returns a limiter of lim per client address. Addresses within allow (the
// e-government gateway's, say, which relays many users) are not limited. observe, if set, is
// told the scope of every refusal, for metrics.
func NewClientLimiter(lim ratelimit.Limits, allow []netip.Prefix, observe func(scope ratelimit.Scope)) (*ClientLimiter, error) {
	l, err := ratelimit.New(lim)
	if err != nil {
		return nil, fmt.Errorf("httpapi: client limits: %w", err)
	}
	for _, p := range allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("httpapi: client limits: invalid allowlist prefix %v", p)
		}
	}
	return &ClientLimiter{lim: l, allow: allow, observe: observe}, nil
}

// acquire takes one request of the client at remoteAddr, or refuses it. An address that does not
// parse is limited by its text, as broker.ClientKey counts it.
func (c *ClientLimiter) acquire(remoteAddr string, now time.Time) (func(), *ratelimit.Refusal) {
	if c == nil {
		return func() {}, nil
	}
	if ip, ok := peerIP(remoteAddr); ok {
		for _, p := range c.allow {
			if p.Contains(ip) {
				return func() {}, nil
			}
		}
	}
	release, refused := c.lim.Acquire(broker.ClientKey(remoteAddr), now)
	if refused != nil && c.observe != nil {
		c.observe(refused.Scope)
	}
	return release, refused
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

// writeRateLimited answers a refusal of refused with 429, Retry-After (whole seconds, at least
// one) and the SOAP fault SIO-RATE-LIMITED, and returns that fault.
func writeRateLimited(w http.ResponseWriter, refused *ratelimit.Refusal, now time.Time) error {
	secs := max(1, int(math.Ceil(refused.RetryAfter.Seconds())))
	var err error
	switch refused.Scope {
	case ratelimit.ScopeConcurrent:
		err = siobroker.Errorf(siobroker.CodeRateLimited, "too many requests of this client address in flight at once; retry in %d s", secs)
	default:
		err = siobroker.Errorf(siobroker.CodeRateLimited, "too many requests of this client address; retry in %d s", secs)
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	soap.WriteFault(w, err, now)
	return err
}
