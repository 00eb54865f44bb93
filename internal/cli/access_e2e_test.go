package cli

// End-to-end tests of the access rules, through `siobroker send` and `siobroker users`: the role
// and the basis (App. 1), each service under the basis (App. 2), the case rules and the case
// verification (§5, §20–27, the §23 exemption), and the user registry (§13, §45).

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/rights"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// runMain runs the siobroker command line with args and returns its exit code and output.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// rightsTable loads the tables the test brokers use (testConfig sets the same file).
func rightsTable(t *testing.T) *rights.Table {
	t.Helper()
	table, err := rights.Load("../../configs/rights.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// wantSendFault checks that a send exited with a fault of code whose message contains each of msg.
func wantSendFault(t *testing.T, code int, stdout, stderr string, want siobroker.Code, msg ...string) {
	t.Helper()
	if code != sendExitFault {
		t.Fatalf("send exited %d, want %d (fault %s)\nstdout:\n%s\nstderr:\n%s", code, sendExitFault, want, stdout, stderr)
	}
	re := regexp.MustCompile(`(?m)^fault ` + regexp.QuoteMeta(string(want)) + `: \S.*$`)
	line := re.FindString(stdout)
	if line == "" {
		t.Fatalf("stdout does not say \"fault %s: message\":\n%s", want, stdout)
	}
	for _, m := range msg {
		if !strings.Contains(line, m) {
			t.Errorf("fault message lacks %q:\n%s", m, line)
		}
	}
}

// wantSendOK checks that a send was answered with SCSS001.
func wantSendOK(t *testing.T, code int, stdout, stderr string) {
	t.Helper()
	if code != sendExitOK || !strings.Contains(stdout, "status SCSS001") {
		t.Fatalf("send exited %d, want %d with status SCSS001\nstdout:\n%s\nstderr:\n%s", code, sendExitOK, stdout, stderr)
	}
}

// TestAccessDecisionsByRole: every valid demo user (roles 1, 2 and 5) sends one mixed request under
// each of its demo cases, so under every basis its role may use, and each service's status in the
// signed reply is the decision of Appendix 2 (rights.Table.DecideService) on the case's articles
// from the demo registry. Criminal cases are sent with and without article 216 named, for the КГД
// service 37: allowed where the case's qualification holds a Chapter 8 article that the named one,
// if any, matches.
func TestAccessDecisionsByRole(t *testing.T) {
	e := sharedBroker(t)
	table := rightsTable(t)
	services := []int{1, 11, 37, 58, 93}
	serviceList := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(services)), ","), "[]")
	truncated := table.TruncatedFields(11)
	if len(truncated) == 0 {
		t.Fatal("rights.yaml truncates no field of service 11")
	}

	roles := map[int]bool{}
	for _, u := range e.manifest.Users {
		if u.Status != devpki.StatusValid {
			continue
		}
		roles[u.Role] = true
		for b := siobroker.FirstBasis; b <= siobroker.LastBasis; b++ {
			if _, ok := firstCase(u, b); table.RoleMayUse(u.Role, b) && !ok {
				t.Errorf("demo user %s (role %d) has no case under basis %d, which the role may use", u.IIN, u.Role, int(b))
			}
		}
		for i, c := range u.Cases {
			if c.Status == "closed" {
				continue // refused as a whole (§5): TestClosedCaseRefused
			}
			if !table.RoleMayUse(u.Role, c.Basis) {
				t.Errorf("demo user %s (role %d) has case %s under basis %d, which the role may not use", u.IIN, u.Role, c.Number, int(c.Basis))
				continue
			}
			articles := []string{""}
			if c.Basis == siobroker.BasisCriminal {
				articles = append(articles, "216")
			}
			for _, article := range articles {
				name := fmt.Sprintf("role %d/basis %d/case %d/article %q", u.Role, int(c.Basis), i+1, article)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					replyFile := filepath.Join(t.TempDir(), "reply.xml")
					code, stdout, stderr := runSend(t, e.sendArgs(u, append(caseFlags(c), "--article", article,
						"--services", serviceList, "--save-reply", replyFile)...)...)
					wantSendOK(t, code, stdout, stderr)
					reply, err := os.ReadFile(replyFile)
					if err != nil {
						t.Fatal(err)
					}
					_, _, res := verifiedReply(t, reply, filepath.Join(e.pki, devpki.CAFile))
					if res.SignerIIN != u.IIN || res.Basis != c.Basis {
						t.Errorf("reply for signer %s basis %d, want %s basis %d", res.SignerIIN, int(res.Basis), u.IIN, int(c.Basis))
					}
					if len(res.Services) != len(services) {
						t.Fatalf("got %d services, want %d", len(res.Services), len(services))
					}
					for i, no := range services {
						r := res.Services[i]
						if r.Service != no {
							t.Errorf("service #%d is %d, want %d", i, r.Service, no)
							continue
						}
						// Footnote 2 follows the case's articles, which the demo registry
						// answers from demo.json; the typed article is a hint.
						d := table.DecideService(c.Basis, no, siobroker.Qualification{Articles: c.Articles, Hint: article})
						switch {
						case d.Allowed && r.Status != siobroker.StatusOK:
							t.Errorf("service %d: %s %s (%s), want ok: %s", no, r.Status, r.Reason, r.Message, d.Explanation)
						case !d.Allowed && (r.Status != siobroker.StatusDenied || r.Reason != d.Reason):
							t.Errorf("service %d: %s %s (%s), want denied %s: %s", no, r.Status, r.Reason, r.Message, d.Reason, d.Explanation)
						}
						if r.Status == siobroker.StatusDenied && len(r.Records) != 0 {
							t.Errorf("denied service %d carries %d records", no, len(r.Records))
						}
						if d.Access == siobroker.AccessTruncated {
							for _, f := range truncated {
								if hasField(r, f) {
									t.Errorf("service %d is truncated under basis %d but carries %s", no, int(c.Basis), f)
								}
							}
						}
						if wantLine := fmt.Sprintf("\nservice %d: %s %s", no, r.Status, r.Reason); !strings.Contains(stdout, wantLine) {
							t.Errorf("stdout lacks %q:\n%s", wantLine, stdout)
						}
					}
				})
			}
		}
	}
	if len(roles) < 3 {
		t.Errorf("valid demo users of %d roles, want at least 3", len(roles))
	}
}

// TestRoleBasisRefused: a user whose role may not use a basis (Appendix 1) is refused the whole
// request with SIO-ROLE-BASIS, even under a well-formed case of that basis that is in the registry.
func TestRoleBasisRefused(t *testing.T) {
	e := sharedBroker(t)
	table := rightsTable(t)
	pairs := 0
	for _, u := range e.manifest.Users {
		if u.Status != devpki.StatusValid {
			continue
		}
		for b := siobroker.FirstBasis; b <= siobroker.LastBasis; b++ {
			if table.RoleMayUse(u.Role, b) {
				continue
			}
			// Someone else's case under the basis: well-formed and known, so only the role refuses.
			_, c := e.caseUser(t, b)
			pairs++
			t.Run(fmt.Sprintf("role %d/basis %d", u.Role, int(b)), func(t *testing.T) {
				t.Parallel()
				code, stdout, stderr := runSend(t, e.sendArgs(u, caseFlags(c)...)...)
				wantSendFault(t, code, stdout, stderr, siobroker.CodeRoleBasis,
					fmt.Sprintf("role %d", u.Role), u.IIN, fmt.Sprintf("basis %d", int(b)))
			})
		}
	}
	if pairs == 0 {
		t.Fatal("every valid demo user's role may use every basis: no refusal to test")
	}
}

// TestCaseChecks: the case rules and the verification of §5 through send.
func TestCaseChecks(t *testing.T) {
	e := sharedBroker(t)
	table := rightsTable(t)
	prosecutor := findUserByRole(t, e.manifest, 1)

	// A case of another valid user, under a basis the prosecutor may use, that is not his.
	var other devpki.User
	var othersCase devpki.Case
	for _, u := range e.manifest.Users {
		if u.IIN == prosecutor.IIN || u.Status != devpki.StatusValid || other.IIN != "" {
			continue
		}
		for _, c := range u.Cases {
			if c.Basis != siobroker.BasisAdminOffence && table.RoleMayUse(prosecutor.Role, c.Basis) &&
				!slices.ContainsFunc(prosecutor.Cases, func(p devpki.Case) bool { return p.Basis == c.Basis && p.Ref() == c.Ref() }) {
				other, othersCase = u, c
				break
			}
		}
	}
	if other.IIN == "" {
		t.Fatal("no other valid demo user has a verified case the prosecutor could name")
	}

	// A valid user whose role may use basis 3, preferably not the prosecutor (who may use all).
	var b3 devpki.User
	for _, u := range e.manifest.Users {
		if u.Status == devpki.StatusValid && table.RoleMayUse(u.Role, siobroker.BasisAdminOffence) && u.Role != 1 {
			b3 = u
			break
		}
	}
	if b3.IIN == "" {
		b3 = prosecutor
	}
	// A well-formed administrative-offence number that no demo user has.
	const unregisteredAdminOffence = "2671000410099999"
	for _, u := range e.manifest.Users {
		for _, c := range u.Cases {
			if c.Number == unregisteredAdminOffence {
				t.Fatalf("%s is a demo case of %s", unregisteredAdminOffence, u.IIN)
			}
		}
	}

	// The prosecutor's terminated case: he is in it, in the part of a supervising prosecutor.
	var closed devpki.Case
	for _, c := range prosecutor.Cases {
		if c.Status == "closed" {
			closed = c
		}
	}
	if closed.Number == "" {
		t.Fatal("the demo prosecutor has no closed case")
	}

	for _, tc := range []struct {
		name string
		args func(t *testing.T) []string
		code siobroker.Code // "" for an accepted request
		msg  []string
	}{
		{"a closed case of his (§5: not in proceedings)", func(t *testing.T) []string {
			return e.sendArgs(prosecutor, caseFlags(closed)...)
		}, siobroker.CodeCaseUnknown, []string{closed.Number, `is "closed"`, "cases.open_statuses"}},
		{"unknown case", func(t *testing.T) []string {
			return e.sendArgs(prosecutor, "--case", "269999999999999")
		}, siobroker.CodeCaseUnknown, []string{"269999999999999", "not among the proceedings"}},
		{"another user's case", func(t *testing.T) []string {
			return e.sendArgs(prosecutor, caseFlags(othersCase)...)
		}, siobroker.CodeCaseUnknown, []string{othersCase.Number, "not among the proceedings", prosecutor.IIN}},
		{"the owner of that case", func(t *testing.T) []string {
			return e.sendArgs(other, caseFlags(othersCase)...)
		}, "", nil},
		{"malformed ЕРДР number", func(t *testing.T) []string {
			return e.sendArgs(prosecutor, "--case", "26-1500031")
		}, siobroker.CodeCaseInvalid, []string{"query/case/number", "26-1500031"}},
		{"a field the basis does not use", func(t *testing.T) []string {
			return e.sendArgs(prosecutor, "--year", "2025")
		}, siobroker.CodeCaseInvalid, []string{"year"}},
		{"court case without its year", func(t *testing.T) []string {
			return e.sendArgs(prosecutor, append(caseFlags(userCase(t, prosecutor, siobroker.BasisCourtCivil)), "--year", "")...)
		}, siobroker.CodeCaseInvalid, []string{"year"}},
		{"basis 3 exempt", func(t *testing.T) []string {
			return e.sendArgs(b3, "--basis", "3", "--case", unregisteredAdminOffence)
		}, "", nil},
		{"basis 3 malformed", func(t *testing.T) []string {
			return e.sendArgs(b3, "--basis", "3", "--case", "АП-12")
		}, siobroker.CodeCaseInvalid, []string{"query/case/number"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runSend(t, tc.args(t)...)
			if tc.code == "" {
				wantSendOK(t, code, stdout, stderr)
				if !strings.Contains(stdout, "\nservice 1: ok ") {
					t.Errorf("service 1 not answered:\n%s", stdout)
				}
				return
			}
			wantSendFault(t, code, stdout, stderr, tc.code, tc.msg...)
		})
	}
}

// TestFootnote2FollowsTheCase: the КГД services (App. 2 fn. 2) follow the qualification the case
// registry gives the case (§5), not the article the user types: allowed under a case qualified
// under Chapter 8 with no article named, and refused for an article that is not the case's, even
// one of Chapter 8, or that is the case's but not of Chapter 8.
func TestFootnote2FollowsTheCase(t *testing.T) {
	e := sharedBroker(t)
	prosecutor := findUserByRole(t, e.manifest, 1)
	byNumber := map[string]devpki.Case{}
	for _, c := range prosecutor.Cases {
		byNumber[c.Number] = c
	}
	fraud, tax := byNumber["261500031000123"], byNumber["251500031000456"] // 190 and 216; 245
	if !slices.Equal(fraud.Articles, []string{"190", "216"}) || !slices.Equal(tax.Articles, []string{"245"}) {
		t.Fatalf("the demo prosecutor's cases changed: %+v %+v", fraud, tax)
	}
	for _, tc := range []struct {
		name    string
		c       devpki.Case
		article string
		want    string
	}{
		{"no article named: the case's 216 is of Chapter 8", fraud, "", "service 37: ok"},
		{"the case's 216 named", fraud, "216", "service 37: ok"},
		{"the case's 190 named, not of Chapter 8", fraud, "190", "service 37: denied DENIED_ARTICLE"},
		{"216 named, not the case's", tax, "216", "service 37: denied DENIED_ARTICLE"},
		{"the case's 245 (instruction form)", tax, "", "service 37: ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runSend(t, e.sendArgs(prosecutor, append(caseFlags(tc.c), "--article", tc.article, "--services", "1,37")...)...)
			wantSendOK(t, code, stdout, stderr)
			if !strings.Contains(stdout, "\n"+tc.want) {
				t.Errorf("want %q:\n%s", tc.want, stdout)
			}
		})
	}
}

// TestUserBlockViaCLI: `siobroker users block` on the data directory of a running broker takes
// effect on the user's very next request (§13, §45: nothing is cached), `users unblock` lets the
// user in again, and `users show` lists both applications and the refusal. The test has a broker
// of its own, so that blocking a demo user cannot disturb the other tests.
func TestUserBlockViaCLI(t *testing.T) {
	e := privateBroker(t, siobroker.SystemClock{})
	dataDir := e.cfg.DataDir
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	send := func() (int, string, string) { return runSend(t, e.sendArgs(u)...) }

	code, stdout, stderr := send()
	wantSendOK(t, code, stdout, stderr)

	const blockReason, unblockReason = "§45: e2e, нарушение Единых требований", "e2e: проверка завершена"
	code, stdout, stderr = runMain(t, "users", "block", "--data", dataDir, "--iin", u.IIN, "--by", "e2e-operator", "--reason", blockReason)
	if code != 0 || !strings.Contains(stdout, "is now "+string(siobroker.UserBlocked)) {
		t.Fatalf("users block exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = send()
	wantSendFault(t, code, stdout, stderr, siobroker.CodeUserBlocked, u.IIN)
	// Another user is not affected.
	if other := findUserByRole(t, e.manifest, 2); other.IIN != u.IIN {
		code, stdout, stderr := runSend(t, e.sendArgs(other)...)
		wantSendOK(t, code, stdout, stderr)
	}

	code, stdout, stderr = runMain(t, "users", "unblock", "--data", dataDir, "--iin", u.IIN, "--by", "e2e-operator", "--reason", unblockReason)
	if code != 0 || !strings.Contains(stdout, "is now "+string(siobroker.UserActive)) {
		t.Fatalf("users unblock exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = send()
	wantSendOK(t, code, stdout, stderr)

	code, stdout, stderr = runMain(t, "users", "show", "--data", dataDir, "--iin", u.IIN)
	if code != 0 {
		t.Fatalf("users show exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// register (the demo seed), block, unblock; one refusal.
	for _, want := range []string{"applications (3):", "refusals (1):", string(siobroker.CodeUserBlocked)} {
		if !strings.Contains(stdout, want) {
			t.Errorf("users show lacks %q:\n%s", want, stdout)
		}
	}
	blockLine := regexp.MustCompile(`(?m)^\s+#\d+\s+\S+\s+block\s+e2e-operator\s+` + regexp.QuoteMeta(blockReason) + `$`)
	unblockLine := regexp.MustCompile(`(?m)^\s+#\d+\s+\S+\s+unblock\s+e2e-operator\s+` + regexp.QuoteMeta(unblockReason) + `$`)
	bi, ui := blockLine.FindStringIndex(stdout), unblockLine.FindStringIndex(stdout)
	switch {
	case bi == nil || ui == nil:
		t.Errorf("users show does not list the block and the unblock application:\n%s", stdout)
	case bi[0] > ui[0]:
		t.Errorf("users show lists the unblock before the block:\n%s", stdout)
	}
	if !regexp.MustCompile(`(?m)^status:\s+` + string(siobroker.UserActive) + `$`).MatchString(stdout) {
		t.Errorf("users show does not say the user is active:\n%s", stdout)
	}
}

// TestUsersImportList: `siobroker users import` of testdata/users/users.csv into a fresh data
// directory, then `users list` shows every user of the file, with its role.
func TestUsersImportList(t *testing.T) {
	dataDir := t.TempDir()
	file := filepath.Join("..", "..", "testdata", "users", "users.csv")
	code, stdout, stderr := runMain(t, "users", "import", file, "--data", dataDir, "--by", "e2e-operator", "--reason", "e2e: письмо № 1")
	if code != 0 {
		t.Fatalf("users import exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 2 {
		t.Fatalf("%s has no users", file)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, h := range []string{"iin", "full_name", "role"} {
		if _, ok := col[h]; !ok {
			t.Fatalf("%s has no column %s", file, h)
		}
	}
	users := rows[1:]
	if want := fmt.Sprintf("%d registered, 0 moved, 0 unchanged, 0 failed", len(users)); !strings.Contains(stdout, want) {
		t.Errorf("users import output lacks %q:\n%s", want, stdout)
	}

	code, stdout, stderr = runMain(t, "users", "list", "--data", dataDir)
	if code != 0 {
		t.Fatalf("users list exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if want := fmt.Sprintf("\n%d users\n", len(users)); !strings.Contains(stdout, want) {
		t.Errorf("users list lacks %q:\n%s", strings.TrimSpace(want), stdout)
	}
	for _, row := range users {
		iin, name, role := row[col["iin"]], row[col["full_name"]], row[col["role"]]
		line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(iin) + `\s+` + string(siobroker.UserActive) + `\s+` +
			regexp.QuoteMeta(role) + `\s.*` + regexp.QuoteMeta(name))
		if !line.MatchString(stdout) {
			t.Errorf("users list has no active row for %s (role %s, %s):\n%s", iin, role, name, stdout)
		}
	}
}
