// Package replayguard refuses a signed call served outside the request pipeline (a dashboard
// login, a signed report request) whose messageId, or whose signed content, was seen before. The
// marks are kept in a siobroker.ReplayMarks, the store the journal uses, so that a captured call
// stays refused after a restart and at every broker sharing that store.
package replayguard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
)

// Guard checks the signed calls of one endpoint. It is safe for concurrent use.
type Guard struct {
	marks siobroker.ReplayMarks
	scope string
}

// New returns the guard of the endpoint named scope (e.g. "dashboard-login"), over marks. The
// scope keeps endpoints apart: a messageId used for a login is not a replay of a report.
func New(marks siobroker.ReplayMarks, scope string) *Guard {
	return &Guard{marks: marks, scope: scope}
}

// Mark refuses (CodeReplayID) a messageId of the signer, or a signed content, seen before;
// otherwise it records both. A store that fails refuses the call with CodeUnavailable: without
// the check the call cannot be taken.
func (g *Guard) Mark(ctx context.Context, signerIIN, messageID string, signed *etree.Element, now time.Time) error {
	d := etree.NewDocument()
	d.SetRoot(signed.Copy())
	raw, err := d.WriteToBytes()
	if err != nil {
		return fmt.Errorf("replayguard: serialise signed content: %w", err)
	}
	// The signer is hashed in: one content signed by two signers is two calls.
	sum := sha256.Sum256(append([]byte(signerIIN+"\n"), raw...))
	// Keys are printable (PostgreSQL text holds no NUL); an IIN is digits, so the colon after it
	// is unambiguous, and the messageId comes last.
	idKey := "once:" + g.scope + ":id:" + signerIIN + ":" + messageID
	contentKey := "once:" + g.scope + ":content:" + hex.EncodeToString(sum[:])

	fresh, err := g.marks.MarkOnce(ctx, idKey, now)
	if err != nil {
		return siobroker.Wrap(siobroker.CodeUnavailable, err, "the replay marks cannot be recorded; retry later")
	}
	if !fresh {
		return siobroker.Errorf(siobroker.CodeReplayID, "messageId %q has already been received", messageID)
	}
	if fresh, err = g.marks.MarkOnce(ctx, contentKey, now); err != nil {
		return siobroker.Wrap(siobroker.CodeUnavailable, err, "the replay marks cannot be recorded; retry later")
	}
	if !fresh {
		return siobroker.Errorf(siobroker.CodeReplayID, "this signed content has already been received; sign every request anew")
	}
	return nil
}

// Memory is a siobroker.ReplayMarks in the process, for tests and tools that have no store. A
// broker must not use it: it forgets on restart and is not shared.
type Memory struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// NewMemory returns empty marks in memory.
func NewMemory() *Memory { return &Memory{seen: make(map[string]time.Time)} }

// MarkOnce records key and reports whether it is new.
func (m *Memory) MarkOnce(_ context.Context, key string, at time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.seen[key]; ok {
		return false, nil
	}
	m.seen[key] = at
	return true, nil
}
