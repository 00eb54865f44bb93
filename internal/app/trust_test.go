package app

import (
	"log/slog"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
)

// TestLoadKeysCRLStalePolicy: trust.crl_stale reaches the trust store's configuration, a grace
// under "grace" and none under "refuse" (a policy read but not passed on would silently keep the
// signing package's default of no grace).
func TestLoadKeysCRLStalePolicy(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		policy      string
		grace, want time.Duration
	}{
		{config.CRLStaleGrace, 3 * time.Hour, 3 * time.Hour},
		{config.CRLStaleRefuse, 3 * time.Hour, 0},
	} {
		cfg := config.Defaults()
		cfg.DataDir = dir // the development PKI, made on the first pass
		cfg.Dev = true
		cfg.Trust.CRLStale, cfg.Trust.CRLStaleGraceFor = tc.policy, tc.grace
		trustCfg, _, err := loadKeys(cfg, siobroker.SystemClock{}, slog.New(slog.DiscardHandler), &Broker{})
		if err != nil {
			t.Fatal(err)
		}
		if trustCfg.CRLStaleGrace != tc.want || len(trustCfg.CRLFiles) != 1 {
			t.Errorf("crl_stale %s, grace %s: trust store grace %s, CRL files %v; want %s and the development CRL",
				tc.policy, tc.grace, trustCfg.CRLStaleGrace, trustCfg.CRLFiles, tc.want)
		}
	}
}
