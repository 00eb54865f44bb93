package routing

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
)

// TestWatermillLogger: watermill's Info lines go out at Debug, its errors with their error, fields
// in the order of their names, With's fields on every line; and a line at a level the logger does
// not take costs no allocation.
func TestWatermillLogger(t *testing.T) {
	var out bytes.Buffer
	at := &slog.LevelVar{}
	l := WatermillLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: at})))
	fields := watermill.LogFields{"topic": "sio.service.001", "handler": "h1", "count": 3}

	at.Set(slog.LevelInfo)
	if n := testing.AllocsPerRun(100, func() {
		l.Trace("sending", fields)
		l.Debug("sent", fields)
		l.Info("handler started", fields)
	}); n != 0 {
		t.Errorf("lines below the logger's level allocated %.0f times", n)
	}
	if out.Len() != 0 {
		t.Fatalf("lines below the logger's level were written: %s", out.String())
	}

	l.With(watermill.LogFields{"component": "router"}).Error("publish failed", errors.New("boom"), fields)
	at.Set(watermill.LevelTrace)
	l.Info("handler started", fields)
	l.Trace("sending", nil)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		`level=ERROR msg="publish failed" component=router count=3 handler=h1 topic=sio.service.001 error=boom`,
		`level=DEBUG msg="handler started" count=3 handler=h1 topic=sio.service.001`,
		`level=DEBUG-4 msg=sending`,
	}
	if len(lines) != len(want) {
		t.Fatalf("lines:\n%s", out.String())
	}
	for i, line := range lines {
		if _, rest, _ := strings.Cut(line, " "); rest != want[i] { // the time first
			t.Errorf("line %d: %s, want %s", i, rest, want[i])
		}
	}
}
