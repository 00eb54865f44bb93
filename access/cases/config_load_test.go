package cases_test

// These tests read the cases section through the broker's configuration loader, which imports
// this package: they live in the external test package to keep the import one way.

import (
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
