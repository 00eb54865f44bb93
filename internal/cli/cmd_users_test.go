package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/sqlite"
)

// runUsers runs "siobroker users ARGS" and returns its exit code, stdout and stderr.
func runUsers(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"users"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsersCommand(t *testing.T) {
	data := t.TempDir()
	csvFile := filepath.Join("..", "..", "testdata", "users", "users.csv")
	yamlFile := filepath.Join("..", "..", "testdata", "users", "users.yaml")

	code, out, errs := runUsers(t, "import", csvFile, "--data", data, "--by", "оператор", "--reason", "письмо № 12 от 01.03.2026")
	if code != 0 {
		t.Fatalf("import = %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "3 registered, 0 moved, 0 unchanged, 0 failed") || !strings.Contains(out, "registered 850101305125") {
		t.Fatalf("import output:\n%s", out)
	}
	// Importing the same file again changes nothing.
	code, out, _ = runUsers(t, "import", "--data", data, "--by", "оператор", "--reason", "again", csvFile)
	if code != 0 || !strings.Contains(out, "0 registered, 0 moved, 3 unchanged, 0 failed") {
		t.Fatalf("re-import = %d\n%s", code, out)
	}
	if code, out, errs = runUsers(t, "import", yamlFile, "--data", data, "--reason", "r"); code != 0 || !strings.Contains(out, "2 registered") {
		t.Fatalf("YAML import = %d\n%s%s", code, out, errs)
	}
	// A file with bad rows is not applied; the errors name the lines.
	code, _, errs = runUsers(t, "import", filepath.Join("..", "..", "testdata", "users", "bad.csv"), "--data", data, "--reason", "r")
	if code != 1 || !strings.Contains(errs, "nothing applied") || !strings.Contains(errs, "line 4: full_name is required") {
		t.Fatalf("bad import = %d\n%s", code, errs)
	}

	// Block, then show the history.
	if code, _, errs = runUsers(t, "block", "--data", data, "--iin", "850101305125"); code != 2 || !strings.Contains(errs, "--reason is required") {
		t.Fatalf("block without a reason = %d\n%s", code, errs)
	}
	code, out, errs = runUsers(t, "block", "--data", data, "--iin", "850101305125", "--by", "оператор", "--reason", "§45: нарушение Единых требований")
	if code != 0 || !strings.Contains(out, "is now blocked") {
		t.Fatalf("block = %d\n%s%s", code, out, errs)
	}
	if code, _, errs = runUsers(t, "block", "--data", data, "--iin", "850101305125", "--reason", "again"); code != 1 || !strings.Contains(errs, "not active") {
		t.Fatalf("second block = %d\n%s", code, errs)
	}
	code, out, errs = runUsers(t, "show", "--data", data, "--iin", "850101305125")
	if code != 0 {
		t.Fatalf("show = %d\n%s", code, errs)
	}
	for _, want := range []string{"КАСЫМОВ АРМАН", "status:", "blocked", "applications (2):", "register", "письмо № 12 от 01.03.2026",
		"block", "§45: нарушение Единых требований", "оператор", "consent:", "2026-01-15T10:00:00.000+05:00"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}

	// Register and move by hand.
	newIIN, _ := siobroker.CompleteIIN("75031230045")
	// §43: not on an incomplete form; §17: the consent is the signed App. 6, never a typed date.
	code, _, errs = runUsers(t, "register", "--data", data, "--iin", newIIN, "--name", "ИВАНОВ ИВАН", "--org", "Прокуратура",
		"--role", "1", "--reason", "заявка № 7")
	if code != 1 || !strings.Contains(errs, "erdr_code: is required") || !strings.Contains(errs, "email: is required") {
		t.Fatalf("an incomplete register = %d\n%s", code, errs)
	}
	code, _, errs = runUsers(t, append([]string{"register", "--data", data, "--iin", newIIN, "--name", "ИВАНОВ ИВАН", "--org", "Прокуратура",
		"--role", "1", "--reports", "--consent-at", "now", "--reason", "заявка № 7"}, app5Flags...)...)
	if code != 2 || !strings.Contains(errs, "users consent") {
		t.Fatalf("register --consent-at = %d\n%s", code, errs)
	}
	code, out, errs = runUsers(t, append([]string{"register", "--data", data, "--iin", newIIN, "--name", "ИВАНОВ ИВАН", "--org", "Прокуратура",
		"--role", "1", "--reports", "--reason", "заявка № 7"}, app5Flags...)...)
	if code != 0 {
		t.Fatalf("register = %d\n%s%s", code, out, errs)
	}
	if code, _, errs = runUsers(t, "register", "--data", data, "--iin", newIIN, "--name", "X", "--org", "Y", "--role", "1", "--reason", "r"); code != 1 {
		t.Fatalf("second register = %d\n%s", code, errs)
	}
	if code, _, _ = runUsers(t, "register", "--data", data, "--iin", newIIN, "--name", "X", "--reason", "r"); code != 2 {
		t.Fatalf("register without --org = %d, want 2", code)
	}
	code, _, errs = runUsers(t, "move", "--data", data, "--iin", newIIN, "--position", "старший прокурор", "--reason", "приказ № 3")
	if code != 0 {
		t.Fatalf("move = %d\n%s", code, errs)
	}
	db, err := sqlite.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	u, _, _ := db.User(context.Background(), newIIN)
	db.Close()
	if u.Position != "старший прокурор" || u.FullName != "ИВАНОВ ИВАН" || !u.ReportsRight || !u.ConsentAt.IsZero() || u.Role != 1 || u.OperatorRight {
		t.Fatalf("moved user = %+v", u)
	}
	// The operator right is granted and withdrawn by a move, and shown.
	if code, _, errs = runUsers(t, "move", "--data", data, "--iin", newIIN, "--operator", "--reason", "приказ № 4"); code != 0 {
		t.Fatalf("move --operator = %d\n%s", code, errs)
	}
	if code, out, _ = runUsers(t, "show", "--data", data, "--iin", newIIN); code != 0 || !strings.Contains(out, "operator right:  yes") {
		t.Fatalf("show after --operator = %d\n%s", code, out)
	}
	if code, _, errs = runUsers(t, "move", "--data", data, "--iin", newIIN, "--operator=false", "--reason", "приказ № 5"); code != 0 {
		t.Fatalf("move --operator=false = %d\n%s", code, errs)
	}
	if code, out, _ = runUsers(t, "show", "--data", data, "--iin", newIIN); !strings.Contains(out, "operator right:  no") || !strings.Contains(out, "reports right:   yes") {
		t.Fatalf("show after --operator=false = %d\n%s", code, out)
	}

	code, out, _ = runUsers(t, "list", "--data", data)
	if code != 0 || !strings.Contains(out, "6 users") || !strings.Contains(out, "850101305125  blocked") || !strings.Contains(out, "OPERATOR") {
		t.Fatalf("list = %d\n%s", code, out)
	}
	code, out, _ = runUsers(t, "applications", "--data", data, "--iin", newIIN)
	if code != 0 || !strings.Contains(out, "4 applications") || !strings.Contains(out, "приказ № 3") {
		t.Fatalf("applications = %d\n%s", code, out)
	}
	if code, out, _ = runUsers(t, "applications", "--data", data); code != 0 || !strings.Contains(out, "10 applications") {
		t.Fatalf("all applications = %d\n%s", code, out)
	}

	for _, args := range [][]string{{}, {"frobnicate"}, {"show", "--data", data}, {"list", "extra", "--data", data}} {
		if code, _, _ := runUsers(t, args...); code != 2 {
			t.Errorf("users %q = %d, want 2", args, code)
		}
	}
}
