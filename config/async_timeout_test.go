package config

import (
	"strings"
	"testing"
	"time"
)

func TestAsyncTimeout(t *testing.T) {
	if d := Defaults().Routing.AsyncTimeout; d != time.Hour {
		t.Fatalf("default routing.async_timeout = %s, want 1h", d)
	}
	tests := []struct {
		name    string
		mutate  func(c *Broker)
		wantErr bool
	}{
		{"zero", func(c *Broker) { c.Routing.AsyncTimeout = 0 }, true},
		{"negative", func(c *Broker) { c.Routing.AsyncTimeout = -time.Second }, true},
		// Against the route timeouts it is checked with the routes file (internal/app reload.go).
		{"one second", func(c *Broker) { c.Routing.AsyncTimeout = time.Second }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr != (err != nil && strings.Contains(err.Error(), "routing.async_timeout")) {
				t.Fatalf("Validate = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
