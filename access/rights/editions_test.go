package rights_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker/access/rights"
)

const mappingPath = "../../configs/roles-2024-2026.yaml"

// TestShippedRoleMapping: the mapping of the 2024 rows to the 2026 ones maps every 2024 row by
// the role it names, onto a row of configs/rights.yaml of the same name, and leaves the three roles
// the 2026 wording dropped to the operator.
func TestShippedRoleMapping(t *testing.T) {
	m, err := rights.LoadRoleMapping(mappingPath)
	if err != nil {
		t.Fatal(err)
	}
	tab := loadConfig(t)
	if m.From != "2024" || m.To != tab.Edition() || m.FromRows != 21 {
		t.Fatalf("mapping %s -> %s of %d rows; the rights are of %s", m.From, m.To, m.FromRows, tab.Edition())
	}
	var undecided []int
	for _, r := range m.Rows() {
		if r.Undecided() {
			undecided = append(undecided, r.From)
			continue
		}
		role, ok := tab.Role(r.To)
		if !ok || role.Name != r.ToName {
			t.Errorf("row %d -> %d: to_name %q, configs/rights.yaml names it %q", r.From, r.To, r.ToName, role.Name)
		}
	}
	if len(undecided) != 3 || undecided[0] != 5 || undecided[1] != 10 || undecided[2] != 20 {
		t.Errorf("rows left to the operator: %v, want [5 10 20]", undecided)
	}
	// The case of the issue: the 2024 row 19 is the criminal police, the 2026 row 18.
	if r, _ := m.Row(19); r.To != 18 {
		t.Errorf("2024 row 19 -> %d, want 18", r.To)
	}
}

func TestRoleMappingRefusesGaps(t *testing.T) {
	text, err := os.ReadFile(mappingPath)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(text), "  - {from: 2, from_name: 'Судья', to: 2, to_name: 'Судья'}\n", "", 1)
	bad = strings.Replace(bad, "    decision: 'the 2026 wording has no HR officer (the 2024 row had no basis either): the operator decides'\n", "", 1)
	path := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = rights.LoadRoleMapping(path)
	for _, want := range []string{"row 2: missing", "row 20: no target and no decision"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestRightsEditionRequired(t *testing.T) {
	if tab := loadConfig(t); tab.Edition() != "2026" || tab.EditionDate().Format("2006-01-02") != "2026-02-23" {
		t.Fatalf("edition %s of %s", tab.Edition(), tab.EditionDate())
	}
	_, err := rights.Parse(configText(t, func(s string) string { return strings.Replace(s, "edition: '2026'\n", "", 1) }), "x.yaml")
	if err == nil || !strings.Contains(err.Error(), "edition: \"\" is not the year") {
		t.Fatalf("without an edition: %v", err)
	}
}
