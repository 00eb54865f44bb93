package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shippedConfigCopy writes the shipped broker, routes, rights and maintenance files to a
// temporary directory, the broker file naming the copies, after edit has changed them by name.
func shippedConfigCopy(t *testing.T, edit func(name, text string) string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"broker.yaml", "routes.yaml", "rights.yaml", "maintenance.yaml", "emergencies.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../configs", name))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if name == "broker.yaml" {
			for _, n := range []string{"routes", "rights", "maintenance", "emergencies"} {
				old := "_file: configs/" + n + ".yaml"
				if !strings.Contains(text, old) {
					t.Fatalf("configs/broker.yaml no longer names configs/%s.yaml", n)
				}
				text = strings.Replace(text, old, "_file: "+filepath.Join(dir, n+".yaml"), 1)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(edit(name, text)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "broker.yaml")
}

func runConfig(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"config"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestConfigCheckCommand(t *testing.T) {
	unchanged := func(_, text string) string { return text }
	broker := shippedConfigCopy(t, unchanged)
	code, out, errs := runConfig("check", broker)
	if code != 0 || !strings.HasSuffix(out, "(emergencies): 0 errors, 0 warnings\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("shipped configuration: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errs)
	}

	// A route to a queue nobody declared is an error at its line, with its fix; exit 1.
	broken := shippedConfigCopy(t, func(name, text string) string {
		if name == "routes.yaml" {
			return strings.Replace(text, "  5: {queue: sio.service.005,", "  5: {queue: sio.vehicles,", 1)
		}
		return text
	})
	routes := filepath.Join(filepath.Dir(broken), "routes.yaml")
	routesText, _ := os.ReadFile(routes)
	line := 1 + strings.Count(string(routesText[:bytes.Index(routesText, []byte("sio.vehicles"))]), "\n")
	code, out, _ = runConfig("check", broken)
	wantLine := fmt.Sprintf(`%s:%d: error: service 5 is routed to queue "sio.vehicles", which is not declared (fix: use sio.service.005 or add "sio.vehicles" to queues)`, routes, line)
	if code != 1 || !strings.Contains(out, wantLine+"\n") || !strings.HasSuffix(out, ": 1 error, 0 warnings\n") {
		t.Errorf("undeclared queue: exit %d, want 1 and\n%s\ngot:\n%s", code, wantLine, out)
	}

	// Warnings alone exit 0: a configured maintenance window that is over.
	stale := shippedConfigCopy(t, func(name, text string) string {
		if name == "maintenance.yaml" {
			return strings.Replace(text, "windows: []", "windows:\n  - {start: 2020-01-01T00:00:00+05:00, end: 2020-01-02T00:00:00+05:00, reason: old, announced_at: 2019-12-01T00:00:00+05:00}", 1)
		}
		return text
	})
	code, out, _ = runConfig("check", stale)
	if code != 0 || !strings.Contains(out, "maintenance.yaml:") || !strings.Contains(out, ": warning: window 1 ended at 2020-01-02T00:00:00+05:00") || !strings.HasSuffix(out, "0 errors, 1 warning\n") {
		t.Errorf("a warning only: exit %d\n%s", code, out)
	}

	// A window that starts before it was announced is refused at its line unless it is an
	// emergency (§36, 42; §39–41).
	late := shippedConfigCopy(t, func(name, text string) string {
		if name == "maintenance.yaml" {
			return strings.Replace(text, "windows: []", "windows:\n  - {start: 2020-01-01T00:00:00+05:00, end: 2099-01-02T00:00:00+05:00, reason: outage, announced_at: 2020-01-01T01:00:00+05:00}", 1)
		}
		return text
	})
	code, out, _ = runConfig("check", late)
	wantAt := fmt.Sprintf("maintenance.yaml:%d: error: window 1: not announced in advance: the window starts at 2020-01-01T00:00:00+05:00, before it is announced",
		shippedLine(t, "configs/maintenance.yaml", "windows: []")+1) // the window is on the line after "windows:"
	if code != 1 || !strings.Contains(out, wantAt) ||
		!strings.Contains(out, "set emergency: true") {
		t.Errorf("a window begun before its announcement: exit %d\n%s", code, out)
	}

	// --json carries the same findings.
	code, out, _ = runConfig("check", "--json", broken)
	var report struct {
		Files    []struct{ Path, Kind string }
		Findings []struct {
			File, Severity, Message, Fix string
			Line                         int
		}
		Errors, Warnings int
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || code != 1 || report.Errors != 1 || len(report.Files) != 5 ||
		len(report.Findings) != 1 || report.Findings[0].Line != line || report.Findings[0].File != routes || report.Findings[0].Fix == "" {
		t.Errorf("--json: exit %d, %v, %+v", code, err, report)
	}

	// --kind is used for files whose keys do not tell.
	odd := filepath.Join(t.TempDir(), "odd.yaml")
	if err := os.WriteFile(odd, []byte("windows: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ = runConfig("check", "--kind", "routes", odd); code != 1 || !strings.Contains(out, "unknown key windows") {
		t.Errorf("--kind routes on a maintenance file: exit %d\n%s", code, out)
	}
	if code, out, _ = runConfig("check", odd); code != 0 || !strings.Contains(out, "(maintenance): 0 errors") {
		t.Errorf("a maintenance file: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{{}, {"verify"}, {"check", "--kind", "brokr", odd}, {"check", "--kind", "routes"}, {"check", "--bogus"}} {
		if code, _, _ := runConfig(args...); code != 2 {
			t.Errorf("config %v: exit %d, want 2 (usage)", args, code)
		}
	}
}

// shippedLine is the line of the shipped file path (from the repository's root) that starts with
// prefix: where an edit of it puts what it writes there.
func shippedLine(t *testing.T, path, prefix string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line starting %q", path, prefix)
	return 0
}
