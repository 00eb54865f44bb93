package app

import (
	"testing"

	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// TestLimitsOfDefaults: the configuration's defaults are the envelope reader's, every limit of
// soap.Limits passed on (a field forgotten in limitsOf would fall back silently to its default).
func TestLimitsOfDefaults(t *testing.T) {
	if got, want := limitsOf(config.Defaults()), (soap.Limits{}).WithDefaults(); got != want {
		t.Errorf("limitsOf(config.Defaults()) = %+v, want soap's defaults %+v", got, want)
	}
	cfg := config.Defaults()
	cfg.HTTP.MaxAttributes, cfg.HTTP.MaxNamespaceDecls, cfg.HTTP.MaxNamespaceDeclsTotal = 11, 12, 13
	cfg.HTTP.MaxNameBytes, cfg.HTTP.MaxAttrValueBytes, cfg.HTTP.MaxTextBytes = 14, 15, 16
	got := limitsOf(cfg)
	if got.MaxAttributes != 11 || got.MaxNamespaceDecls != 12 || got.MaxNamespaceDeclsTotal != 13 ||
		got.MaxNameBytes != 14 || got.MaxAttrValueBytes != 15 || got.MaxTextBytes != 16 {
		t.Errorf("limitsOf = %+v, want the configured per-element limits", got)
	}
}
