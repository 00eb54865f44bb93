// Package deploy_test holds the operators' files of deploy/ to the broker: the Prometheus alert
// rules pass promtool's check and their unit tests, and every metric the rules and the Grafana
// dashboard read is one the broker exports.
package deploy_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/operator/metrics"
)

const (
	rulesFile     = "prometheus/siobroker.rules.yml"
	rulesTestFile = "prometheus/siobroker.rules.test.yml"
	dashboardFile = "grafana/siobroker.json"
)

// tool returns the path of the command name, which Debian's package pkg installs. Under CI=true
// a missing one fails the test: what it checks would otherwise go unchecked.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (apt-get install %s): %v", name, pkg, err)
		}
		t.Skipf("%s not installed (Debian package %s): %v", name, pkg, err)
	}
	return path
}

// promtool returns the path of Prometheus's promtool.
func promtool(t *testing.T) string {
	t.Helper()
	return tool(t, "promtool", "prometheus")
}

// run runs name with args in dir, and fails the test with its output, and what explain adds, if
// it fails.
func run(t *testing.T, dir, explain, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, explain)
	}
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string `yaml:"alert"`
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return f
}

// TestAlertRules: the rules pass `promtool check rules`, their unit tests pass `promtool test
// rules`, and every alert fires in at least one of those tests.
func TestAlertRules(t *testing.T) {
	promtool := promtool(t)
	run(t, ".", "", promtool, "check", "rules", rulesFile)
	run(t, "prometheus", "", promtool, "test", "rules", filepath.Base(rulesTestFile))

	b, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatalf("%s: %v", rulesTestFile, err)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	alerts := 0
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if !fires[r.Alert] {
				t.Errorf("alert %s never fires in %s", r.Alert, rulesTestFile)
			}
		}
	}
	// The conditions issue 21 asks an alert for, and the broker being scraped at all.
	for _, want := range []string{"SiobrokerDown", "SiobrokerTransportDown", "SiobrokerIncidentOpen", "SiobrokerQueueMessageOld",
		"SiobrokerServiceErrorRate", "SiobrokerDeadLetters", "SiobrokerJournalWritesFailing", "SiobrokerCertificateExpiresSoon",
		"SiobrokerCRLExpiresSoon"} {
		if !fires[want] {
			t.Errorf("no alert %s, or it is not tested", want)
		}
	}
	if alerts < 9 {
		t.Errorf("read %d alerts; the reader has lost them", alerts)
	}
}

// exported scrapes the /metrics of a broker's metrics whose every source is set and every
// observer called once, and returns the names a query can use: each family's, and a histogram's
// _bucket, _sum and _count series.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "broker"}, NotAfter: time.Now().Add(time.Hour)}
	src := metrics.Sources{
		Services: func(context.Context) ([]health.ServiceState, error) {
			return []health.ServiceState{{Service: 1, Queue: "sio.service.001", QueueDepth: 1, DeadLetters: 1}}, nil
		},
		OpenIncidents:       func(context.Context) (int, error) { return 1, nil },
		PendingApplications: func(context.Context) (int, int, error) { return 2, 1, nil },
		JournalHead:         func(context.Context) (int64, error) { return 1, nil },
		ArchivedUpTo:        func(context.Context) (int64, error) { return 1, nil },
		CRLFetches:          func() map[string]uint64 { return map[string]uint64{"applied": 1} },
		OCSPResponses:       func() map[string]uint64 { return map[string]uint64{"good": 1} },
		JournalWrites:       func() map[string]uint64 { return map[string]uint64{"appended": 1} },
		Transport:           func(context.Context) error { return nil },
		Certificates:        func() []metrics.Certificate { return []metrics.Certificate{{Role: "signing", Cert: cert}} },
		CRLs: func() []*x509.RevocationList {
			return []*x509.RevocationList{{Issuer: pkix.Name{CommonName: "root"}, NextUpdate: time.Now().Add(time.Hour)}}
		},
	}
	// A source added to the metrics without being set here would hide its series from this test.
	v := reflect.ValueOf(src)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Func && f.IsNil() {
			t.Fatalf("metrics.Sources.%s is not set here: set it, so that its series are checked", v.Type().Field(i).Name)
		}
	}
	m := metrics.New(src)
	m.ObserveRequests("sync")(siobroker.OutcomeAnswered, "", time.Millisecond)
	m.ObserveAnswer(1, siobroker.StatusOK, time.Millisecond)
	metrics.ObserveStages(m, []string{"verify"})("verify", time.Millisecond)
	m.ObserveUnauthenticatedRefusal(siobroker.CodeSigMissing, true)
	m.ObserveTransportRefusal("broker", "missing")
	m.ObserveCRLReload(true)
	m.ObserveRateLimited("client_rate")

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	families, err := metrics.Scrape(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for name, f := range families {
		names[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
		}
	}
	return names
}

// metricName matches a metric name of the broker in a query.
var metricName = regexp.MustCompile(`\b` + metrics.Prefix + `[a-zA-Z0-9_]+`)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s is not a dashboard's JSON: %v", dashboardFile, err)
	}
	if dec.More() {
		t.Fatalf("%s has more than one JSON value", dashboardFile)
	}
	return d
}

// query is one PromQL query of the dashboard, and where it is.
type query struct{ where, expr string }

// queries returns every query of d: its panels' targets, its variables' and its annotations'.
func queries(d dashboard) []query {
	var out []query
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, query{fmt.Sprintf("panel %d %q, target %s", p.ID, p.Title, tg.RefID), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			out = append(out, query{"variable " + v.Name, v.Definition})
		}
	}
	for i, a := range d.Annotations.List {
		out = append(out, query{fmt.Sprintf("annotation %d", i), a.Expr})
	}
	return out
}

// TestGrafanaDashboard: the dashboard is one JSON object with a title, a uid and panels with
// unique ids and places, each reading the Prometheus data source chosen in its variable; every
// panel's query is PromQL (promtool checks it, with Grafana's variables filled in).
func TestGrafanaDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.Title == "" || d.UID == "" || d.SchemaVersion == 0 {
		t.Errorf("title %q, uid %q, schemaVersion %d: Grafana needs them", d.Title, d.UID, d.SchemaVersion)
	}
	ids := map[int]bool{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("panel %q: id %d is missing or used twice", p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("panel %d %q has no place on the grid", p.ID, p.Title)
			}
			if p.Type != "row" && (len(p.Targets) == 0 || !strings.Contains(string(p.Datasource), "${datasource}")) {
				t.Errorf("panel %d %q: no query, or not on the chosen data source: %s", p.ID, p.Title, p.Datasource)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(ids) < 10 {
		t.Fatalf("read %d panels; the reader has lost them", len(ids))
	}

	// Each query becomes a recording rule of a file promtool checks: it parses PromQL as
	// Prometheus does. Grafana's variables are replaced by what they stand for.
	fill := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$instance", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	var names strings.Builder
	for i, q := range queries(d) {
		if strings.Contains(fill.Replace(q.expr), "$") {
			t.Errorf("%s: a variable this test does not know: %s", q.where, q.expr)
		}
		if strings.HasPrefix(q.expr, "label_values(") {
			continue // Grafana's, not PromQL
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: fill.Replace(q.expr)})
		fmt.Fprintf(&names, "dashboard:query_%d is %s\n", i, q.where)
	}
	file := map[string]any{"groups": []map[string]any{{"name": "dashboard", "rules": rules}}}
	b, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, ".", names.String(), promtool(t), "check", "rules", path)
}

// TestQueriesReadExportedMetrics: every metric of the broker that an alert rule or a dashboard
// query names is in the broker's /metrics, so that neither watches a series that never comes.
func TestQueriesReadExportedMetrics(t *testing.T) {
	names := exported(t)
	var qs []query
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{"rule " + r.Alert + r.Record, r.Expr})
		}
	}
	qs = append(qs, queries(readDashboard(t))...)
	used := map[string]bool{}
	for _, q := range qs {
		for _, name := range metricName.FindAllString(q.expr, -1) {
			used[name] = true
			if !names[name] {
				t.Errorf("%s reads %s, which the broker does not export", q.where, name)
			}
		}
	}
	if len(used) < 20 {
		t.Fatalf("the queries name %d metrics; the reader has lost them", len(used))
	}
	// The other way round, for the reader: what no chart and no alert shows.
	var unused []string
	for name := range names {
		if !strings.HasPrefix(name, metrics.Prefix) || used[name] {
			continue
		}
		if slices.ContainsFunc([]string{"_bucket", "_sum", "_count"}, func(s string) bool {
			return strings.HasSuffix(name, s) || used[name+s]
		}) {
			continue // a histogram: counted by the series read
		}
		unused = append(unused, name)
	}
	slices.Sort(unused)
	t.Logf("exported but in no chart or alert: %s", strings.Join(unused, ", "))
}
