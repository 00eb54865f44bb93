package routing

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestNewDispatcherValidates: a missing required field is refused, naming the field; the others
// take their defaults.
func TestNewDispatcherValidates(t *testing.T) {
	full := DispatcherConfig{Publisher: &failingPublisher{}, ReplyTopic: ReplyTopicPrefix + "x",
		Clock: siobroker.SystemClock{}, Logger: discard}
	if _, err := NewDispatcher(full); err != nil {
		t.Fatalf("NewDispatcher with every required field: %v", err)
	}
	for _, tt := range []struct {
		want string
		mod  func(*DispatcherConfig)
	}{
		{"routing: DispatcherConfig.Publisher is required", func(c *DispatcherConfig) { c.Publisher = nil }},
		{"routing: DispatcherConfig.ReplyTopic is required", func(c *DispatcherConfig) { c.ReplyTopic = "" }},
		{"routing: DispatcherConfig.Clock is required", func(c *DispatcherConfig) { c.Clock = nil }},
		{"routing: DispatcherConfig.Logger is required", func(c *DispatcherConfig) { c.Logger = nil }},
	} {
		t.Run(tt.want, func(t *testing.T) {
			c := full
			tt.mod(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want %q", err, tt.want)
			}
			if d, err := NewDispatcher(c); d != nil || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewDispatcher: %v, %v, want %q", d, err, tt.want)
			}
		})
	}
}
