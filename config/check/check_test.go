package check_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/config/check"
	"github.com/sio-pso/siobroker/signing"
)

// now is the time every check in these tests runs at.
var now = time.Date(2026, 11, 20, 12, 0, 0, 0, siobroker.Astana)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// repo is the repository root, where the shipped configs are.
func repo(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func shipped(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit replaces old by new in text, failing when old is not there: the shipped file changed.
func edit(t *testing.T, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("the shipped file no longer holds %q", old)
	}
	return strings.Replace(text, old, new, 1)
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lineOf is the 1-based line of the first line of text containing s.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("no line holds %q", s)
	return 0
}

// lineAfter is the line of the first line containing s after the first containing after.
func lineAfter(t *testing.T, text, after, s string) int {
	t.Helper()
	start := lineOf(t, text, after)
	lines := strings.Split(text, "\n")
	for i := start; i < len(lines); i++ {
		if strings.Contains(lines[i], s) {
			return i + 1
		}
	}
	t.Fatalf("no line after %q holds %q", after, s)
	return 0
}

// setup is a copy of the shipped configuration in a temporary directory, the broker file naming
// the copies, so that a test edits one file and checks them all.
type setup struct {
	dir                                           string
	broker, routes, rights, maint, emerg, adapter string // contents
	adapterKey                                    string // the file of the adapter's key, from a master key of its own
}

func newSetup(t *testing.T) *setup {
	s := &setup{dir: t.TempDir()}
	s.routes = shipped(t, "configs/routes.yaml")
	s.rights = shipped(t, "configs/rights.yaml")
	s.maint = shipped(t, "configs/maintenance.yaml")
	s.emerg = shipped(t, "configs/emergencies.yaml")
	s.adapter = shipped(t, "testdata/adapters/config/adapter.yaml")
	s.adapterKey = adapterKey(t, s.dir, "kgd-adapter-1")
	s.adapter = edit(t, s.adapter, "message_key_file: data/kgd-adapter-1.key", "message_key_file: "+s.adapterKey)
	b := shipped(t, "configs/broker.yaml")
	b = edit(t, b, "rights_file: configs/rights.yaml", "rights_file: "+filepath.Join(s.dir, "rights.yaml"))
	b = edit(t, b, "maintenance_file: configs/maintenance.yaml", "maintenance_file: "+filepath.Join(s.dir, "maintenance.yaml"))
	b = edit(t, b, "routes_file: configs/routes.yaml", "routes_file: "+filepath.Join(s.dir, "routes.yaml"))
	b = edit(t, b, "emergency_plans_file: configs/emergencies.yaml", "emergency_plans_file: "+filepath.Join(s.dir, "emergencies.yaml"))
	s.broker = b
	return s
}

func (s *setup) path(name string) string { return filepath.Join(s.dir, name) }

// check writes the files and checks the broker file (which brings in the others) and extra.
func (s *setup) check(t *testing.T, extra ...string) *check.Report {
	t.Helper()
	write(t, s.dir, "broker.yaml", s.broker)
	write(t, s.dir, "routes.yaml", s.routes)
	write(t, s.dir, "rights.yaml", s.rights)
	write(t, s.dir, "maintenance.yaml", s.maint)
	write(t, s.dir, "emergencies.yaml", s.emerg)
	write(t, s.dir, "adapter.yaml", s.adapter)
	files := []check.File{{Path: s.path("broker.yaml")}}
	for _, e := range extra {
		files = append(files, check.File{Path: s.path(e)})
	}
	r, err := check.Run(check.Options{Clock: fixedClock{now}}, files...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// want is a finding a test expects: its file, line, severity, words of the message and of the fix.
type want struct {
	file     string
	line     int
	severity check.Severity
	message  string
	fix      string
}

// expect fails unless r holds a finding matching w.
func expect(t *testing.T, r *check.Report, w want) {
	t.Helper()
	for _, f := range r.Findings {
		if f.File == w.file && f.Line == w.line && f.Severity == w.severity &&
			strings.Contains(f.Message, w.message) && strings.Contains(f.Fix, w.fix) {
			return
		}
	}
	var got strings.Builder
	for _, f := range r.Findings {
		got.WriteString("  " + f.String() + "\n")
	}
	t.Errorf("no finding %s:%d: %s: ...%s... (fix: ...%s...); got:\n%s", w.file, w.line, w.severity, w.message, w.fix, got.String())
}

// only fails when r has findings besides the n expected.
func only(t *testing.T, r *check.Report, n int) {
	t.Helper()
	if len(r.Findings) != n {
		var got strings.Builder
		for _, f := range r.Findings {
			got.WriteString("  " + f.String() + "\n")
		}
		t.Errorf("%d findings, want %d:\n%s", len(r.Findings), n, got.String())
	}
}

func TestShippedConfigsPass(t *testing.T) {
	t.Chdir(repo(t)) // the broker file names the others relative to the working directory
	findings, err := check.Check()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("shipped configuration: %s", f)
	}
	r, err := check.Run(check.Options{}, check.File{Path: "configs/broker.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, f := range r.Files {
		kinds = append(kinds, fmt.Sprintf("%s=%s", f.Path, f.Kind))
	}
	if got := strings.Join(kinds, " "); got != "configs/broker.yaml=broker configs/routes.yaml=routes configs/rights.yaml=rights configs/maintenance.yaml=maintenance configs/emergencies.yaml=emergencies" {
		t.Errorf("files checked: %s", got)
	}
	// Every kind is told by its keys alone.
	for path, kind := range map[string]check.Kind{
		"configs/broker.yaml": check.KindBroker, "configs/routes.yaml": check.KindRoutes,
		"configs/rights.yaml": check.KindRights, "configs/maintenance.yaml": check.KindMaintenance,
		"configs/emergencies.yaml":              check.KindEmergencies,
		"testdata/adapters/config/adapter.yaml": check.KindAdapter, "configs/adapters/erdr-postgres.yaml": check.KindAdapter,
	} {
		r, err := check.Run(check.Options{}, check.File{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		if r.Files[0].Kind != kind || r.Errors() != 0 {
			t.Errorf("%s: kind %s, %d errors (%v); want %s and none", path, r.Files[0].Kind, r.Errors(), r.Findings, kind)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	s := newSetup(t)
	s.broker = edit(t, s.broker, "    client_auth: none", "    client_aut: none")
	s.broker = edit(t, s.broker, "  format: text", "  formt: text\n  colour: blue")
	s.adapter = edit(t, s.adapter, "    timeout: 5s", "    tiemout: 5s")
	s.routes = edit(t, s.routes, "1: {queue: sio.service.001, adapter: demo, backend: demo}", "1: {queue: sio.service.001, adapter: demo, backend: demo, timout: 3s}")
	r := s.check(t, "adapter.yaml")
	broker, adapter, routes := s.path("broker.yaml"), s.path("adapter.yaml"), s.path("routes.yaml")
	expect(t, r, want{broker, lineOf(t, s.broker, "client_aut:"), check.Error, "unknown key http.tls.client_aut", "did you mean client_auth?"})
	expect(t, r, want{broker, lineOf(t, s.broker, "formt:"), check.Error, "unknown key log.formt", "did you mean format?"})
	expect(t, r, want{broker, lineOf(t, s.broker, "colour:"), check.Error, "unknown key log.colour", "remove it; the keys of log are format, level"})
	expect(t, r, want{adapter, lineOf(t, s.adapter, "tiemout:"), check.Error, "unknown key services.37.tiemout", "did you mean timeout?"})
	expect(t, r, want{routes, lineOf(t, s.routes, "timout: 3s"), check.Error, "unknown key services.1.timout", "did you mean timeout?"})
	// The adapter example serves three services the shipped routes give to the demo adapter.
	only(t, r, 5+3)
}

// Unknown keys do not hide the rest: the file is checked without them.
func TestUnknownKeysDoNotHideOtherProblems(t *testing.T) {
	s := newSetup(t)
	s.broker = edit(t, s.broker, "    client_auth: none", "    client_aut: none")
	s.broker = edit(t, s.broker, "  async_timeout: 1h", "  async_timeout: 0s")
	s.routes = edit(t, s.routes, "1: {queue: sio.service.001, adapter: demo, backend: demo}", "1: {queue: sio.service.001, adapter: demo, backend: demo, timout: 3s}")
	s.routes = edit(t, s.routes, "  5: {queue: sio.service.005, adapter: demo, backend: demo}", "  5: {queue: sio.service.005, adapter: demo, backend: oracle}")
	r := s.check(t)
	expect(t, r, want{s.path("broker.yaml"), lineOf(t, s.broker, "async_timeout:"), check.Error, "routing.async_timeout: must be positive", "positive duration"})
	expect(t, r, want{s.path("routes.yaml"), lineOf(t, s.routes, "backend: oracle"), check.Error, `service 5: backend "oracle" is not one of`, "demo, postgres or http"})
	only(t, r, 4)
}

func TestValidateErrorsAtTheirKey(t *testing.T) {
	s := newSetup(t)
	s.broker = edit(t, s.broker, "  window: 5m", "  window: 5m\n  id_retention: 1m")
	s.broker = edit(t, s.broker, "  id_retention: 24h", "")
	s.broker = edit(t, s.broker, "  level: info", "  level: loud")
	s.broker = edit(t, s.broker, "  registries: {1: erdr", "  registries: {3: x, 1: erdr")
	r := s.check(t)
	b := s.path("broker.yaml")
	expect(t, r, want{b, lineOf(t, s.broker, "id_retention: 1m"), check.Error, "replay.id_retention: 1m0s must be at least twice replay.window", "raise replay.id_retention"})
	expect(t, r, want{b, lineOf(t, s.broker, "level: loud"), check.Error, `log.level: "loud"`, "use debug, info, warn or error"})
	expect(t, r, want{b, lineOf(t, s.broker, "registries: {3: x"), check.Error, "cases.registries.3: basis 3", "remove it"})
	only(t, r, 3)
}

// TestStoreKeys: the store's durability and write timeout are checked with their fix.
func TestStoreKeys(t *testing.T) {
	s := newSetup(t)
	s.broker = edit(t, s.broker, "  synchronous: full ", "  synchronous: off ")
	s.broker = edit(t, s.broker, "  write_timeout: 5s ", "  write_timeout: 0s ")
	r := s.check(t)
	b := s.path("broker.yaml")
	expect(t, r, want{b, lineOf(t, s.broker, "synchronous: off"), check.Error, `store.synchronous: "off" is not a setting`, "use full"})
	expect(t, r, want{b, lineOf(t, s.broker, "write_timeout: 0s"), check.Error, "store.write_timeout: 0s is out of range", "use 100ms to 1m"})
	only(t, r, 2)
}

// TestUnauthenticatedRefusalKeys: the bounds on unauthenticated refusals are known keys, checked
// with their fix.
func TestUnauthenticatedRefusalKeys(t *testing.T) {
	s := newSetup(t)
	s.broker = edit(t, s.broker, "    prefix_bytes: 256 ", "    prefix_bytes: 0 ")
	s.broker = edit(t, s.broker, "    total_per_minute: 300 ", "    total_per_minute: 3 ")
	r := s.check(t)
	b := s.path("broker.yaml")
	expect(t, r, want{b, lineOf(t, s.broker, "prefix_bytes: 0"), check.Error, "journal.unauthenticated_refusals.prefix_bytes: 0 is out of range", "use 1 to 4096"})
	expect(t, r, want{b, lineOf(t, s.broker, "total_per_minute: 3 "), check.Error, "total_per_minute: 3 is below per_client_per_minute 30", "raise it"})
	only(t, r, 2)
}

// TestClientLimitKeys: the per-client and per-signer limits are known keys, checked with their
// fix, at their line.
func TestClientLimitKeys(t *testing.T) {
	s := newSetup(t)
	s.broker = edit(t, s.broker, "    per_client_burst: 1000 ", "    per_client_burst: 10 ")
	s.broker = edit(t, s.broker, "    per_client_connections: 1024 ", "    per_client_connections: -1 ")
	s.broker = edit(t, s.broker, "    allow: [] ", "    allow: [gateway.example] ")
	s.broker = edit(t, s.broker, "    per_signer_rat", "    per_signer_ratte")
	r := s.check(t)
	b := s.path("broker.yaml")
	expect(t, r, want{b, lineOf(t, s.broker, "per_client_burst: 10 "), check.Error, "http.limits.per_client_burst: 10 is below per_client_rate 200",
		"raise it to at least the rate"})
	expect(t, r, want{b, lineOf(t, s.broker, "per_client_connections: -1"), check.Error, "http.limits.per_client_connections: -1 is out of range",
		"use 0 (no limit) or more"})
	expect(t, r, want{b, lineOf(t, s.broker, "allow: [gateway.example]"), check.Error, `http.limits.allow: "gateway.example" is neither`,
		"write e.g. 192.0.2.10"})
	expect(t, r, want{b, lineOf(t, s.broker, "per_signer_ratte"), check.Error, "unknown key http.limits.per_signer_ratte", "did you mean per_signer_rate?"})
	only(t, r, 4)
}

func TestServiceWithoutRoute(t *testing.T) {
	s := newSetup(t)
	s.routes = edit(t, s.routes, "  12: {queue: sio.service.012, adapter: demo, backend: demo}  # База данных \"Инвалидность\"\n", "")
	r := s.check(t)
	expect(t, r, want{s.path("routes.yaml"), lineOf(t, s.routes, "services:"), check.Error, "no route for service 12", "add `N: {queue: sio.service.NNN, adapter: NAME, backend: KIND}`"})
	// The rights grant service 12, so they say so at its entry.
	expect(t, r, want{s.path("rights.yaml"), lineAfter(t, s.rights, "# Appendix 2", "  - no: 12"), check.Error, "service 12 is granted under basis 1, 2, 3, 4, 5, 6, but",
		"add `12: {queue: sio.service.012, adapter: NAME, backend: KIND}` under services in " + s.path("routes.yaml")})
	only(t, r, 2)
}

func TestRouteToUndeclaredQueue(t *testing.T) {
	s := newSetup(t)
	s.routes = edit(t, s.routes, "  5: {queue: sio.service.005, adapter: demo, backend: demo}", "  5: {queue: sio.vehicles, adapter: demo, backend: demo}")
	r := s.check(t)
	expect(t, r, want{s.path("routes.yaml"), lineOf(t, s.routes, "sio.vehicles"), check.Error, `service 5 is routed to queue "sio.vehicles", which is not declared`,
		`use sio.service.005 or add "sio.vehicles" to queues`})
	only(t, r, 1)
}

func TestMalformedCasePattern(t *testing.T) {
	s := newSetup(t)
	s.broker = edit(t, s.broker, `regexp: '^\d{15}$'`, `regexp: '\d{15}'`)
	s.broker = edit(t, s.broker, `regexp: '^\d{4}$'`, `regexp: '^[0-9{4}$'`)
	r := s.check(t)
	b := s.path("broker.yaml")
	expect(t, r, want{b, lineOf(t, s.broker, `regexp: '\d{15}'`), check.Error, "cases.patterns.erdr.regexp:", "start it with ^ and end it with $"})
	expect(t, r, want{b, lineOf(t, s.broker, `regexp: '^[0-9{4}$'`), check.Error, "cases.patterns.year.regexp: error parsing regexp", "RE2 syntax"})
	only(t, r, 2)
}

func TestAdapterAgainstRoutes(t *testing.T) {
	s := newSetup(t)
	// The routes give 37 to kgd-adapter-1 with postgres, but the adapter answers it over http;
	// service 5, which the adapter serves, is routed to the demo adapter.
	s.routes = edit(t, s.routes, "  37: {queue: sio.service.037, adapter: demo, backend: demo}", "  37: {queue: sio.service.037, adapter: kgd-adapter-1, backend: postgres}")
	s.routes = edit(t, s.routes, "  1: {queue: sio.service.001, adapter: demo, backend: demo}", "  1: {queue: sio.service.001, adapter: kgd-adapter-1, backend: demo}")
	s.routes = edit(t, s.routes, "  2: {queue: sio.service.002, adapter: demo, backend: demo}", "  2: {queue: sio.service.002, adapter: kgd-adapter-1, backend: demo}")
	s.adapter = edit(t, s.adapter, "  37:\n    backend: postgres\n    dsn: \"postgres://postgres@127.0.0.1:5432/test?sslmode=disable\"\n    query: |\n      SELECT inspection_no, inspection_date, inspector, result, assessed_amount\n      FROM counter_checks WHERE bin = $1 ORDER BY inspection_date, id\n    params: [subject.bin]\n",
		"  37:\n    backend: http\n    url: \"http://127.0.0.1:9999/checks\"\n")
	r := s.check(t, "adapter.yaml")
	routes, adapter := s.path("routes.yaml"), s.path("adapter.yaml")
	expect(t, r, want{routes, lineOf(t, s.routes, "  37: {"), check.Error,
		fmt.Sprintf("service 37 is routed to adapter kgd-adapter-1 with backend postgres, but %s:%d serves it with backend http", adapter, lineOf(t, s.adapter, "  37:")),
		"make the two agree: backend: http in the route, or backend: postgres in " + adapter})
	expect(t, r, want{routes, lineOf(t, s.routes, "  2: {"), check.Error, "service 2 is routed to adapter kgd-adapter-1, but " + adapter + " (the config named kgd-adapter-1) does not serve it",
		"add service 2 to " + adapter})
	expect(t, r, want{adapter, lineOf(t, s.adapter, "  5:"), check.Warning, "this adapter (kgd-adapter-1) serves service 5, but " + routes, "remove service 5 from this config, or route it to kgd-adapter-1"})
	only(t, r, 3)
}

// TestRegistriesAgainstBrokerAndAdapter: a case registry the broker's cases.registries names
// needs a route (its checks are authenticated for the adapter of the route), a registry routed to
// an adapter must be one it serves, and one it serves must be routed to it.
func TestRegistriesAgainstBrokerAndAdapter(t *testing.T) {
	s := newSetup(t)
	s.routes = edit(t, s.routes, "  courts: {adapter: demo}", "  courts: {adapter: kgd-adapter-1}")
	s.routes = edit(t, s.routes, "  aisoip: {adapter: demo}     # АИС ОИП: basis 5\n", "")
	s.adapter += "case_registries: {names: [erdr], demo_pki: data/pki/demo.json}\n"
	r := s.check(t, "adapter.yaml")
	routes, adapter := s.path("routes.yaml"), s.path("adapter.yaml")
	expect(t, r, want{routes, lineOf(t, s.routes, "registries:"), check.Error,
		"case registry aisoip (cases.registries, basis 5, " + s.path("broker.yaml"), "add `aisoip: {adapter: NAME}` under registries"})
	expect(t, r, want{routes, lineOf(t, s.routes, "  courts: {"), check.Error,
		"case registry courts is routed to adapter kgd-adapter-1, but " + adapter + " (the config named kgd-adapter-1) does not serve it",
		"add courts to the registries (or the demo case_registries.names) of " + adapter})
	expect(t, r, want{adapter, lineOf(t, s.adapter, "case_registries:"), check.Warning,
		"this adapter (kgd-adapter-1) serves case registry erdr, but " + routes + " routes it to adapter demo", "route it to kgd-adapter-1 under registries"})
	only(t, r, 6) // and the three services the example adapter serves that the shipped table routes to demo

}

// TestAdapterRegistries: the case registries an adapter answers from a real source (§5) are
// checked at their lines: an unknown key with the key meant, a postgres registry without dsn or
// query, a key of the other kind, a parameter that is not a case check's; and a registry routed
// elsewhere is warned of at its own line.
func TestAdapterRegistries(t *testing.T) {
	s := newSetup(t)
	s.adapter += `registries:
  erdr:
    backend: postgres
    query: "SELECT status, iin, part FROM erdr WHERE erdr_no = $1"
    params: [case.number]
    fileds: {part: role}
  courts:
    backend: postgres
    dsn: "postgres://h/db"
    params: [subject.iin]
  aisoip:
    backend: http
    url: "https://aisoip.example/cases"
    dsn: "postgres://h/db"
`
	r := s.check(t, "adapter.yaml")
	adapter, routes := s.path("adapter.yaml"), s.path("routes.yaml")
	expect(t, r, want{adapter, lineOf(t, s.adapter, "fileds:"), check.Error, "unknown key registries.erdr.fileds", "did you mean fields?"})
	expect(t, r, want{adapter, lineOf(t, s.adapter, "  erdr:"), check.Error, "registries.erdr: dsn: a postgres backend needs one", "set dsn:"})
	expect(t, r, want{adapter, lineOf(t, s.adapter, "  courts:"), check.Error, "registries.courts: query: must not be empty", ""})
	expect(t, r, want{adapter, lineOf(t, s.adapter, "    params: [subject.iin]"), check.Error,
		`registries.courts: params[0]: "subject.iin" is not one of basis, case.court`, ""})
	expect(t, r, want{adapter, lineAfter(t, s.adapter, "  aisoip:", "    dsn:"), check.Error, "registries.aisoip: dsn: not a key of a http backend",
		"remove the key, or change the backend kind"})
	// The shipped routes give all three to the demo adapter: each is warned of at its line.
	for _, reg := range []string{"erdr", "courts", "aisoip"} {
		expect(t, r, want{adapter, lineOf(t, s.adapter, "  "+reg+":"), check.Warning,
			"this adapter (kgd-adapter-1) serves case registry " + reg + ", but " + routes + " routes it to adapter demo", "route it to kgd-adapter-1"})
	}
	// (the unbound parameter is reported twice: unknown, and never bound by the empty query)
	only(t, r, 6+3+3) // and the three services the example adapter serves that the routes give to demo
}

func TestRouteTimeoutsAgainstBroker(t *testing.T) {
	s := newSetup(t)
	s.routes = edit(t, s.routes, "  11: {queue: sio.service.011, adapter: demo, backend: demo}", "  11: {queue: sio.service.011, adapter: demo, backend: demo, timeout: 2h}")
	s.routes = edit(t, s.routes, "  12: {queue: sio.service.012, adapter: demo, backend: demo}", "  12: {queue: sio.service.012, adapter: demo, backend: demo, timeout: 90s}")
	r := s.check(t)
	routes := s.path("routes.yaml")
	expect(t, r, want{routes, lineOf(t, s.routes, "timeout: 2h"), check.Error, "the timeout of service 11 (2h0m0s) exceeds the broker's routing.async_timeout (1h0m0s)",
		fmt.Sprintf("raise routing.async_timeout (%s:%d)", s.path("broker.yaml"), lineOf(t, s.broker, "async_timeout:"))})
	expect(t, r, want{routes, lineOf(t, s.routes, "timeout: 90s"), check.Warning, "is not below the broker's http.write_timeout (1m30s)", "raise http.write_timeout"})
	// 2h is over the write timeout too.
	only(t, r, 3)

	// Without a broker file, a running broker's configuration is what the routes are held to.
	cfg := config.Defaults()
	cfg.Routing.AsyncTimeout = 5 * time.Second
	r, err := check.Run(check.Options{Clock: fixedClock{now}, Broker: &cfg}, check.File{Path: routes, Kind: check.KindRoutes})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, want{routes, lineOf(t, s.routes, "default_timeout:"), check.Error, "default_timeout (10s) exceeds the broker's routing.async_timeout (5s)",
		"raise routing.async_timeout (the broker configuration)"})
	only(t, r, 1+4) // and services 11 and 12 against both timeouts
}

func TestRightsAndMaintenanceErrorsAtTheirItem(t *testing.T) {
	s := newSetup(t)
	s.rights = edit(t, s.rights, "    bases: [1, 3, 6]", "    bases: [1, 3, 7]")
	s.maint = edit(t, s.maint, "windows: []", "windows:\n  - services: [11]\n    start: 2026-12-01T22:00:00+05:00\n    end: 2026-12-01T20:00:00+05:00\n    reason: upgrade\n    announced_at: 2026-11-20T09:00:00+05:00\n"+
		"  - start: 2026-11-01T22:00:00+05:00\n    end: 2026-11-02T02:00:00+05:00\n    reason: done\n    announced_at: 2026-10-30T09:00:00+05:00\n")
	r := s.check(t)
	expect(t, r, want{s.path("rights.yaml"), lineOf(t, s.rights, "  - no: 10"), check.Error, "role 10: basis 7 is not in 1..6", "use bases 1 to 6"})
	expect(t, r, want{s.path("maintenance.yaml"), lineOf(t, s.maint, "  - services: [11]"), check.Error, "window 1: end 2026-12-01T20:00:00+05:00 must be after start", "make end later than start"})
	only(t, r, 2)
	// Once the first window is right, the second, over by now, is a warning.
	s.maint = edit(t, s.maint, "end: 2026-12-01T20:00:00+05:00", "end: 2026-12-02T02:00:00+05:00")
	r = s.check(t)
	expect(t, r, want{s.path("maintenance.yaml"), lineOf(t, s.maint, "  - start: 2026-11-01"), check.Warning, "window 2 ended at 2026-11-02T02:00:00+05:00", "remove it"})
	only(t, r, 2)
}

// TestEmergencyPlansErrorsAtTheirLine: the emergency action plans the broker file names are
// checked with the broker's own reading of them, each mistake at its line; a file the key names
// that does not exist is a warning at the key, since the broker starts without it.
func TestEmergencyPlansErrorsAtTheirLine(t *testing.T) {
	s := newSetup(t)
	s.emerg = edit(t, s.emerg, "      max: 5m\n", "      max: five minutes\n")
	s.emerg = edit(t, s.emerg, "  flooding:", "  floods:")
	s.emerg = edit(t, s.emerg, "example: true", "example: true\ncolour: red")
	r := s.check(t)
	file := s.path("emergencies.yaml")
	expect(t, r, want{file, lineAfter(t, s.emerg, "  fire-alarm:", "    - action:"), check.Error, `plans.fire-alarm[0]: max "five minutes" is not a duration`, ""})
	expect(t, r, want{file, lineOf(t, s.emerg, "  floods:"), check.Error, `"floods" is not a kind of emergency of Appendix 7`, ""})
	expect(t, r, want{file, lineOf(t, s.emerg, "colour: red"), check.Error, "unknown key colour", ""})
	expect(t, r, want{file, lineOf(t, s.emerg, "plans:"), check.Error, "the plan of flooding (Действия в случае затопления) is missing", ""})
	only(t, r, 4)

	s = newSetup(t)
	s.broker = edit(t, s.broker, "emergency_plans_file: "+s.path("emergencies.yaml"), "emergency_plans_file: "+s.path("none.yaml"))
	r = s.check(t)
	expect(t, r, want{s.path("broker.yaml"), lineOf(t, s.broker, "emergency_plans_file:"), check.Warning,
		"incidents.emergency_plans_file names " + s.path("none.yaml") + ", which does not exist", "configs/emergencies.yaml"})
	only(t, r, 1)
}

// TestMaintenanceNoticeAtItsLine: a window of the file announced with less notice than the broker
// file's maintenance_min_notice, or after it began, or without announced_at, is an error at its
// line unless it is marked emergency; the notice is the broker file's, or the default.
func TestMaintenanceNoticeAtItsLine(t *testing.T) {
	s := newSetup(t)
	// now is 2026-11-20T12:00+05:00. Window 1 starts 6 hours after its announcement, window 2
	// began before it was announced, window 3 has no announced_at, window 4 is an emergency, and
	// window 5 was announced two days ahead and is in force.
	s.maint = edit(t, s.maint, "windows: []", "windows:\n"+
		"  - services: [11]\n    start: 2026-11-20T16:00:00+05:00\n    end: 2026-11-20T18:00:00+05:00\n    reason: upgrade\n    announced_at: 2026-11-20T10:00:00+05:00\n"+
		"  - services: [12]\n    start: 2026-11-20T09:00:00+05:00\n    end: 2026-11-20T18:00:00+05:00\n    reason: outage\n    announced_at: 2026-11-20T10:00:00+05:00\n"+
		"  - services: [13]\n    start: 2026-11-25T09:00:00+05:00\n    end: 2026-11-25T18:00:00+05:00\n    reason: move\n"+
		"  - services: [14]\n    start: 2026-11-20T09:00:00+05:00\n    end: 2026-11-20T18:00:00+05:00\n    reason: fire alarm\n    announced_at: 2026-11-20T10:00:00+05:00\n    emergency: true\n"+
		"  - services: [15]\n    start: 2026-11-20T11:00:00+05:00\n    end: 2026-11-20T18:00:00+05:00\n    reason: planned\n    announced_at: 2026-11-18T10:00:00+05:00\n")
	r := s.check(t)
	expect(t, r, want{s.path("maintenance.yaml"), lineOf(t, s.maint, "  - services: [11]"), check.Error,
		"window 1: not announced in advance: the window starts at 2026-11-20T16:00:00+05:00, 6h0m0s after it is announced at 2026-11-20T10:00:00+05:00, and planned work is announced at least 24h0m0s ahead",
		"start it later, or set emergency: true"})
	expect(t, r, want{s.path("maintenance.yaml"), lineOf(t, s.maint, "  - services: [12]"), check.Error,
		"window 2: not announced in advance: the window starts at 2026-11-20T09:00:00+05:00, before it is announced", "set emergency: true"})
	expect(t, r, want{s.path("maintenance.yaml"), lineOf(t, s.maint, "  - services: [13]"), check.Error,
		"window 3: announced_at is required", "write it in RFC 3339 with an offset"})
	only(t, r, 3)

	// The broker file's notice applies: with 4 hours, window 1 passes.
	s.broker = edit(t, s.broker, "maintenance_min_notice: 24h", "maintenance_min_notice: 4h")
	r = s.check(t)
	only(t, r, 2)
}

func TestSyntaxAndKind(t *testing.T) {
	dir := t.TempDir()
	bad := write(t, dir, "bad.yaml", "listen: 127.0.0.1:8080\nhttp:\n  tls: [a,\n")
	unknown := write(t, dir, "what.yaml", "colour: blue\n")
	forced := write(t, dir, "forced.yaml", "colour: blue\n")
	r, err := check.Run(check.Options{Clock: fixedClock{now}}, check.File{Path: bad}, check.File{Path: unknown},
		check.File{Path: forced, Kind: check.KindMaintenance}, check.File{Path: filepath.Join(dir, "none.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, want{bad, 3, check.Error, "not valid YAML", "correct the YAML syntax"})
	expect(t, r, want{unknown, 1, check.Error, "cannot tell what the file configures: no kind of configuration has the top-level keys colour", "--kind broker|routes|rights|adapter|maintenance|emergencies"})
	expect(t, r, want{forced, 1, check.Error, "unknown key colour", "the keys of the top level are windows"})
	expect(t, r, want{filepath.Join(dir, "none.yaml"), 0, check.Error, "cannot read the file: no such file or directory", "correct the path"})
	only(t, r, 4)
	if _, err := check.Run(check.Options{}, check.File{Path: bad, Kind: "brokr"}); err == nil {
		t.Error("an unknown kind is accepted")
	}
	f := check.Finding{File: "configs/routes.yaml", Line: 12, Severity: check.Error, Message: "no route for service 12", Fix: "add it"}
	if got := f.String(); got != "configs/routes.yaml:12: error: no route for service 12 (fix: add it)" {
		t.Errorf("String: %s", got)
	}
}

func TestNamedFileMissing(t *testing.T) {
	s := newSetup(t)
	s.broker = edit(t, s.broker, "rights_file: "+s.path("rights.yaml"), "rights_file: "+s.path("right.yaml"))
	r := s.check(t)
	expect(t, r, want{s.path("broker.yaml"), lineOf(t, s.broker, "rights_file:"), check.Error, "rights_file names " + s.path("right.yaml") + ", which cannot be read", "correct the path"})
	only(t, r, 1)
}

// pki is a directory of self-signed test certificates and keys; "ca" also gets a stale PEM CRL (past
// its nextUpdate by more than the default grace of 24h), a PEM CRL within that grace and a fresh
// DER CRL.
type pki struct {
	dir string
}

// certificate writes a self-signed certificate valid from notBefore to notAfter and its key,
// and returns the two paths.
func (p pki) certificate(t *testing.T, name string, notBefore, notAfter time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name + " (test key)"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath := write(t, p.dir, name+".pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyPath := write(t, p.dir, name+".key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	if name == "ca" {
		cert, _ := x509.ParseCertificate(der)
		crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-72 * time.Hour), NextUpdate: now.Add(-48 * time.Hour)}, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		write(t, p.dir, "stale.crl", string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl})))
		crl, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-25 * time.Hour), NextUpdate: now.Add(-time.Hour)}, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		write(t, p.dir, "graced.crl", string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl})))
		crl, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(2), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(60 * 24 * time.Hour)}, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		write(t, p.dir, "fresh.crl", string(crl)) // DER
	}
	return certPath, keyPath
}

func TestCertificates(t *testing.T) {
	s := newSetup(t)
	p := pki{dir: t.TempDir()}
	ca, _ := p.certificate(t, "ca", now.Add(-time.Hour), now.Add(5*365*24*time.Hour))
	expired, _ := p.certificate(t, "expired", now.Add(-400*24*time.Hour), now.Add(-24*time.Hour))
	soon, soonKey := p.certificate(t, "soon", now.Add(-24*time.Hour), now.Add(10*24*time.Hour))
	_, otherKey := p.certificate(t, "other", now.Add(-24*time.Hour), now.Add(365*24*time.Hour))
	garbage := write(t, p.dir, "garbage.pem", "not a certificate\n")
	missing := filepath.Join(p.dir, "missing.pem")

	s.broker = edit(t, s.broker, "  roots: []", fmt.Sprintf("  roots:\n    - %s\n    - %s\n    - %s\n    - %s", ca, expired, garbage, missing))
	s.broker = edit(t, s.broker, "  crls: []", fmt.Sprintf("  crls: [%s, %s]", filepath.Join(p.dir, "fresh.crl"), filepath.Join(p.dir, "stale.crl")))
	s.broker = edit(t, s.broker, "  cert_file: \"\"               # the broker's certificate; empty = DIR/pki/broker.pem", "  cert_file: "+soon)
	s.broker = edit(t, s.broker, "  key_file: \"\"\n  timestamp_skew", "  key_file: "+otherKey+"\n  timestamp_skew")
	s.broker = edit(t, s.broker, "    enabled: false\n    cert_file: \"\"\n    key_file: \"\"", fmt.Sprintf("    enabled: true\n    cert_file: %s\n    key_file: %s", soon, soonKey))
	r := s.check(t)
	b := s.path("broker.yaml")
	expect(t, r, want{b, lineOf(t, s.broker, "- "+expired), check.Error, "trust.roots[1]: the trusted root \"CN=expired (test key)\" in " + expired + " expired at", "install a renewed certificate"})
	expect(t, r, want{b, lineOf(t, s.broker, "- "+garbage), check.Error, "trust.roots[2]: " + garbage + " holds no usable certificate", "PEM file of CERTIFICATE blocks"})
	expect(t, r, want{b, lineOf(t, s.broker, "- "+missing), check.Error, "trust.roots[3]: cannot read " + missing, "correct the path"})
	expect(t, r, want{b, lineOf(t, s.broker, "crls:"), check.Error, "trust.crls[1]: the CRL of \"CN=ca (test key)\" in " + filepath.Join(p.dir, "stale.crl") + " is out of date", "install the issuer's current CRL"})
	// A certificate that expires in 10 days is a warning, where it is named for signing and for TLS.
	expect(t, r, want{b, lineAfter(t, s.broker, "signing:", "  cert_file: "+soon), check.Warning, "signing.cert_file: the broker's signing certificate \"CN=soon (test key)\" in " + soon + " expires at", "renew it before"})
	expect(t, r, want{b, lineOf(t, s.broker, "    cert_file: "+soon), check.Warning, "http.tls.cert_file: the HTTPS certificate", "renew it before"})
	expect(t, r, want{b, lineOf(t, s.broker, "  key_file: "+otherKey), check.Error, "signing.key_file: the key in " + otherKey + " does not match its certificate", "give the private key the certificate was issued for"})
	only(t, r, 7)

	// With only the certificate that expires soon, there are warnings and no errors.
	s = newSetup(t)
	s.broker = edit(t, s.broker, "    enabled: false\n    cert_file: \"\"\n    key_file: \"\"", fmt.Sprintf("    enabled: true\n    cert_file: %s\n    key_file: %s", soon, soonKey))
	r = s.check(t)
	only(t, r, 1)
	if r.Errors() != 0 || r.Warnings() != 1 {
		t.Errorf("%d errors, %d warnings; want a warning only", r.Errors(), r.Warnings())
	}
}

// TestCRLPastNextUpdateWithinGrace: a CRL an hour past its nextUpdate is a warning under the default
// trust.crl_stale: grace (24h), since the broker keeps answering until the grace ends; under
// refuse it is an error, as the broker refuses its issuer's signers at nextUpdate. A CRL past the
// grace is an error (TestCertificates).
func TestCRLPastNextUpdateWithinGrace(t *testing.T) {
	p := pki{dir: t.TempDir()}
	ca, _ := p.certificate(t, "ca", now.Add(-time.Hour), now.Add(365*24*time.Hour))
	graced := filepath.Join(p.dir, "graced.crl")
	s := newSetup(t)
	s.broker = edit(t, s.broker, "  roots: []", "  roots: ["+ca+"]")
	s.broker = edit(t, s.broker, "  crls: []", "  crls: ["+graced+"]")
	r := s.check(t)
	expect(t, r, want{s.path("broker.yaml"), lineOf(t, s.broker, "crls:"), check.Warning,
		"trust.crls[0]: the CRL of \"CN=ca (test key)\" in " + graced + " is past its next update (due 2026-11-20T11:00:00+05:00); the broker keeps it in force for its grace (trust.crl_stale_grace, 24h0m0s), until 2026-11-21T11:00:00+05:00",
		"install the issuer's current CRL before 2026-11-21T11:00:00+05:00"})
	only(t, r, 1)
	if r.Errors() != 0 {
		t.Errorf("%d errors for a CRL within its grace; want a warning only", r.Errors())
	}

	s.broker = edit(t, s.broker, "crl_stale: grace", "crl_stale: refuse")
	r = s.check(t)
	expect(t, r, want{s.path("broker.yaml"), lineOf(t, s.broker, "crls:"), check.Error,
		"trust.crls[0]: the CRL of \"CN=ca (test key)\" in " + graced + " is out of date since 2026-11-20T11:00:00+05:00", "install the issuer's current CRL"})
	only(t, r, 1)
}

// A CRL that its root did not issue correctly fails as the broker's trust store would.
func TestCRLOfAnotherKey(t *testing.T) {
	s := newSetup(t)
	p := pki{dir: t.TempDir()}
	ca, _ := p.certificate(t, "ca", now.Add(-time.Hour), now.Add(365*24*time.Hour))
	// A second CA with the same name signs a CRL that the first cannot verify.
	p2 := pki{dir: t.TempDir()}
	p2.certificate(t, "ca", now.Add(-time.Hour), now.Add(365*24*time.Hour))
	s.broker = edit(t, s.broker, "  roots: []", "  roots: ["+ca+"]")
	s.broker = edit(t, s.broker, "  crls: []", "  crls: ["+filepath.Join(p2.dir, "fresh.crl")+"]")
	r := s.check(t)
	expect(t, r, want{s.path("broker.yaml"), lineOf(t, s.broker, "crls:"), check.Error, "does not verify against the root", "install the CRL the root in trust.roots issued"})
	only(t, r, 1)
}

// TestPrefetchWithDeliveryLimitWarned: a prefetch above 1 with a delivery limit on RabbitMQ is
// warned about at amqp.prefetch: prefetched messages are counted toward the limit on every lost
// channel.
func TestPrefetchWithDeliveryLimitWarned(t *testing.T) {
	s := newSetup(t)
	s.broker = edit(t, s.broker, "transport: gochannel", "transport: amqp")
	s.broker = edit(t, s.broker, "  prefetch: 1 ", "  prefetch: 4 ")
	masterFile, _ := masterKey(t, s.dir, "transport.key") // not the development default, which is warned about
	s.broker = edit(t, s.broker, `  message_key_file: ""`, "  message_key_file: "+masterFile)
	r := s.check(t)
	expect(t, r, want{s.path("broker.yaml"), lineOf(t, s.broker, "  prefetch: 4 "), check.Warning,
		"amqp.prefetch 4 with amqp.delivery_limit 5: each message prefetched beyond the one in hand", "set amqp.prefetch to 1"})
	only(t, r, 1)
}

// TestTrustSigningEKUs: an OID that is not one is reported at its key's line with the fix, and
// the default of config is signing's (config may not import signing to share it).
func TestTrustSigningEKUs(t *testing.T) {
	if !slices.Equal(config.DefaultSigningEKUs, signing.DefaultSigningEKUs) {
		t.Errorf("config.DefaultSigningEKUs %v, signing.DefaultSigningEKUs %v: one default", config.DefaultSigningEKUs, signing.DefaultSigningEKUs)
	}
	s := newSetup(t)
	s.broker = edit(t, s.broker, `  signing_ekus: ["1.3.6.1.5.5.7.3.4"]`, `  signing_ekus: ["1.3.6.1.5.5.7.3.4", "emailProtection"]`)
	r := s.check(t)
	expect(t, r, want{s.path("broker.yaml"), lineOf(t, s.broker, "signing_ekus:"), check.Error,
		`trust.signing_ekus[1]: "emailProtection" is not a dotted OID`, "write one such as 1.3.6.1.5.5.7.3.4"})
	only(t, r, 1)
}

// TestNotifyFiles: the recipients file of the §45 notices is read and checked, and the mail
// server's files must exist; recipients without a mail server are warned about.
func TestNotifyFiles(t *testing.T) {
	s := newSetup(t)
	recipients := filepath.Join(s.dir, "notify.yaml")
	write(t, s.dir, "notify.yaml", "prosecutor:\n  emails: [\"Прокурор <p@x.test>\"]\n")
	s.broker = edit(t, s.broker, `recipients_file: ""`, "recipients_file: "+recipients)
	s.broker = edit(t, s.broker, `ca_file: ""`, "ca_file: "+filepath.Join(s.dir, "none.pem"))
	r := s.check(t)
	b := s.path("broker.yaml")
	expect(t, r, want{b, lineOf(t, s.broker, "recipients_file:"), check.Error, "not a plain e-mail address", "correct the file"})
	expect(t, r, want{b, lineOf(t, s.broker, "recipients_file:"), check.Warning, "notify.smtp.addr is not", "set notify.smtp.addr"})
	expect(t, r, want{b, lineOf(t, s.broker, "none.pem"), check.Error, "notify.smtp.ca_file", "install the file"})
	only(t, r, 3)
}

// TestHRFiles: the HR systems' keys are read as the broker reads them (a key too short, a file
// others may read), and the feed's folder must exist and not be writable by everyone.
func TestHRFiles(t *testing.T) {
	s := newSetup(t)
	keys := filepath.Join(s.dir, "hr-keys.yaml")
	write(t, s.dir, "hr-keys.yaml", "systems:\n  mvd-hr: 00ff\n")
	if err := os.Chmod(keys, 0o600); err != nil {
		t.Fatal(err)
	}
	s.broker = edit(t, s.broker, `keys_file: ""`, "keys_file: "+keys)
	s.broker = edit(t, s.broker, `  dir: ""  `, "  dir: "+filepath.Join(s.dir, "no-such-folder")+"  ")
	r := s.check(t)
	b := s.path("broker.yaml")
	expect(t, r, want{b, lineOf(t, s.broker, "keys_file:"), check.Error, "32 or more bytes", "correct the file"})
	expect(t, r, want{b, lineOf(t, s.broker, "no-such-folder"), check.Error, "hr.dir", "create the folder"})
	only(t, r, 2)
}

// TestTracingKeys: the tracing section is checked at its keys, a misspelt key named.
func TestTracingKeys(t *testing.T) {
	s := newSetup(t)
	s.broker = edit(t, s.broker, `  otlp_endpoint: ""`, `  otlp_endpoint: "127.0.0.1:4318"`)
	s.broker = edit(t, s.broker, "  sample_ratio: 1 ", "  sample_ratio: 2 ")
	s.broker = edit(t, s.broker, "  service_name: siobroker ", "  service_nam: siobroker ")
	r := s.check(t)
	b := s.path("broker.yaml")
	expect(t, r, want{b, lineOf(t, s.broker, "otlp_endpoint: \"127"), check.Error, `tracing.otlp_endpoint: "127.0.0.1:4318" is not an http:// or https:// URL`, ""})
	expect(t, r, want{b, lineOf(t, s.broker, "sample_ratio: 2"), check.Error, "tracing.sample_ratio: 2", "use 0 to 1"})
	expect(t, r, want{b, lineOf(t, s.broker, "service_nam:"), check.Error, "unknown key tracing.service_nam", "service_name"})
	only(t, r, 3)
}
