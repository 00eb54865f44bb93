package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broker.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestShippedConfigLoads(t *testing.T) {
	cfg, err := Load("../configs/broker.yaml", true)
	if err != nil {
		t.Fatalf("Load(configs/broker.yaml) = %v", err)
	}
	d := Defaults()
	// The shipped file documents the defaults: it must load to exactly them.
	if cfg.Listen != d.Listen || cfg.Endpoint != d.Endpoint || cfg.Transport != d.Transport ||
		cfg.DataDir != d.DataDir || cfg.Rights != d.Rights {
		t.Errorf("top-level keys differ from Defaults: %+v", cfg)
	}
	if cfg.HTTP.MaxBodyBytes != d.HTTP.MaxBodyBytes || cfg.HTTP.WriteTimeout != d.HTTP.WriteTimeout ||
		cfg.HTTP.TLS.ClientAuth != "none" || cfg.HTTP.MaxDepth != d.HTTP.MaxDepth || cfg.HTTP.MaxElements != d.HTTP.MaxElements ||
		cfg.HTTP.MaxAttributes != d.HTTP.MaxAttributes || cfg.HTTP.MaxNamespaceDecls != d.HTTP.MaxNamespaceDecls ||
		cfg.HTTP.MaxNamespaceDeclsTotal != d.HTTP.MaxNamespaceDeclsTotal || cfg.HTTP.MaxNameBytes != d.HTTP.MaxNameBytes ||
		cfg.HTTP.MaxAttrValueBytes != d.HTTP.MaxAttrValueBytes || cfg.HTTP.MaxTextBytes != d.HTTP.MaxTextBytes {
		t.Errorf("http differs from Defaults: %+v", cfg.HTTP)
	}
	if cfg.HTTP.TLS != d.HTTP.TLS || cfg.HTTP.PublicURL != d.HTTP.PublicURL || cfg.HTTP.InsecureListen != d.HTTP.InsecureListen ||
		cfg.Operator != d.Operator || cfg.Debug != d.Debug {
		t.Errorf("http.tls %+v, public_url %q, insecure_listen %v, operator %+v, debug %+v differ from Defaults",
			cfg.HTTP.TLS, cfg.HTTP.PublicURL, cfg.HTTP.InsecureListen, cfg.Operator, cfg.Debug)
	}
	if cfg.Replay != d.Replay {
		t.Errorf("replay = %+v, want %+v", cfg.Replay, d.Replay)
	}
	if cfg.Routing != d.Routing || cfg.Maintenance != d.Maintenance || cfg.AMQP.Concurrency != 8 {
		t.Errorf("routing = %+v", cfg.Routing)
	}
	if cfg.Journal != d.Journal {
		t.Errorf("journal = %+v, want %+v", cfg.Journal, d.Journal)
	}
	if cfg.Store != d.Store || d.Store.Synchronous != "full" {
		t.Errorf("store = %+v, want %+v (synchronous full)", cfg.Store, d.Store)
	}
	if len(cfg.Trust.Roots) != 0 || len(cfg.Trust.CRLs) != 0 {
		t.Errorf("trust = %+v, want empty", cfg.Trust)
	}
	if err := Defaults().Validate(); err != nil {
		t.Errorf("Defaults().Validate() = %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	if _, err := Load(missing, true); err == nil {
		t.Fatal("explicit missing file: Load succeeded, want error")
	}
	cfg, err := Load(missing, false)
	if err != nil {
		t.Fatalf("default path missing: Load = %v, want defaults", err)
	}
	if cfg.Listen != Defaults().Listen {
		t.Fatalf("Listen = %q", cfg.Listen)
	}
	if _, err := Load("", false); err != nil {
		t.Fatalf("Load(\"\") = %v", err)
	}
}

func TestLoadUnknownKey(t *testing.T) {
	tests := []struct {
		name, body, key string
	}{
		{"top level", "listen: 127.0.0.1:8080\nlisten_addr: 127.0.0.1:9\n", "listen_addr"},
		{"nested", "replay:\n  window: 5m\n  windwo: 3m\n", "windwo"},
		{"deep", "http:\n  tls:\n    client_auht: require\n", "client_auht"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.body), true)
			if err == nil {
				t.Fatal("Load succeeded, want an error naming the unknown key")
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("error %q does not name %q", err, tt.key)
			}
		})
	}
}

func TestLoadEnvOverride(t *testing.T) {
	t.Setenv("SIOBROKER_LISTEN", "127.0.0.1:9999")
	t.Setenv("SIOBROKER_REPLAY_WINDOW", "2m")
	t.Setenv("SIOBROKER_HTTP_MAX_BODY_BYTES", "65536")
	// The file sets listen too: the environment wins.
	cfg, err := Load(writeConfig(t, "listen: 127.0.0.1:8080\nreplay:\n  window: 5m\n"), true)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if cfg.Listen != "127.0.0.1:9999" {
		t.Errorf("Listen = %q, want 127.0.0.1:9999", cfg.Listen)
	}
	if cfg.Replay.Window != 2*time.Minute {
		t.Errorf("Replay.Window = %s, want 2m", cfg.Replay.Window)
	}
	if cfg.HTTP.MaxBodyBytes != 65536 {
		t.Errorf("HTTP.MaxBodyBytes = %d, want 65536", cfg.HTTP.MaxBodyBytes)
	}

	// Without a file, the environment still reaches every key.
	cfg, err = Load("", false)
	if err != nil {
		t.Fatalf("Load(\"\") = %v", err)
	}
	if cfg.Listen != "127.0.0.1:9999" || cfg.Replay.Window != 2*time.Minute {
		t.Errorf("env without file: listen %q window %s", cfg.Listen, cfg.Replay.Window)
	}
}

func TestLoadEnvOverrideInvalid(t *testing.T) {
	t.Setenv("SIOBROKER_REPLAY_WINDOW", "13h") // retention 24h < 2*13h
	_, err := Load("", false)
	if err == nil || !strings.Contains(err.Error(), "replay.id_retention") {
		t.Fatalf("Load = %v, want a replay.id_retention error", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Broker)
		wantErr string // "" means valid
	}{
		{"defaults", func(*Broker) {}, ""},
		{"retention exactly twice window", func(c *Broker) { c.Replay.Window = time.Hour; c.Replay.IDRetention = 2 * time.Hour }, ""},
		{"retention below twice window", func(c *Broker) { c.Replay.Window = 5 * time.Minute; c.Replay.IDRetention = 9 * time.Minute }, "replay.id_retention"},
		{"zero window", func(c *Broker) { c.Replay.Window = 0 }, "replay.window"},
		{"client_auth bad", func(c *Broker) { c.HTTP.TLS.ClientAuth = "optional" }, "http.tls.client_auth"},
		{"client_auth empty", func(c *Broker) { c.HTTP.TLS.ClientAuth = "" }, "http.tls.client_auth"},
		{"client_auth require", func(c *Broker) { c.HTTP.TLS.ClientAuth = "require" }, ""},
		{"no routes file", func(c *Broker) { c.Routing.RoutesFile = "" }, "routing.routes_file"},
		{"listen not host:port", func(c *Broker) { c.Listen = "8080" }, "listen"},
		{"endpoint relative", func(c *Broker) { c.Endpoint = "SyncChannel" }, "endpoint"},
		{"transport nats", func(c *Broker) { c.Transport = "nats" }, "transport"},
		{"amqp without url", func(c *Broker) { c.Transport = "amqp"; c.AMQP.URL = "" }, "amqp.url"},
		{"body too small", func(c *Broker) { c.HTTP.MaxBodyBytes = 100 }, "http.max_body_bytes"},
		{"attributes too few", func(c *Broker) { c.HTTP.MaxAttributes = 0 }, "http.max_attributes"},
		{"namespace declarations too few", func(c *Broker) { c.HTTP.MaxNamespaceDecls = 1 }, "http.max_namespace_decls"},
		{"namespace declarations in total too few", func(c *Broker) { c.HTTP.MaxNamespaceDeclsTotal = 2 }, "http.max_namespace_decls_total"},
		{"names too short", func(c *Broker) { c.HTTP.MaxNameBytes = 8 }, "http.max_name_bytes"},
		{"attribute values too short", func(c *Broker) { c.HTTP.MaxAttrValueBytes = 10 }, "http.max_attr_value_bytes"},
		{"texts too short", func(c *Broker) { c.HTTP.MaxTextBytes = 10 }, "http.max_text_bytes"},
		{"tls without cert", func(c *Broker) { c.HTTP.TLS.Enabled = true }, "http.tls"},
		{"signing half set", func(c *Broker) { c.Signing.CertFile = "b.pem" }, "signing"},
		{"log format", func(c *Broker) { c.Log.Format = "xml" }, "log.format"},
		{"log level", func(c *Broker) { c.Log.Level = "trace" }, "log.level"},
		{"pprof on loopback", func(c *Broker) { c.Debug.PProf = true }, ""},
		{"pprof on localhost", func(c *Broker) { c.Debug.PProf = true; c.Operator.Listen = "localhost:6060" }, ""},
		{"pprof on ::1", func(c *Broker) { c.Debug.PProf = true; c.Operator.Listen = "[::1]:6060" }, ""},
		{"pprof on every address", func(c *Broker) { c.Debug.PProf = true; c.Operator.Listen = ":6060" }, "debug.pprof"},
		{"pprof on a public address", func(c *Broker) { c.Debug.PProf = true; c.Operator.Listen = "10.0.0.1:6060" }, "debug.pprof"},
		{"operator on a public address", func(c *Broker) { c.Operator.Listen = "10.0.0.1:9100" }, ""},
		{"operator without port", func(c *Broker) { c.Operator.Listen = "127.0.0.1" }, "operator.listen"},
		{"operator empty", func(c *Broker) { c.Operator.Listen = "" }, "operator.listen"},
		{"operator on listen's address", func(c *Broker) { c.Operator.Listen = c.Listen }, "operator.listen"},
		{"operator and listen on free ports", func(c *Broker) { c.Listen, c.Operator.Listen = "127.0.0.1:0", "127.0.0.1:0" }, ""},
		{"public url https", func(c *Broker) { c.HTTP.PublicURL = "https://sio-broker.example:8443" }, ""},
		{"public url with a prefix", func(c *Broker) { c.HTTP.PublicURL = "https://gw.example/sio/" }, ""},
		{"public url without scheme", func(c *Broker) { c.HTTP.PublicURL = "sio-broker.example:8443" }, "http.public_url"},
		{"public url ftp", func(c *Broker) { c.HTTP.PublicURL = "ftp://sio-broker.example" }, "http.public_url"},
		{"public url without host", func(c *Broker) { c.HTTP.PublicURL = "https:///SyncChannel" }, "http.public_url"},
		{"public url with a query", func(c *Broker) { c.HTTP.PublicURL = "https://sio-broker.example/?x=1" }, "http.public_url"},
		{"public url with credentials", func(c *Broker) { c.HTTP.PublicURL = "https://u:p@sio-broker.example" }, "http.public_url"},
		{"hsts two years", func(c *Broker) { c.HTTP.TLS.HSTSMaxAge = 2 * MinHSTSMaxAge }, ""},
		{"hsts a day", func(c *Broker) { c.HTTP.TLS.HSTSMaxAge = 24 * time.Hour }, "http.tls.hsts_max_age"},
		{"synchronous normal", func(c *Broker) { c.Store.Synchronous = "normal" }, ""},
		{"synchronous upper case", func(c *Broker) { c.Store.Synchronous = "FULL" }, "store.synchronous"},
		{"synchronous off", func(c *Broker) { c.Store.Synchronous = "off" }, "store.synchronous"},
		{"refusal prefix zero", func(c *Broker) { c.Journal.UnauthenticatedRefusals.PrefixBytes = 0 }, "journal.unauthenticated_refusals.prefix_bytes"},
		{"refusal prefix too long", func(c *Broker) { c.Journal.UnauthenticatedRefusals.PrefixBytes = 5000 }, "journal.unauthenticated_refusals.prefix_bytes"},
		{"refusals per client zero", func(c *Broker) { c.Journal.UnauthenticatedRefusals.PerClientPerMinute = 0 }, "per_client_per_minute"},
		{"refusals in total below per client", func(c *Broker) { c.Journal.UnauthenticatedRefusals.TotalPerMinute = 10 }, "total_per_minute: 10 is below"},
		{"write timeout zero", func(c *Broker) { c.Store.WriteTimeout = 0 }, "store.write_timeout"},
		{"write timeout an hour", func(c *Broker) { c.Store.WriteTimeout = time.Hour }, "store.write_timeout"},
		{"write timeout beyond the http write timeout", func(c *Broker) { c.HTTP.WriteTimeout = 30 * time.Second; c.Store.WriteTimeout = 45 * time.Second }, "not below http.write_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	c := Defaults()
	c.HTTP.TLS.ClientAuth = "maybe"
	c.Replay.IDRetention = time.Minute
	c.Routing.RoutesFile = ""
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate = nil")
	}
	for _, want := range []string{"http.tls.client_auth", "replay.id_retention", "routing.routes_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLoadFileValidationErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"timeouts moved to the routes file", "routing:\n  services: {11: {timeout: 1s}}\n", "services"},
		{"bad client_auth", "http:\n  tls:\n    client_auth: sometimes\n", "client_auth"},
		{"retention", "replay:\n  window: 1h\n  id_retention: 1h\n", "replay.id_retention"},
		{"bad duration", "replay:\n  window: soon\n", "window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.body), true)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestPlainListeners: a plain-HTTP listener counts as exposed unless its host is loopback
// (127.0.0.0/8, ::1, localhost); every interface (0.0.0.0, ::, an empty host) and host names
// count as exposed; listen with TLS does not; operator.listen is always plain.
func TestPlainListeners(t *testing.T) {
	for _, tc := range []struct {
		listen, operator string
		tls              bool
		want             []string
	}{
		{"127.0.0.1:8080", "127.0.0.1:8081", false, nil},
		{"127.1.2.3:8080", "[::1]:8081", false, nil},
		{"localhost:8080", "localhost:8081", false, nil},
		{"0.0.0.0:8080", "127.0.0.1:8081", false, []string{"listen 0.0.0.0:8080"}},
		{":8080", "127.0.0.1:8081", false, []string{"listen :8080"}},
		{"[::]:8080", "127.0.0.1:8081", false, []string{"listen [::]:8080"}},
		{"10.1.2.3:8080", "127.0.0.1:8081", false, []string{"listen 10.1.2.3:8080"}},
		{"broker.example:8080", "127.0.0.1:8081", false, []string{"listen broker.example:8080"}},
		{"0.0.0.0:8443", "127.0.0.1:8081", true, nil},
		{"0.0.0.0:8443", "0.0.0.0:8081", true, []string{"operator.listen 0.0.0.0:8081"}},
		{"0.0.0.0:8080", ":8081", false, []string{"listen 0.0.0.0:8080", "operator.listen :8081"}},
	} {
		c := Defaults()
		c.Listen, c.Operator.Listen, c.HTTP.TLS.Enabled = tc.listen, tc.operator, tc.tls
		if got := c.PlainListeners(); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("listen %s, operator %s, TLS %v: %q, want %q", tc.listen, tc.operator, tc.tls, got, tc.want)
		}
	}
}

// TestListenerKeysLoad: the listener keys come from the file and the environment
// (SIOBROKER_HTTP_INSECURE_LISTEN, SIOBROKER_OPERATOR_LISTEN); the development PKI cannot be
// asked for by either, only by serve --dev.
func TestListenerKeysLoad(t *testing.T) {
	d := Defaults()
	if d.Operator.Listen != "127.0.0.1:8081" || !IsLoopback(d.Operator.Listen) || d.HTTP.InsecureListen || d.Dev ||
		d.HTTP.TLS.HSTSMaxAge != 365*24*time.Hour || d.Debug.PProf {
		t.Errorf("defaults: operator %q, insecure %v, dev %v, hsts %s, pprof %v", d.Operator.Listen, d.HTTP.InsecureListen, d.Dev,
			d.HTTP.TLS.HSTSMaxAge, d.Debug.PProf)
	}
	t.Setenv("SIOBROKER_HTTP_INSECURE_LISTEN", "true")
	t.Setenv("SIOBROKER_OPERATOR_LISTEN", "127.0.0.1:9191")
	cfg, err := Load(writeConfig(t, "http:\n  public_url: https://sio.example:8443\n  tls:\n    hsts_max_age: 17520h\ndebug:\n  pprof: true\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.HTTP.InsecureListen || cfg.Operator.Listen != "127.0.0.1:9191" || cfg.HTTP.PublicURL != "https://sio.example:8443" ||
		cfg.HTTP.TLS.HSTSMaxAge != 2*365*24*time.Hour || !cfg.Debug.PProf {
		t.Errorf("loaded %+v, operator %+v, pprof %v", cfg.HTTP, cfg.Operator, cfg.Debug.PProf)
	}
	for _, body := range []string{"dev: true\n", "Dev: true\n"} {
		if _, err := Load(writeConfig(t, body), true); err == nil || !strings.Contains(strings.ToLower(err.Error()), "dev") {
			t.Errorf("a file saying %q: Load = %v, want the key refused", body, err)
		}
	}
	t.Setenv("SIOBROKER_DEV", "true")
	if cfg, err := Load("", false); err != nil || cfg.Dev {
		t.Errorf("SIOBROKER_DEV=true: Dev %v, %v; want the environment ignored", cfg.Dev, err)
	}
}
