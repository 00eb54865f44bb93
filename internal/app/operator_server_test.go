package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/operator/metrics"
)

// testOps is a brokerOps with metrics over empty sources and one passing readiness check.
func testOps(t *testing.T) *brokerOps {
	t.Helper()
	none := func(context.Context) (int64, error) { return 0, nil }
	m := metrics.New(metrics.Sources{
		Services:      func(context.Context) ([]health.ServiceState, error) { return nil, nil },
		OpenIncidents: func(context.Context) (int, error) { return 0, nil },
		JournalHead:   none, ArchivedUpTo: none,
	})
	r, err := health.NewReadiness(health.ReadinessConfig{Checks: []health.Check{
		health.FuncCheck("store", "the store does not answer", func(context.Context) error { return nil }),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &brokerOps{Metrics: m, Readiness: r}
}

// TestOperatorListener: the operator's listener serves /metrics, /readyz and /healthz; the
// profiles and the heap figures only with debug.pprof; and it stops with the broker.
func TestOperatorListener(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	for _, pprofOn := range []bool{false, true} {
		cfg := config.Defaults()
		cfg.Operator.Listen, cfg.Debug.PProf = "127.0.0.1:0", pprofOn
		b := &Broker{ops: testOps(t)}
		if err := b.startOperator(cfg, logger); err != nil {
			t.Fatal(err)
		}
		base := b.OperatorURL()
		get := func(path string) (int, string) {
			t.Helper()
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		if code, body := get(MetricsPath); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Errorf("pprof %v: %s: HTTP %d %.200s", pprofOn, MetricsPath, code, body)
		}
		if code, body := get(ReadyzPath); code != http.StatusOK || !strings.Contains(body, `"store"`) {
			t.Errorf("pprof %v: %s: HTTP %d %.200s", pprofOn, ReadyzPath, code, body)
		}
		if code, body := get(HealthzPath); code != http.StatusOK || body != "ok\n" {
			t.Errorf("pprof %v: %s: HTTP %d %q", pprofOn, HealthzPath, code, body)
		}
		code, body := get("/debug/pprof/heap?debug=1")
		if pprofOn != (code == http.StatusOK && strings.Contains(body, "HeapAlloc")) {
			t.Errorf("pprof %v: heap profile: HTTP %d %.200s", pprofOn, code, body)
		}
		if pprofOn {
			var vars struct {
				MemStats struct{ HeapAlloc uint64 } `json:"memstats"`
				LiveHeap uint64                     `json:"heap_live_bytes"`
			}
			runtime.GC() // the live heap is what the last collection found
			code, body := get(ExpvarPath)
			if code != http.StatusOK || json.Unmarshal([]byte(body), &vars) != nil || vars.MemStats.HeapAlloc == 0 || vars.LiveHeap == 0 {
				t.Errorf("%s: HTTP %d, heap %d, live heap %d: %.200s", ExpvarPath, code, vars.MemStats.HeapAlloc, vars.LiveHeap, body)
			}
		} else if code, _ := get(ExpvarPath); code != http.StatusNotFound {
			t.Errorf("pprof off: %s answers HTTP %d", ExpvarPath, code)
		}
		if err := b.closeOperator(); err != nil {
			t.Fatal(err)
		}
		if _, err := http.Get(base + HealthzPath); err == nil {
			t.Errorf("pprof %v: the operator listener still answers after close", pprofOn)
		}
	}
}

// TestCheckStart: serve refuses a plain-HTTP listener off loopback unless http.insecure_listen,
// and keys left to the development PKI or the data directory's transport key unless --dev, each
// naming its fixes.
func TestCheckStart(t *testing.T) {
	dev := func(c *config.Broker) { c.Dev = true }
	for _, tc := range []struct {
		name string
		edit func(*config.Broker)
		want []string // "" for none
	}{
		{"the embedded default without --dev", func(*config.Broker) {}, []string{"trust.roots and signing.cert_file not configured", "pass --dev", "configure trust.roots"}},
		{"the embedded default with --dev", dev, nil},
		{"configured keys", func(c *config.Broker) {
			c.Trust.Roots, c.Signing.CertFile, c.Signing.KeyFile = []string{"ca.pem"}, "b.pem", "b.key"
			c.AMQP.MessageKeyFile = "transport.key"
		}, nil},
		{"roots only", func(c *config.Broker) { c.Trust.Roots = []string{"ca.pem"}; c.AMQP.MessageKeyFile = "transport.key" },
			[]string{"signing.cert_file not configured"}},
		{"no transport master key", func(c *config.Broker) {
			c.Trust.Roots, c.Signing.CertFile, c.Signing.KeyFile = []string{"ca.pem"}, "b.pem", "b.key"
		}, []string{"amqp.message_key_file not configured", "siobroker transport-key new", "or pass --dev"}},
		{"every interface", func(c *config.Broker) { dev(c); c.Listen = "0.0.0.0:8080" }, []string{"listen 0.0.0.0:8080", "--insecure-listen", "http.tls"}},
		{"no host", func(c *config.Broker) { dev(c); c.Listen = ":8080" }, []string{"listen :8080", "--insecure-listen"}},
		{"every interface, insecure", func(c *config.Broker) { dev(c); c.Listen = "0.0.0.0:8080"; c.HTTP.InsecureListen = true }, nil},
		{"every interface, TLS", func(c *config.Broker) {
			dev(c)
			c.Listen, c.HTTP.TLS.Enabled, c.HTTP.TLS.CertFile, c.HTTP.TLS.KeyFile = "0.0.0.0:8443", true, "t.pem", "t.key"
		}, nil},
		{"operator off loopback", func(c *config.Broker) { dev(c); c.Operator.Listen = "10.0.0.5:9100" }, []string{"operator.listen 10.0.0.5:9100", "put operator.listen on loopback"}},
		{"localhost", func(c *config.Broker) { dev(c); c.Listen = "localhost:8080" }, nil},
		{"::1", func(c *config.Broker) { dev(c); c.Listen = "[::1]:8080" }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Defaults()
			tc.edit(&cfg)
			err := CheckStart(cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("CheckStart = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckStart = nil, want an error naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckStart = %v; want it to name %q", err, w)
				}
			}
		})
	}
}
