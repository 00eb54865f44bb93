package rights_test

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/rights"
)

const (
	configPath = "../../configs/rights.yaml"
	app1Path   = "../../testdata/rights/app1.tsv"
	app2Path   = "../../testdata/rights/app2.tsv"
)

func loadConfig(t *testing.T) *rights.Table {
	t.Helper()
	tab, err := rights.Load(configPath)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tab
}

// readGrid reads a fixture: comment lines start with "#", the header starts with "no", and each
// row is a number and six cells.
func readGrid(t *testing.T, path string) map[int][6]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[int][6]string{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") || strings.HasPrefix(text, "no\t") {
			continue
		}
		fields := strings.Split(text, "\t")
		if len(fields) != 7 {
			t.Fatalf("%s:%d: %d fields, want 7", path, line, len(fields))
		}
		no, err := strconv.Atoi(fields[0])
		if err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		if _, dup := rows[no]; dup {
			t.Fatalf("%s:%d: row %d twice", path, line, no)
		}
		var cells [6]string
		copy(cells[:], fields[1:])
		rows[no] = cells
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestAppendix1MatchesFixture compares every cell of Appendix 1 in the config with the separate
// transcription in testdata/rights/app1.tsv.
func TestAppendix1MatchesFixture(t *testing.T) {
	tab := loadConfig(t)
	grid := readGrid(t, app1Path)
	if len(grid) != rights.NumRoles {
		t.Fatalf("fixture has %d roles, want %d", len(grid), rights.NumRoles)
	}
	for no := 1; no <= rights.NumRoles; no++ {
		cells, ok := grid[no]
		if !ok {
			t.Errorf("fixture lacks role %d", no)
			continue
		}
		for i, want := range cells {
			b := siobroker.Basis(i + 1)
			got := "-"
			if tab.RoleMayUse(no, b) {
				got = "+"
			}
			if got != want {
				t.Errorf("role %d, basis %d: config %q, fixture %q", no, b, got, want)
			}
		}
	}
}

// TestAppendix2MatchesFixture compares every cell of Appendix 2 in the config with the separate
// transcription in testdata/rights/app2.tsv.
func TestAppendix2MatchesFixture(t *testing.T) {
	tab := loadConfig(t)
	grid := readGrid(t, app2Path)
	if len(grid) != rights.NumServices {
		t.Fatalf("fixture has %d services, want %d", len(grid), rights.NumServices)
	}
	code := map[siobroker.Access]string{
		siobroker.AccessNone:             "-",
		siobroker.AccessFull:             "+",
		siobroker.AccessTruncated:        "T",
		siobroker.AccessEconomicArticles: "E",
	}
	for no := 1; no <= rights.NumServices; no++ {
		cells, ok := grid[no]
		if !ok {
			t.Errorf("fixture lacks service %d", no)
			continue
		}
		s, ok := tab.Service(no)
		if !ok {
			t.Errorf("config lacks service %d", no)
			continue
		}
		for i, want := range cells {
			b := siobroker.Basis(i + 1)
			if got := code[s.Access[b]]; got != want {
				t.Errorf("service %d, basis %d: config %q (%s), fixture %q", no, b, got, s.Access[b], want)
			}
		}
	}
}
