package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker/signing/devpki"
)

// app5Flags are the fields of App. 5 beside name, organisation and role, complete (§43).
var app5Flags = []string{"--erdr-code", "1975", "--department", "Следственное управление", "--position", "следователь",
	"--work-phone", "+7 7172 71-00-00", "--mobile-phone", "+7 701 000 0000", "--email", "testov@police.kz",
	"--work-address", "г. Астана, пр. Тәуелсіздік, 1"}

// TestApplicationsWorkflow: applications submitted for the operator's decision (§12–15) wait,
// with their deadline, until the operator approves one (it is then applied, once) or refuses one
// with a motivated refusal signed with an operator's EDS, which verifies as any XML-DSig document
// does; a refusal signed by someone without the operator right is refused; a block is applied as
// it is submitted; and an application past users.decision_deadline is shown overdue.
func TestApplicationsWorkflow(t *testing.T) {
	data := t.TempDir()
	m, err := devpki.Generate(filepath.Join(data, "pki"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var op, plain devpki.User
	for _, u := range m.Users {
		if u.Status != devpki.StatusValid || u.KeyType != "rsa" {
			continue
		}
		if op.IIN == "" {
			op = u
		} else if plain.IIN == "" {
			plain = u
		}
	}
	if op.IIN == "" || plain.IIN == "" {
		t.Fatal("the development PKI has not two valid RSA users")
	}
	conf := filepath.Join(data, "broker.yaml")
	if err := os.WriteFile(conf, []byte("data_dir: "+data+"\nusers:\n  decision_deadline: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append(append([]string{"users"}, args...), "--config", conf), &out, &errb)
		return code, out.String(), errb.String()
	}
	register := func(iin string, extra ...string) (int, string, string) {
		return run(append(append([]string{"register", "--iin", iin, "--name", "Тестов Тест", "--org", "ДП г. Астаны", "--role", "3",
			"--reason", "заявка", "--by", "оператор"}, app5Flags...), extra...)...)
	}
	for _, u := range []devpki.User{op, plain} {
		extra := []string{}
		if u.IIN == op.IIN {
			extra = append(extra, "--operator")
		}
		if code, out, errs := register(u.IIN, extra...); code != 0 {
			t.Fatalf("register %s = %d\n%s%s", u.IIN, code, out, errs)
		}
	}

	const applicant = "870315123455"
	code, out, errs := register(applicant, "--submit")
	if code != 0 || !strings.Contains(out, "application 1: register "+applicant+" submitted; the operator decides by") {
		t.Fatalf("submit = %d\n%s%s", code, out, errs)
	}
	if code, out, _ := run("show", "--iin", applicant); code == 0 {
		t.Fatalf("a submitted application was applied before its decision:\n%s", out)
	}
	if code, out, _ = run("pending"); code != 0 || !strings.Contains(out, "1 applications, 0 past their deadline") || !strings.Contains(out, applicant) {
		t.Fatalf("pending = %d\n%s", code, out)
	}
	if code, out, errs = run("approve", "1", "--by", "оператор Асқаров"); code != 0 || !strings.Contains(out, "application 1 approved") {
		t.Fatalf("approve = %d\n%s%s", code, out, errs)
	}
	if code, _, errs = run("approve", "1", "--by", "x"); code != 1 || !strings.Contains(errs, "decided already") {
		t.Errorf("a second approval = %d\n%s", code, errs)
	}
	if code, out, _ = run("show", "--iin", applicant); code != 0 || !strings.Contains(out, "active") {
		t.Errorf("the approved user:\n%s", out)
	}

	// A move, refused with a signed refusal.
	code, out, errs = run("move", "--iin", applicant, "--role", "4", "--reason", "перевод", "--by", "кадры", "--submit")
	if code != 0 || !strings.Contains(out, "application 2: move") {
		t.Fatalf("submit a move = %d\n%s%s", code, out, errs)
	}
	if code, _, errs = run("refuse", "2", "--reason", "нет приказа", "--user", plain.IIN, "--by", "x"); code != 1 || !strings.Contains(errs, "not an active user with the operator right") {
		t.Errorf("a refusal signed by a user without the operator right = %d\n%s", code, errs)
	}
	if code, _, errs = run("refuse", "2", "--user", op.IIN); code != 2 || !strings.Contains(errs, "--reason is required") {
		t.Errorf("a refusal without its motive = %d\n%s", code, errs)
	}
	refusal := filepath.Join(t.TempDir(), "refusal.xml")
	if code, out, errs = run("refuse", "2", "--reason", "нет приказа о переводе", "--user", op.IIN, "--by", "оператор", "--out", refusal); code != 0 ||
		!strings.Contains(out, "application 2 refused") {
		t.Fatalf("refuse = %d\n%s%s", code, out, errs)
	}
	var vout, verr bytes.Buffer
	if code := Main(context.Background(), []string{"verify", "--trusted-pem", filepath.Join(data, "pki", devpki.CAFile), refusal}, &vout, &verr); code != 0 ||
		!strings.Contains(vout.String(), op.IIN) {
		t.Errorf("siobroker verify of the refusal = %d\n%s%s", code, vout.String(), verr.String())
	}
	if b, _ := os.ReadFile(refusal); !strings.Contains(string(b), "нет приказа о переводе") || !strings.Contains(string(b), "<q:application>2</q:application>") {
		t.Errorf("refusal:\n%s", b)
	}
	if _, out, _ = run("show", "--iin", applicant); !regexp.MustCompile(`(?m)^role:\s+3$`).MatchString(out) {
		t.Errorf("a refused move changed the user's role:\n%s", out)
	}

	// A block is applied as it is submitted.
	if code, out, errs = run("block", "--iin", applicant, "--reason", "приказ об увольнении", "--by", "кадры", "--submit"); code != 0 ||
		!strings.Contains(out, "submitted and applied at once (§13)") {
		t.Fatalf("submit a block = %d\n%s%s", code, out, errs)
	}
	if code, out, _ = run("pending", "--all"); code != 0 || !strings.Contains(out, "3 applications") || !strings.Contains(out, "refused") ||
		!strings.Contains(out, "approved") {
		t.Errorf("pending --all = %d\n%s", code, out)
	}

	// Past the deadline.
	if err := os.WriteFile(conf, []byte("data_dir: "+data+"\nusers:\n  decision_deadline: 1ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs = register("880101300010", "--submit"); code != 0 {
		t.Fatalf("submit = %d\n%s%s", code, out, errs)
	}
	time.Sleep(5 * time.Millisecond) // the deadline is 1 ms: only "later than it" matters, not how much
	if code, out, _ = run("pending"); code != 0 || !strings.Contains(out, "OVERDUE") || !strings.Contains(out, "1 past their deadline") {
		t.Errorf("an application past its deadline:\n%s", out)
	}
}

// TestSignedApplicationCommands: users application-form writes the App. 5 document from the
// flags, the head of the organisation signs it (siobroker sign), users submit verifies it against
// the broker's trusted roots and keeps it with the signer, whom pending shows; an unsigned
// --submit is marked as the operator's own entry; an incomplete --submit is refused naming the
// fields (§43).
func TestSignedApplicationCommands(t *testing.T) {
	data := t.TempDir()
	pki := filepath.Join(data, "pki")
	m, err := devpki.Generate(pki, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var head devpki.User
	for _, u := range m.Users {
		if u.Status == devpki.StatusValid && u.KeyType == "rsa" {
			head = u
			break
		}
	}
	conf := filepath.Join(data, "broker.yaml")
	if err := os.WriteFile(conf, []byte("data_dir: "+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append(args, "--config", conf), &out, &errb)
		return code, out.String(), errb.String()
	}
	const applicant = "870315123455"
	form, signed := filepath.Join(data, "app5.xml"), filepath.Join(data, "app5-signed.xml")
	code, out, errs := run(append([]string{"users", "application-form", "register", "--iin", applicant, "--name", "Тестов Тест",
		"--org", "ДП г. Астаны", "--role", "3", "--reason", "назначение", "--out", form}, app5Flags...)...)
	if code != 0 {
		t.Fatalf("application-form = %d\n%s%s", code, out, errs)
	}
	var sout, serr bytes.Buffer
	if code := Main(context.Background(), []string{"sign", "--cert", filepath.Join(pki, head.Cert), "--key", filepath.Join(pki, head.Key),
		"--out", signed, form}, &sout, &serr); code != 0 {
		t.Fatalf("sign = %d\n%s%s", code, sout.String(), serr.String())
	}
	if code, out, errs = run("users", "submit", "--file", form, "--by", "портал"); code != 1 || !strings.Contains(errs, "signature") {
		t.Fatalf("the unsigned form submitted = %d\n%s%s", code, out, errs)
	}
	if code, out, errs = run("users", "submit", "--file", signed, "--by", "портал"); code != 0 ||
		!strings.Contains(out, "application 1: register "+applicant+" signed by "+head.IIN) {
		t.Fatalf("submit = %d\n%s%s", code, out, errs)
	}
	if code, out, errs = run("users", "register", "--iin", "900202400121", "--name", "Б", "--org", "О", "--role", "3",
		"--reason", "r", "--submit", "--by", "оператор"); code != 1 ||
		!strings.Contains(errs, "erdr_code: is required") || !strings.Contains(errs, "mobile_phone: is required") {
		t.Fatalf("an incomplete --submit = %d\n%s%s", code, out, errs)
	}
	const other = "900202400121"
	code, out, errs = run(append([]string{"users", "register", "--iin", other, "--name", "Б", "--org", "О", "--role", "3",
		"--reason", "r", "--submit", "--by", "оператор"}, app5Flags...)...)
	if code != 0 || !strings.Contains(out, "unsigned") {
		t.Fatalf("an operator's --submit = %d\n%s%s", code, out, errs)
	}
	if code, out, _ = run("users", "pending"); code != 0 || !regexp.MustCompile(`(?m)^1 .*`+head.IIN).MatchString(out) ||
		!regexp.MustCompile(`(?m)^2 .*unsigned`).MatchString(out) {
		t.Fatalf("pending = %d\n%s", code, out)
	}
	if code, out, errs = run("users", "approve", "1", "--by", "оператор"); code != 0 {
		t.Fatalf("approve = %d\n%s%s", code, out, errs)
	}
	if code, out, _ = run("users", "show", "--iin", applicant); code != 0 || !strings.Contains(out, "testov@police.kz") ||
		!strings.Contains(out, "+7 701 000 0000") {
		t.Fatalf("show = %d\n%s", code, out)
	}
}
