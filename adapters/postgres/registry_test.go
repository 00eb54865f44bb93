package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/adapterconfig"
	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/adapters/postgres"
	"github.com/sio-pso/siobroker/internal/pgtest"
)

const (
	prosecutor   = "750312300458" // the demo prosecutor
	investigator = "860421301550"
	groupMember  = "910702402168"
	executor     = "831115303779"
	afmOfficer   = "900114302034" // the demo АФМ investigator, in another case
)

// erdrDB loads testdata/registries/erdr.sql, the README walkthrough's ЕРДР, into a fresh schema.
func erdrDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, pgtest.Schema(t, "sio_registry_test_"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	sql, err := os.ReadFile(filepath.Join("..", "..", "testdata", "registries", "erdr.sql"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Conn().PgConn().Exec(ctx, string(sql)).ReadAll(); err != nil {
		t.Fatalf("erdr.sql: %v", err)
	}
	return pool
}

// shippedERDR is the registry of configs/adapters/erdr-postgres.yaml: the query the README's
// walkthrough runs is the one tested.
func shippedERDR(t *testing.T) postgres.RegistrySpec {
	t.Helper()
	cfg, err := adapterconfig.Load("../../configs/adapters/erdr-postgres.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Registries["erdr"]
	return postgres.RegistrySpec{Registry: "erdr", Query: r.Query, Params: r.Params, Columns: r.Fields, Timeout: r.Timeout}
}

func newRegistry(t *testing.T, pool *pgxpool.Pool, spec postgres.RegistrySpec) adapters.CaseRegistry {
	t.Helper()
	r, err := postgres.NewRegistry(pool, spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func erdrCase(basis siobroker.Basis, number string) adaptertest.CaseQuery {
	return adaptertest.CaseQuery{Basis: basis, Case: siobroker.CaseRef{Number: number}}
}

func TestIntegrationRegistryMeetsTheContract(t *testing.T) {
	pool := erdrDB(t)
	adaptertest.RunRegistrySuite(t, adaptertest.RegistryCase{
		Registry: newRegistry(t, pool, shippedERDR(t)),
		Open: adaptertest.KnownCase{CaseQuery: erdrCase(1, "261500031000123"),
			Facts: siobroker.CaseFacts{Status: "open", Articles: []string{"216", "190"}, Participants: []siobroker.Participant{
				{IIN: investigator, Part: "investigator"}, {IIN: groupMember, Part: "group_member"},
				{IIN: prosecutor, Part: "supervising_prosecutor"}}}},
		Closed: adaptertest.KnownCase{CaseQuery: erdrCase(1, "241500031000088"),
			Facts: siobroker.CaseFacts{Status: "closed", Articles: []string{"190"},
				Participants: []siobroker.Participant{{IIN: prosecutor, Part: "supervising_prosecutor"}}}},
		Unknown: []adaptertest.CaseQuery{
			erdrCase(1, "261500031000999"),
			erdrCase(6, "261500031000123"), // the number of a criminal case, as a search case
			{Basis: 1, Case: siobroker.CaseRef{Number: "251500031000456", InstructionNo: "2-15-25/9999"}}, // no such instruction
		},
		Outsider: afmOfficer,
		Failing: func(t *testing.T) adapters.CaseRegistry {
			return newRegistry(t, pool, postgres.RegistrySpec{Registry: "erdr", Params: []string{"case.number"},
				Query: `SELECT status, iin, part FROM no_such_erdr_sio WHERE erdr_no = $1`})
		},
		FailText: "no_such_erdr_sio",
		Hanging: func(t *testing.T) adapters.CaseRegistry {
			return newRegistry(t, pool, postgres.RegistrySpec{Registry: "erdr", Params: []string{"case.number"},
				Query: `SELECT pg_sleep(10)::text AS status, $1::text AS iin, 'x' AS part`})
		},
	})
}

// TestIntegrationRegistryForms: the §22 instruction form adds the instruction's executor to the
// proceedings; a search case has no articles; a registry whose source has no articles column at
// all answers none; columns may be renamed.
func TestIntegrationRegistryForms(t *testing.T) {
	pool := erdrDB(t)
	erdr := newRegistry(t, pool, shippedERDR(t))
	ctx := context.Background()
	resp, err := erdr.Check(ctx, adaptertest.CheckRequest(adaptertest.CaseQuery{Basis: 1,
		Case: siobroker.CaseRef{Number: "251500031000456", InstructionNo: "2-15-25/1234"}}, executor))
	if err != nil {
		t.Fatal(err)
	}
	if !resp.InProceedings || strings.Join(resp.Facts().PartsOf(executor), ",") != "instruction_executor" || strings.Join(resp.Articles, ",") != "245" {
		t.Errorf("instruction form: %+v", resp)
	}
	resp, err = erdr.Check(ctx, adaptertest.CheckRequest(erdrCase(1, "251500031000456"), executor))
	if err != nil || !resp.Found || resp.InProceedings {
		t.Errorf("the case without its instruction: %+v, %v; the executor is not in its proceedings", resp, err)
	}
	resp, err = erdr.Check(ctx, adaptertest.CheckRequest(erdrCase(6, "РД-257100041"), "881129403324"))
	if err != nil || resp.Articles != nil || resp.Status != "open" || strings.Join(resp.Facts().PartsOf("881129403324"), ",") != "search_officer" {
		t.Errorf("search case: %+v, %v", resp, err)
	}
	resp, err = erdr.Check(ctx, adaptertest.CheckRequest(erdrCase(1, "257100041000077"), "881129403324"))
	if err != nil || resp.Status != "suspended" || strings.Join(resp.Facts().PartsOf("881129403324"), ",") != "group_member" {
		t.Errorf("status and part are lower-cased: %+v, %v", resp, err)
	}

	courts := newRegistry(t, pool, postgres.RegistrySpec{Registry: "courts", Params: []string{"case.number"},
		Columns: map[string]string{"status": "state", "iin": "person", "part": "as_who"},
		Query:   `SELECT 'OPEN' AS state, '820605401173' AS person, 'Judge' AS as_who WHERE $1 = '2-4521/2024'`})
	resp, err = courts.Check(ctx, adaptertest.CheckRequest(erdrCase(4, "2-4521/2024"), "820605401173"))
	if err != nil || resp.Status != "open" || resp.Articles != nil || len(resp.Participants) != 1 || resp.Participants[0].Part != "judge" {
		t.Errorf("renamed columns, no articles: %+v, %v", resp, err)
	}
}

// TestIntegrationRegistryBadRows: rows that are not one case, or lack a column the answer needs,
// are errors, never a guess.
func TestIntegrationRegistryBadRows(t *testing.T) {
	pool := erdrDB(t)
	for _, tc := range []struct {
		name, query string
		columns     map[string]string
		want        string
	}{
		{"two cases", `SELECT status, NULL::text AS iin, NULL::text AS part FROM erdr_cases WHERE $1 <> ''`, nil, "more than one case"},
		{"no part column", `SELECT 'open' AS status, '750312300458' AS iin WHERE $1 <> ''`, nil, `no column "part"`},
		{"named articles column missing", `SELECT 'open' AS status, '750312300458' AS iin, 'judge' AS part WHERE $1 <> ''`,
			map[string]string{"articles": "qualification"}, `no column "qualification"`},
		{"unreadable article", `SELECT 'open' AS status, '750312300458' AS iin, 'judge' AS part, 'мошенничество' AS articles WHERE $1 <> ''`,
			nil, "not an article number"},
		{"bad IIN", `SELECT 'open' AS status, '7503' AS iin, 'judge' AS part WHERE $1 <> ''`, nil, "not 12 digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRegistry(t, pool, postgres.RegistrySpec{Registry: "erdr", Params: []string{"case.number"}, Columns: tc.columns, Query: tc.query})
			resp, err := r.Check(context.Background(), adaptertest.CheckRequest(erdrCase(1, "261500031000123"), prosecutor))
			if err == nil || !strings.Contains(err.Error(), tc.want) || resp.Found {
				t.Errorf("%+v, %v; want an error with %q", resp, err, tc.want)
			}
		})
	}
}

func TestRegistrySpecValidate(t *testing.T) {
	for _, tc := range []struct {
		spec postgres.RegistrySpec
		want string
	}{
		{postgres.RegistrySpec{Query: "SELECT 1"}, "registry: the name"},
		{postgres.RegistrySpec{Registry: "erdr", Query: "SELECT $1", Params: []string{"subject.iin"}}, `"subject.iin" is not one of basis, case.court`},
		{postgres.RegistrySpec{Registry: "erdr", Query: "SELECT $2", Params: []string{"case.number"}}, "$2 has no entry"},
		{postgres.RegistrySpec{Registry: "erdr", Query: "SELECT '%s'"}, "text substitution"},
		{postgres.RegistrySpec{Registry: "erdr", Query: "SELECT 1", Columns: map[string]string{"state": "s"}}, `"state" is not one of status`},
		{postgres.RegistrySpec{Registry: "erdr", Query: "SELECT 1", Columns: map[string]string{"iin": ""}}, "columns.iin"},
	} {
		if err := tc.spec.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.spec, err, tc.want)
		}
	}
}
