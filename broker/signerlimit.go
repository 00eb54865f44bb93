package broker

import (
	"context"
	"encoding/json"
	"math"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// limitSigner takes one request of the signer iin within Config.PerSigner, or refuses it. It comes
// right after the signature, before the replay marks, so that the retry the fault invites is not a
// replay, and before anything costlier (the store, the case registry, the services) is asked.
func (b *Broker) limitSigner(iin string) error {
	release, refused := b.signers.Acquire(iin, b.deps.Clock.Now())
	if refused == nil {
		release() // a rate only: nothing is held for the request's duration
		return nil
	}
	if b.deps.ObserveSignerLimited != nil {
		b.deps.ObserveSignerLimited()
	}
	return siobroker.Wrap(siobroker.CodeRateLimited, &soap.RetryAfter{Wait: refused.RetryAfter},
		"too many requests of this signer; retry in %d s", max(1, int(math.Ceil(refused.RetryAfter.Seconds()))))
}

// refuseSignerLimited is refuseUnauthenticated for a request refused by its signer's rate: its
// signer is known and kept in the record, its messageId too, but not its raw request, and only
// so many such refusals of a signer (UnauthenticatedLimits.PerClientPerMinute) and of every
// signer (TotalPerMinute) are journaled one by one in a minute; the rest are counted into the
// signer's summary. A signer's key in a runaway client must not grow the journal at its pace.
func (b *Broker) refuseSignerLimited(ctx context.Context, seen *Request, cause error) ([]byte, bool) {
	code := string(siobroker.ErrorCode(cause))
	body := b.bodyDigest(seen)
	individual, closed, schedule := b.signerRefusals.admit(b.cfg.Unauthenticated, seen.SignerIIN, b.deps.Clock.Now(), code, body.Size)
	b.journalSummaries(ctx, closed)
	if !individual {
		if schedule {
			b.scheduleFlush(&b.signerRefusals)
		}
		b.deps.Logger.DebugContext(ctx, "refusal of a signer over its rate counted into its summary",
			append(reqlog.Attrs(seen.MessageID, seen.RequestID), "signer_iin", seen.SignerIIN, "code", code)...)
		return nil, false
	}
	seen.MessageID = truncateUTF8(seen.MessageID, refusalIDBytes)
	seen.SenderID = truncateUTF8(seen.SenderID, refusalIDBytes)
	data, _ := json.Marshal(unauthenticatedRefusal{
		Message: truncateUTF8(siobroker.ErrorMessage(cause), refusalMessageBytes),
		Client:  ClientOf(ctx),
		Body:    &body,
	})
	return data, true
}
