package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// TestCaseRegistryWalkthrough follows the README's "Answer the case checks of §5 from PostgreSQL"
// step by step, on the machine's PostgreSQL and RabbitMQ: load the example ЕРДР
// (testdata/registries/erdr.sql), route the erdr registry to the example adapter
// configs/adapters/erdr-postgres.yaml, start the broker on RabbitMQ with the demo adapters and
// the demo courts and aisoip registries, start the adapter, and send requests whose case checks
// are answered from the table: the prosecutor's case passes, with its qualification deciding the
// КГД service 37 (App. 2 fn. 2); his closed case, and a case he is not in, are refused; and a
// change in the table changes the answer.
func TestCaseRegistryWalkthrough(t *testing.T) {
	prefix := amqpPrefix(t)
	dsn := sharedJournalDSN(t) // a fresh schema of the test database, in search_path
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// Step 1: the register's tables.
	conn := loadSQL(t, ctx, dsn, "testdata/registries/erdr.sql")

	// Steps 2 and 3: the registry's route, and the adapter's configuration from the shipped
	// example with this test's database, queue prefix, routes file and key.
	w := newWalkthrough(t, prefix, "erdr: {adapter: demo}", "erdr: {adapter: erdr}", "configs/adapters/erdr-postgres.yaml", "erdr",
		`"postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=sio_erdr"`, `"`+dsn+`"`)
	var out, errb strings.Builder
	if code := Main(ctx, []string{"config", "check", w.adapterFile}, &out, &errb); code != 0 {
		t.Errorf("config check of the adapter's config: exit %d\n%s%s", code, out.String(), errb.String())
	}

	// Step 4: the broker on RabbitMQ, with the demo adapters and the demo registries routed to
	// demo (courts, aisoip) in its process.
	e := w.startBroker(t, ctx, prefix)

	// A config whose name disagrees with the route is refused before it consumes anything.
	w.wantRefused(t, ctx, "name: erdr", "name: erdr-old", "case registry erdr is routed to adapter")

	// Step 5: the adapter process.
	stop := w.runAdapter(t, ctx)
	defer func() {
		if out := stop(); !strings.Contains(out, "siobroker adapter erdr serving services [] and case registries [erdr]") {
			t.Errorf("the adapter's start line: %q", out)
		}
	}()

	// Step 6: requests.
	prosecutor := findUserByRole(t, e.manifest, 1)
	send := func(args ...string) (int, string, string) {
		return runSend(t, e.sendArgs(prosecutor, append([]string{"--timeout", "10s"}, args...)...)...)
	}
	// The prosecutor's case, qualified in the table under 216 (Chapter 8) and 190: service 37 with
	// no article named. The first requests may come before the adapter consumes.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, o, errs := send("--basis", "1", "--case", "261500031000123", "--services", "1,37")
		if code == sendExitOK && strings.Contains(o, "\nservice 37: ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the case check was not answered from PostgreSQL: exit %d\n%s%s", code, o, errs)
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"the case's article 190, not of Chapter 8", []string{"--basis", "1", "--case", "261500031000123", "--article", "190", "--services", "1,37"},
			[]string{"\nservice 1: ok", "\nservice 37: denied DENIED_ARTICLE"}},
		{"the instruction form (§22), qualified under 245", []string{"--basis", "1", "--case", "251500031000456", "--instruction-no", "2-15-25/1234", "--services", "37"},
			[]string{"\nservice 37: ok"}},
		{"his search case (basis 6, the same registry)", []string{"--basis", "6", "--case", "261500031000777", "--services", "1"},
			[]string{"\nservice 1: ok"}},
		{"his closed case", []string{"--basis", "1", "--case", "241500031000088", "--services", "1"},
			[]string{"fault SIO-CASE-UNKNOWN", `is "closed" in the erdr registry`}},
		{"a case he is not in", []string{"--basis", "1", "--case", "267100041000042", "--services", "1"},
			[]string{"fault SIO-CASE-UNKNOWN", "not among the proceedings of user " + prosecutor.IIN + " in the erdr registry"}},
		{"a case not in the table", []string{"--basis", "1", "--case", "261500031000999", "--services", "1"},
			[]string{"fault SIO-CASE-UNKNOWN", "not among the proceedings"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, o, errs := send(tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(o+errs, w) {
					t.Errorf("want %q:\n%s%s", w, o, errs)
				}
			}
		})
	}
	// The courts registry is still the demo one, in the broker's process.
	civil := userCase(t, prosecutor, siobroker.BasisCourtCivil)
	if code, o, errs := send(append(caseFlags(civil), "--services", "1")...); code != sendExitOK {
		t.Errorf("a court case, checked by the demo courts registry: exit %d\n%s%s", code, o, errs)
	}

	// The answer is the table's: the prosecutor taken off the case, it is no longer his.
	if _, err := conn.Exec(ctx, `DELETE FROM erdr_participants WHERE erdr_no = '261500031000123' AND iin = $1`, prosecutor.IIN); err != nil {
		t.Fatal(err)
	}
	if _, o, errs := send("--basis", "1", "--case", "261500031000123", "--services", "1"); !strings.Contains(o+errs, "fault SIO-CASE-UNKNOWN") {
		t.Errorf("after the prosecutor left the case:\n%s%s", o, errs)
	}
}
