package cases_test

// These tests read the cases section through the broker's configuration loader, which imports
// this package: they live in the external test package to keep the import one way.

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/cases"
	"github.com/sio-pso/siobroker/config"
)

// TestLoadConfig holds configs/broker.yaml to the defaults, and a file's section to the rules.
func TestLoadConfig(t *testing.T) {
	b, err := config.Load("../../configs/broker.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	def := cases.DefaultConfig()
	if b.Cases.CheckTimeout != def.CheckTimeout || b.Cases.MinYear != def.MinYear || b.Cases.Patterns != def.Patterns ||
		len(b.Cases.Registries) != len(def.Registries) {
		t.Errorf("configs/broker.yaml and cases.DefaultConfig disagree:\n%+v\n%+v", b.Cases, def)
	}
	for k, v := range def.Registries {
		if b.Cases.Registries[k] != v {
			t.Errorf("registries.%d: %q in the file, %q by default", k, b.Cases.Registries[k], v)
		}
	}
	if !reflect.DeepEqual(b.Cases.Parts, def.Parts) || !reflect.DeepEqual(b.Cases.OpenStatuses, def.OpenStatuses) {
		t.Errorf("cases.parts and open_statuses: the file has\n%+v %v\nthe defaults\n%+v %v", b.Cases.Parts, b.Cases.OpenStatuses, def.Parts, def.OpenStatuses)
	}
	if _, err := cases.NewRules(b.Cases, siobroker.SystemClock{}); err != nil {
		t.Fatal(err)
	}

	sub, err := config.Load("../../testdata/cases/registries_subset.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cases.NewRules(sub.Cases, siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := r.Registry(6); n != "kpsisu-search" || !ok {
		t.Errorf("Registry(6) = %q, %v", n, ok)
	}
	if n, ok := r.Registry(2); ok {
		t.Errorf("the file's registries should replace the default map, Registry(2) = %q", n)
	}
	if r.CheckTimeout() != 2*time.Second || sub.Cases.Patterns.Court != def.Patterns.Court {
		t.Errorf("other keys should keep their defaults: %+v", sub.Cases)
	}
	if err := r.Validate(1, siobroker.CaseRef{Number: "2615000310001234"}); err != nil {
		t.Errorf("the configured ЕРДР pattern is not used: %v", err)
	}

	for file, key := range map[string]string{
		"bad_pattern.yaml":     "cases.patterns.court_case.regexp",
		"unanchored.yaml":      "cases.patterns.enforcement.regexp",
		"registry_basis3.yaml": "cases.registries.3",
	} {
		_, err := config.Load("../../testdata/cases/"+file, true)
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: err = %v, want one naming %s", file, err, key)
		}
	}
}

func TestEnvironmentOverride(t *testing.T) {
	t.Setenv("SIOBROKER_CASES_PATTERNS_ENFORCEMENT_REGEXP", `^\d{8}$`)
	t.Setenv("SIOBROKER_CASES_CHECK_TIMEOUT", "750ms")
	b, err := config.Load("", false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cases.NewRules(b.Cases, siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	if r.CheckTimeout() != 750*time.Millisecond {
		t.Errorf("CheckTimeout = %s", r.CheckTimeout())
	}
	if err := r.Validate(5, siobroker.CaseRef{Number: "12345678"}); err != nil {
		t.Error(err)
	}
	if err := r.Validate(5, siobroker.CaseRef{Number: "02-0015-25-1/1234"}); err == nil {
		t.Error("the overridden pattern is not used")
	}
	if name, ok := r.Registry(1); name != "erdr" || !ok {
		t.Errorf("without a file the default registries apply: %q %v", name, ok)
	}
}

// TestLoadParts: a file's cases.parts replaces the default list whole, its rules are decoded with
// unknown keys refused, and mistakes are named by their key; a file without it has the defaults.
func TestLoadParts(t *testing.T) {
	dir := t.TempDir()
	load := func(cases string) (config.Broker, error) {
		path := filepath.Join(dir, "broker.yaml")
		if err := os.WriteFile(path, []byte("cases:\n"+cases), 0o600); err != nil {
			t.Fatal(err)
		}
		return config.Load(path, true)
	}
	b, err := load("  parts:\n    - {roles: [2], parts: [Judge, presiding_judge]}\n  open_statuses: [open, in_court]\n")
	if err != nil {
		t.Fatal(err)
	}
	r, err := cases.NewRules(b.Cases, siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.AllowedParts(2, 4); strings.Join(got, ",") != "judge,presiding_judge" {
		t.Errorf("judge: %v", got)
	}
	if got := r.AllowedParts(1, 1); got != nil {
		t.Errorf("the prosecutor's default rule survived a file's list: %v", got)
	}
	if got := r.OpenStatuses(); strings.Join(got, ",") != "open,in_court" {
		t.Errorf("open statuses %v", got)
	}
	if b, err = load("  min_year: 1991\n"); err != nil || !reflect.DeepEqual(b.Cases.Parts, cases.DefaultParts()) {
		t.Errorf("a file without cases.parts: %+v, %v", b.Cases.Parts, err)
	}
	for text, want := range map[string]string{
		"  parts:\n    - {roles: [2], parts: [judge], basis: [1]}\n": "basis",
		"  parts:\n    - {roles: [20], parts: [judge]}\n":            "cases.parts[0].roles: 20 is not a role of Appendix 1",
		"  parts:\n    - {roles: [3], bases: [3], parts: [x]}\n":     "cases.parts[0].bases: basis 3 is never checked",
		"  parts:\n    - {roles: [3], parts: []}\n":                  "cases.parts[0].parts: name at least one part",
		"  parts: []\n":         "cases.parts: empty",
		"  open_statuses: []\n": "cases.open_statuses: empty",
	} {
		if _, err := load(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}
