package rights_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker/access/rights"
)

// configText returns configs/rights.yaml with edit applied, failing if edit changed nothing:
// each case must break exactly what it says.
func configText(t *testing.T, edit func(string) string) []byte {
	t.Helper()
	data, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	out := edit(string(data))
	if out == string(data) {
		t.Fatal("the edit did not change the config")
	}
	return []byte(out)
}

func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

func replaceRe(pattern, repl string) func(string) string {
	re := regexp.MustCompile(pattern)
	return func(s string) string { return re.ReplaceAllLiteralString(s, repl) }
}

// dropService removes the block of one service.
func dropService(no string) func(string) string {
	re := regexp.MustCompile(`(?m)^  - no: ` + no + `\n(    .*\n)*`)
	return func(s string) string { return re.ReplaceAllString(s, "") }
}

func TestParseErrors(t *testing.T) {
	const source = "broken.yaml"
	cases := []struct {
		name string
		edit func(string) string
		want []string // each must appear in the error
	}{
		{"unknown key", replace("  - no: 5\n    name:", "  - no: 5\n    colour: red\n    name:"), []string{source, "colour", "not found"}},
		{"unknown top-level key", func(s string) string { return s + "extra: 1\n" }, []string{source, "extra"}},
		{"bad access value", replace("{1: economic-articles-only}", "{1: partial}"), []string{source, "service 37", `"partial"`}},
		{"empty access value", replace("{1: economic-articles-only}", `{1: ""}`), []string{source, "service 37", "access"}},
		{"missing service", dropService("93"), []string{source, "service 93: missing"}},
		{"missing role", replace("  - no: 19\n", "  - no: 18\n"), []string{source, "role 18: listed twice", "role 19: missing"}},
		{"service out of range", replace("  - no: 93\n", "  - no: 94\n"), []string{source, "number 94", "service 93: missing"}},
		{"basis out of range", replace("bases: [5]", "bases: [7]"), []string{source, "role 15", "basis 7"}},
		{"access basis out of range", replace("{1: full, 6: full}\n  - no: 86", "{1: full, 0: full}\n  - no: 86"), []string{source, "service 85", "basis 0"}},
		{"economic article cell outside basis 1", replace("{1: economic-articles-only}", "{2: economic-articles-only}"), []string{source, "service 37", "basis 2"}},
		{"duplicate map key", replace("{1: economic-articles-only}", "{1: economic-articles-only, 1: full}"), []string{source, "already defined"}},
		{"bad article", replace(`"216",`, `"216a",`), []string{source, "economic_articles", `"216a"`}},
		{"duplicate article", replace(`"216",`, `"215",`), []string{source, `"215" listed twice`}},
		{"truncated cell without fields", replace("  11: [amount]\n", ""), []string{source, "service 11", "no truncation fields"}},
		{"truncation of a full service", replace("  11: [amount]\n", "  11: [amount]\n  12: [amount]\n"), []string{source, "truncation of service 12"}},
		{"no economic articles", replaceRe(`(?s)economic_articles: \[.*\]`, "economic_articles: []"), []string{source, "economic_articles: empty"}},
		{"role without name", replace("name: 'Прокурор'", "name: ''"), []string{source, "role 1: no name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := rights.Parse(configText(t, c.edit), source)
			if err == nil {
				t.Fatal("Parse accepted the broken file")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseEdges(t *testing.T) {
	if _, err := rights.Parse(nil, "empty.yaml"); err == nil || !strings.Contains(err.Error(), "empty.yaml") {
		t.Errorf("empty file: %v", err)
	}
	two := configText(t, func(s string) string { return s + "---\nroles: []\n" })
	if _, err := rights.Parse(two, "two.yaml"); err == nil || !strings.Contains(err.Error(), "more than one") {
		t.Errorf("two documents: %v", err)
	}
	// A role with no basis stays expressible (Appendix 1 had one in its 2024 wording).
	none := configText(t, replace("bases: [5]", "bases: []"))
	tab, err := rights.Parse(none, "none.yaml")
	if err != nil {
		t.Fatalf("role without bases: %v", err)
	}
	if r, _ := tab.Role(15); len(r.Bases) != 0 {
		t.Errorf("role 15 bases %v", r.Bases)
	}
	missing := configText(t, replace("    bases: [5]\n", ""))
	if _, err := rights.Parse(missing, "m.yaml"); err == nil || !strings.Contains(err.Error(), "role 15: no bases") {
		t.Errorf("role without bases key: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := rights.Load(path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(absent) = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "rights.yaml")
	if err := os.WriteFile(bad, configText(t, dropService("93")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := rights.Load(bad); err == nil || !strings.Contains(err.Error(), bad+": service 93: missing") {
		t.Errorf("Load(bad) = %v", err)
	}
}
