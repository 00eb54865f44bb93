package app

import (
	"os"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/cases"
	"github.com/sio-pso/siobroker/routing/routes"
)

// TestCaseRegistriesNeedARoute: serve refuses a routing table that gives no adapter to a case
// registry the case rules use, since its checks could be authenticated for none and every
// request under its bases would wait out the check and be refused; with the shipped table it
// lists each registry once.
func TestCaseRegistriesNeedARoute(t *testing.T) {
	shipped, err := os.ReadFile("../../configs/routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := cases.NewRules(cases.DefaultConfig(), siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	table, err := routes.Parse("routes.yaml", shipped)
	if err != nil {
		t.Fatal(err)
	}
	names, err := caseRegistries(rules, table)
	if err != nil || strings.Join(names, " ") != "erdr courts aisoip" {
		t.Fatalf("caseRegistries = %v, %v; want erdr courts aisoip", names, err)
	}
	without := strings.Replace(string(shipped), "  erdr: {adapter: demo}", "", 1)
	if table, err = routes.Parse("routes.yaml", []byte(without)); err != nil {
		t.Fatal(err)
	}
	_, err = caseRegistries(rules, table)
	for _, w := range []string{"basis 1 is checked by case registry erdr, which has no route in routes.yaml", "add `erdr: {adapter: NAME}` under registries"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("caseRegistries = %v; want it to say %q", err, w)
		}
	}
}
