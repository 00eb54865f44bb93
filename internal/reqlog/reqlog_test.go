package reqlog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestHandlerAddsTheContextsIDs(t *testing.T) {
	var buf bytes.Buffer
	log := Logger(slog.New(slog.NewJSONHandler(&buf, nil)))
	if Logger(log) != log {
		t.Error("wrapping twice made a new logger")
	}
	ctx := With(context.Background(), "", "req-1")
	log.InfoContext(ctx, "before the messageId is read")
	ctx = With(ctx, "msg-1", "req-1")
	log.InfoContext(ctx, "after")
	log.InfoContext(ctx, "per service", Attrs("msg-1", "req-1/5")...)
	log.With(KeyCorrelationID, "req-1/7").InfoContext(ctx, "logger names its own")
	log.Info("no context")
	if got, _ := IDs(With(ctx, "", "req-2")); got != "msg-1" {
		t.Errorf("With without a messageId dropped the one carried: %q", got)
	}

	got := lines(t, &buf)
	want := []struct{ msg, corr any }{
		{"", "req-1"}, {"msg-1", "req-1"}, {"msg-1", "req-1/5"}, {"msg-1", "req-1/7"}, {nil, nil},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		if got[i][KeyMessageID] != w.msg || got[i][KeyCorrelationID] != w.corr {
			t.Errorf("line %d (%s): message_id %v, correlation_id %v; want %v, %v",
				i, got[i]["msg"], got[i][KeyMessageID], got[i][KeyCorrelationID], w.msg, w.corr)
		}
	}
	// A line naming its ids carries them once.
	if n := strings.Count(strings.Split(buf.String(), "\n")[2], KeyCorrelationID); n != 1 {
		t.Errorf("per-service line carries correlation_id %d times", n)
	}
}
