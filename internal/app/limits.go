package app

import (
	"context"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/httpapi"
	"github.com/sio-pso/siobroker/internal/ratelimit"
)

// clientLimiter is the one per-address limiter of http.limits, for the server (its connections)
// and both SOAP channels (their rate), so that an address's limits hold across them. Every
// refusal is journaled by the pipeline, within the bounds of unauthenticated refusals, and
// counted. The reports and the dashboard (operators and auditors, behind their own
// authentication) are not under it.
func (b *Broker) clientLimiter(p *parts) (*httpapi.ClientLimiter, error) {
	l := p.cfg.HTTP.Limits
	allow, err := l.AllowPrefixes()
	if err != nil {
		return nil, err
	}
	return httpapi.NewClientLimiter(httpapi.ClientLimits{
		Rate: l.PerClientRate, Burst: l.PerClientBurst, Connections: l.PerClientConnections, Allow: allow, Clock: p.clock,
		Refused: func(ctx context.Context, cause error, contentLength int64) {
			b.pipeline.RefuseUnread(ctx, cause, contentLength)
			scope := "client_rate"
			if siobroker.ErrorCode(cause) == siobroker.CodeTooManyConnections {
				scope = "client_connections"
			}
			b.ops.Metrics.ObserveRateLimited(scope)
		},
	})
}

// signerLimits are the per-signer limits of http.limits, for the pipeline.
func signerLimits(p *parts) ratelimit.Limits {
	l := p.cfg.HTTP.Limits
	return ratelimit.Limits{Rate: l.PerSignerRate, Burst: l.PerSignerBurst, Concurrent: l.PerSignerConcurrent}
}

// observeSignerLimited counts a request refused by the per-signer limits, by the limit:
// signer_rate or signer_concurrent (metrics.RateLimitScopes).
func (b *Broker) observeSignerLimited(s ratelimit.Scope) {
	b.ops.Metrics.ObserveRateLimited("signer_" + string(s))
}
