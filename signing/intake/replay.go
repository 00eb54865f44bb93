package intake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
)

// ReplayMemory remembers, in memory, the messageIds and signed contents of the signed requests of
// the last keep, for the endpoints outside the pipeline (reports, the dashboard login). The
// messageDate window bounds how long a request can be replayed, so memory is bounded by the
// signed traffic of that window; a restart forgets, which leaves a replay possible only within
// the window of the original, to the same signer. It is safe for concurrent use.
type ReplayMemory struct {
	mu        sync.Mutex
	keep      time.Duration
	seen      map[string]time.Time
	lastPrune time.Time
}

// NewReplayMemory returns a ReplayMemory that forgets after keep: give it more than twice the
// messageDate window.
func NewReplayMemory(keep time.Duration) *ReplayMemory {
	return &ReplayMemory{keep: keep, seen: make(map[string]time.Time)}
}

// Mark refuses (CodeReplayID) a messageId of the signer, or a signed content, seen before;
// otherwise it remembers both.
func (g *ReplayMemory) Mark(signerIIN, messageID string, signed *etree.Element, now time.Time) error {
	d := etree.NewDocument()
	d.SetRoot(signed.Copy())
	raw, err := d.WriteToBytes()
	if err != nil {
		return fmt.Errorf("serialise signed content: %w", err)
	}
	sum := sha256.Sum256(append([]byte(signerIIN+"\n"), raw...))
	idKey := "id\x00" + signerIIN + "\x00" + messageID
	sigKey := "sig\x00" + hex.EncodeToString(sum[:])

	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.lastPrune) > time.Minute {
		for k, at := range g.seen {
			if now.Sub(at) > g.keep {
				delete(g.seen, k)
			}
		}
		g.lastPrune = now
	}
	if _, ok := g.seen[idKey]; ok {
		return siobroker.Errorf(siobroker.CodeReplayID, "messageId %q has already been received", messageID)
	}
	if _, ok := g.seen[sigKey]; ok {
		return siobroker.Errorf(siobroker.CodeReplayID, "this signed content has already been received; sign every request anew")
	}
	g.seen[idKey], g.seen[sigKey] = now, now
	return nil
}
