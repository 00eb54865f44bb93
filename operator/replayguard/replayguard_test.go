package replayguard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/replayguard"
)

func content(t *testing.T, text string) *etree.Element {
	t.Helper()
	e := etree.NewElement("data")
	e.SetText(text)
	return e
}

// failing is marks whose store does not answer.
type failing struct{}

func (failing) MarkOnce(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("database is down")
}

// TestGuard: a messageId of a signer is taken once, and a signed content once whatever its id;
// endpoints (scopes) and signers are apart; a store that fails refuses with SIO-UNAVAILABLE.
func TestGuard(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	marks := replayguard.NewMemory()
	login, reports := replayguard.New(marks, "dashboard-login"), replayguard.New(marks, "reports")
	for _, tt := range []struct {
		name  string
		g     *replayguard.Guard
		iin   string
		id    string
		text  string
		wants siobroker.Code
	}{
		{"first", login, "750312300458", "m-1", "a", ""},
		{"the same id", login, "750312300458", "m-1", "b", siobroker.CodeReplayID},
		{"the same content, a new id", login, "750312300458", "m-2", "a", siobroker.CodeReplayID},
		{"the same id, another signer", login, "860101300123", "m-1", "c", ""},
		{"the same content, another signer", login, "860101300124", "m-3", "a", ""},
		{"the same id and content, another endpoint", reports, "750312300458", "m-1", "a", ""},
	} {
		err := tt.g.Mark(ctx, tt.iin, tt.id, content(t, tt.text), now)
		if got := siobroker.ErrorCode(err); err != nil && got != tt.wants || err == nil && tt.wants != "" {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.wants)
		}
	}
	err := replayguard.New(failing{}, "x").Mark(ctx, "750312300458", "m-9", content(t, "z"), now)
	if siobroker.ErrorCode(err) != siobroker.CodeUnavailable {
		t.Errorf("a failing store: %v, want %s", err, siobroker.CodeUnavailable)
	}
}
