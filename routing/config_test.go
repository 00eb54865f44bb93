package routing

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestNewDispatcherValidates: a missing required field is refused, naming the field; the others
// take their defaults.
func TestNewDispatcherValidates(t *testing.T) {
	full := DispatcherConfig{Publisher: &failingPublisher{}, ReplyTopic: ReplyTopicPrefix + "x",
		Clock: siobroker.SystemClock{}, Logger: discard, Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter),
		RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter)}
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
		{"routing: DispatcherConfig.Auth is required", func(c *DispatcherConfig) { c.Auth = nil }},
		{"routing: DispatcherConfig.AdapterOf is required", func(c *DispatcherConfig) { c.AdapterOf = nil }},
		{"routing: DispatcherConfig.RegistryAdapterOf is required", func(c *DispatcherConfig) { c.RegistryAdapterOf = nil }},
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

// TestNewAdapterRuntimeValidates: a missing required field, a nil backend and a negative
// Attempts or Backoff are refused, naming the field; the others take their defaults.
func TestNewAdapterRuntimeValidates(t *testing.T) {
	full := AdapterConfig{Name: "x", Backends: map[int]adapters.Backend{1: echoBackend(1)}, Publisher: &failingPublisher{},
		Clock: siobroker.SystemClock{}, Logger: discard, Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter)}
	if _, err := NewAdapterRuntime(full); err != nil {
		t.Fatalf("NewAdapterRuntime with every required field: %v", err)
	}
	for _, tt := range []struct {
		want string
		mod  func(*AdapterConfig)
	}{
		{"routing: AdapterConfig.Name is required", func(c *AdapterConfig) { c.Name = "" }},
		{"routing: AdapterConfig.Publisher is required", func(c *AdapterConfig) { c.Publisher = nil }},
		{"routing: AdapterConfig.Clock is required", func(c *AdapterConfig) { c.Clock = nil }},
		{"routing: AdapterConfig.Logger is required", func(c *AdapterConfig) { c.Logger = nil }},
		{"routing: AdapterConfig.Auth is required", func(c *AdapterConfig) { c.Auth = nil }},
		{"routing: AdapterConfig.Backends[7] is nil", func(c *AdapterConfig) { c.Backends = map[int]adapters.Backend{1: echoBackend(1), 7: nil} }},
		{"routing: AdapterConfig.Attempts must not be negative", func(c *AdapterConfig) { c.Attempts = -1 }},
		{"routing: AdapterConfig.Backoff must not be negative", func(c *AdapterConfig) { c.Backoff = -time.Second }},
	} {
		t.Run(tt.want, func(t *testing.T) {
			c := full
			tt.mod(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want %q", err, tt.want)
			}
			if rt, err := NewAdapterRuntime(c); rt != nil || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewAdapterRuntime: %v, %v, want %q", rt, err, tt.want)
			}
		})
	}
}

// TestNewRegistryRuntimeValidates: every field is required, and a missing one is refused by name.
func TestNewRegistryRuntimeValidates(t *testing.T) {
	nobody := adapters.CaseRegistryFunc(func(context.Context, schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
		return schemas.CaseCheckResponse{}, nil
	})
	full := RegistryConfig{Name: "erdr", Registry: nobody, Publisher: &failingPublisher{},
		Clock: siobroker.SystemClock{}, Logger: discard, Auth: msgauthtest.AdapterKeys(msgauthtest.Adapter)}
	if _, err := NewRegistryRuntime(full); err != nil {
		t.Fatalf("NewRegistryRuntime with every field: %v", err)
	}
	for _, tt := range []struct {
		want string
		mod  func(*RegistryConfig)
	}{
		{"routing: RegistryConfig.Name is required", func(c *RegistryConfig) { c.Name = "" }},
		{"routing: RegistryConfig.Registry is required", func(c *RegistryConfig) { c.Registry = nil }},
		{"routing: RegistryConfig.Publisher is required", func(c *RegistryConfig) { c.Publisher = nil }},
		{"routing: RegistryConfig.Clock is required", func(c *RegistryConfig) { c.Clock = nil }},
		{"routing: RegistryConfig.Logger is required", func(c *RegistryConfig) { c.Logger = nil }},
		{"routing: RegistryConfig.Auth is required", func(c *RegistryConfig) { c.Auth = nil }},
	} {
		t.Run(tt.want, func(t *testing.T) {
			c := full
			tt.mod(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want %q", err, tt.want)
			}
			if r, err := NewRegistryRuntime(c); r != nil || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewRegistryRuntime: %v, %v, want %q", r, err, tt.want)
			}
		})
	}
}
