package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/adapters/postgres"
	"github.com/sio-pso/siobroker/internal/pgtest"
)

var (
	person1   = siobroker.Subject{IIN: "850101300015"}
	person2   = siobroker.Subject{IIN: "900512400028"}
	person3   = siobroker.Subject{IIN: "781130500033"}
	noPerson  = siobroker.Subject{IIN: "950707400057"}
	org1      = siobroker.Subject{BIN: "120340000014"}
	org2      = siobroker.Subject{BIN: "050840000027"}
	noOrg     = siobroker.Subject{BIN: "990140000047"}
	specsByNo = map[int]postgres.Spec{
		1: {Service: 1, RecordType: "person", Params: []string{"subject.iin"},
			Query: `SELECT iin, last_name, first_name, middle_name, birth_date, gender, citizenship, address
			        FROM persons WHERE iin = $1`,
			Fields: map[string]string{"iin": "iin", "last_name": "last_name", "first_name": "first_name",
				"middle_name": "middle_name", "birth_date": "birth_date", "gender": "gender",
				"citizenship": "citizenship", "address": "address"}},
		5: {Service: 5, RecordType: "vehicle", Params: []string{"subject.id"},
			Query: `SELECT plate, vin, make, model, year, registered_date, deregistered_date
			        FROM vehicles WHERE owner_id = $1 ORDER BY registered_date, id`,
			Fields: map[string]string{"plate_number": "plate", "vin": "vin", "make": "make", "model": "model",
				"year": "year", "registration_date": "registered_date", "deregistration_date": "deregistered_date"}},
		37: {Service: 37, RecordType: "counter_check", Params: []string{"subject.bin"}, Timeout: 5 * time.Second,
			Query: `SELECT inspection_no, inspection_date, inspector, result, assessed_amount, checked_at
			        FROM counter_checks WHERE bin = $1 ORDER BY inspection_date, id`,
			Fields: map[string]string{"inspection_no": "inspection_no", "inspection_date": "inspection_date",
				"inspector": "inspector", "result": "result", "assessed_amount": "assessed_amount", "checked_at": "checked_at"}},
	}
)

// testDB creates a fresh schema, loads testdata/adapters/postgres into it, and returns a pool
// whose search_path is that schema. The schema is dropped when the test ends. Without a server the
// test is skipped, or fails when CI=true.
func testDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dsn := pgtest.Schema(t, "sio_adapter_test_")
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, name := range []string{"schema.sql", "seed.sql"} {
		sql, err := os.ReadFile(filepath.Join("..", "..", "testdata", "adapters", "postgres", name))
		if err != nil {
			t.Fatal(err)
		}
		// The simple protocol runs a whole file of statements.
		if _, err := conn.Conn().PgConn().Exec(ctx, string(sql)).ReadAll(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return pool
}

func newBackend(t *testing.T, pool *pgxpool.Pool, spec postgres.Spec) adapters.Backend {
	t.Helper()
	b, err := postgres.New(pool, spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failing and hanging build the suite's hooks for a service: the same backend against a table
// that does not exist, and against a query that sleeps past any test deadline.
func failing(pool *pgxpool.Pool, service int) func(t *testing.T) adapters.Backend {
	return func(t *testing.T) adapters.Backend {
		return newBackend(t, pool, postgres.Spec{Service: service, RecordType: "broken", Params: []string{"subject.id"},
			Query: `SELECT id FROM no_such_table_sio WHERE id = $1`, Fields: map[string]string{"id": "id"}})
	}
}

func hanging(pool *pgxpool.Pool, service int) func(t *testing.T) adapters.Backend {
	return func(t *testing.T) adapters.Backend {
		return newBackend(t, pool, postgres.Spec{Service: service, RecordType: "slow", Params: []string{"subject.id"},
			Query: `SELECT pg_sleep(10) AS slept, $1::text AS id`, Fields: map[string]string{"id": "id"}})
	}
}

func TestIntegrationBackendsMeetTheContract(t *testing.T) {
	pool := testDB(t)
	for no, c := range map[int]adaptertest.Case{
		1:  {WithData: []siobroker.Subject{person1, person2, person3}, WithoutData: []siobroker.Subject{noPerson, org1}},
		5:  {WithData: []siobroker.Subject{person1, person2, org1}, WithoutData: []siobroker.Subject{noPerson, person3, noOrg}},
		37: {WithData: []siobroker.Subject{org1, org2}, WithoutData: []siobroker.Subject{noOrg, person1}},
	} {
		t.Run(specsByNo[no].RecordType, func(t *testing.T) {
			c.Service, c.Backend = no, newBackend(t, pool, specsByNo[no])
			c.Failing, c.FailText, c.Hanging = failing(pool, no), "no_such_table_sio", hanging(pool, no)
			adaptertest.RunBackendSuite(t, c)
		})
	}
}

func fld(name, value string) siobroker.Field { return siobroker.Field{Name: name, Value: value} }

func TestIntegrationRowsBecomeRecords(t *testing.T) {
	pool := testDB(t)
	for _, tc := range []struct {
		service int
		subject siobroker.Subject
		want    []siobroker.Record
	}{
		{1, person3, []siobroker.Record{{Type: "person", Fields: []siobroker.Field{ // NULL middle name and address left out
			fld("iin", "781130500033"), fld("last_name", "Ким"), fld("first_name", "Виктор"), fld("birth_date", "1978-11-30"),
			fld("gender", "male"), fld("citizenship", "KAZ")}}}},
		{5, person1, []siobroker.Record{
			{Type: "vehicle", Fields: []siobroker.Field{fld("plate_number", "777KZ02"), fld("vin", "JTDBR32E720012345"),
				fld("make", "Lada"), fld("model", "Granta"), fld("year", "2012"), fld("registration_date", "2012-07-02"),
				fld("deregistration_date", "2019-03-01")}},
			{Type: "vehicle", Fields: []siobroker.Field{fld("plate_number", "123ABC01"), fld("vin", "XTA210990Y2765432"),
				fld("make", "Toyota"), fld("model", "Camry"), fld("year", "2018"), fld("registration_date", "2019-03-14")}}}},
		{37, org1, []siobroker.Record{
			{Type: "counter_check", Fields: []siobroker.Field{fld("inspection_no", "КП-2025-000117"), fld("inspection_date", "2025-04-08"),
				fld("inspector", "ДГД по г. Астана"), fld("result", "нарушения выявлены"), fld("assessed_amount", "1250000.50"),
				fld("checked_at", "2025-04-08T06:30:00Z")}},
			{Type: "counter_check", Fields: []siobroker.Field{fld("inspection_no", "КП-2025-000342"), fld("inspection_date", "2025-10-21"),
				fld("inspector", "ДГД по г. Астана"), fld("result", "нарушений нет"), fld("checked_at", "2025-10-21T04:00:00Z")}}}},
	} {
		b := newBackend(t, pool, specsByNo[tc.service])
		res, err := b.Query(context.Background(), adaptertest.Request(tc.service, tc.subject))
		if err != nil {
			t.Fatalf("service %d: %v", tc.service, err)
		}
		if res.Reason != siobroker.ReasonOK || !reflect.DeepEqual(res.Records, tc.want) {
			t.Errorf("service %d, subject %s:\n got %s %+v\nwant OK %+v", tc.service, tc.subject.ID(), res.Reason, res.Records, tc.want)
		}
	}
}

func TestIntegrationValuesAsText(t *testing.T) {
	pool := testDB(t)
	cols := map[string]string{
		"d": "DATE '2024-02-29'", "ts": "TIMESTAMP '2025-04-08 11:30:00.25'", "tstz": "TIMESTAMPTZ '2025-04-08 11:30:00+05'",
		"n": "12345678901234567890.10::numeric", "n2": "1e3::numeric", "n3": "-0.005::numeric", "b": "true", "i": "42::int4",
		"big": "9000000000::int8", "f": "2.5::float8", "gone": "NULL::text", "empty": "''::text",
		"u": "'a1b2c3d4-0000-4000-8000-000000000001'::uuid", "j": `'{"a": 1}'::jsonb`,
	}
	want := map[string]string{"d": "2024-02-29", "ts": "2025-04-08T11:30:00.25", "tstz": "2025-04-08T06:30:00Z",
		"n": "12345678901234567890.10", "n2": "1000", "n3": "-0.005", "b": "true", "i": "42", "big": "9000000000", "f": "2.5",
		"u": "a1b2c3d4-0000-4000-8000-000000000001", "id": "850101300015", "j": `{"a":1}`}
	var sel []string
	fields := map[string]string{"id": "id"}
	for name, expr := range cols {
		sel = append(sel, expr+" AS "+name)
		fields["v_"+name] = name
	}
	b := newBackend(t, pool, postgres.Spec{Service: 2, RecordType: "values", Params: []string{"subject.iin"},
		Query: "SELECT $1::text AS id, " + strings.Join(sel, ", "), Fields: fields})
	res, err := b.Query(context.Background(), adaptertest.Request(2, person1))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range res.Records[0].Fields {
		got[strings.TrimPrefix(f.Name, "v_")] = f.Value
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestIntegrationParametersAreBound sends SQL as the subject: it must reach the database as a
// value, compared and echoed as such, and never as statement text.
func TestIntegrationParametersAreBound(t *testing.T) {
	pool := testDB(t)
	ctx := context.Background()
	evil := []string{
		"'; DROP TABLE persons; --",
		"850101300015' OR '1'='1",
		"$1; DELETE FROM vehicles",
		`\'; TRUNCATE counter_checks; --`,
	}
	people := newBackend(t, pool, specsByNo[1])
	echo := newBackend(t, pool, postgres.Spec{Service: 1, RecordType: "echo", Params: []string{"subject.iin"},
		Query: `SELECT $1::text AS echoed`, Fields: map[string]string{"echoed": "echoed"}})
	for _, v := range evil {
		res, err := people.Query(ctx, adaptertest.Request(1, siobroker.Subject{IIN: v}))
		if err != nil || res.Reason != siobroker.ReasonNoData || len(res.Records) != 0 {
			t.Errorf("subject %q: %+v, %v; want NO_DATA", v, res, err)
		}
		res, err = echo.Query(ctx, adaptertest.Request(1, siobroker.Subject{IIN: v}))
		if err != nil || len(res.Records) != 1 || res.Records[0].Fields[0].Value != v {
			t.Errorf("subject %q was not echoed back unchanged: %+v, %v", v, res, err)
		}
	}
	for table, want := range map[string]int{"persons": 4, "vehicles": 4, "counter_checks": 3} {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d rows (%v), want %d", table, n, err, want)
		}
	}
}

func TestIntegrationSpecTimeout(t *testing.T) {
	pool := testDB(t)
	b := newBackend(t, pool, postgres.Spec{Service: 1, RecordType: "slow", Params: []string{"subject.id"}, Timeout: 200 * time.Millisecond,
		Query: `SELECT pg_sleep(10) AS slept, $1::text AS id`, Fields: map[string]string{"id": "id"}})
	start := time.Now()
	_, err := b.Query(context.Background(), adaptertest.Request(1, person1))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("after %s: %v, want an error wrapping context.DeadlineExceeded within 3s", time.Since(start), err)
	}
}

func TestIntegrationClosedPoolIsAnError(t *testing.T) {
	testDB(t) // skips or fails without a server
	pool, err := pgxpool.New(context.Background(), pgtest.BaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, pool, specsByNo[1])
	pool.Close()
	res, err := b.Query(context.Background(), adaptertest.Request(1, person1))
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("closed pool: %+v, %v; want a plain error", res, err)
	}
}

func TestIntegrationMissingColumnIsAnError(t *testing.T) {
	pool := testDB(t)
	spec := specsByNo[1]
	spec.Fields = map[string]string{"nickname": "nickname"}
	_, err := newBackend(t, pool, spec).Query(context.Background(), adaptertest.Request(1, person1))
	if err == nil || !strings.Contains(err.Error(), `"nickname"`) {
		t.Errorf("got %v, want an error naming the missing column", err)
	}
}

func TestSpecValidate(t *testing.T) {
	good := specsByNo[37]
	if err := good.Validate(); err != nil {
		t.Fatalf("a good spec: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*postgres.Spec)
		want   string
	}{
		"service 0":      {func(s *postgres.Spec) { s.Service = 0 }, "no such service"},
		"service 94":     {func(s *postgres.Spec) { s.Service = 94 }, "no such service"},
		"unknown param":  {func(s *postgres.Spec) { s.Params = []string{"subject.name"} }, "is not one of"},
		"too few params": {func(s *postgres.Spec) { s.Params = nil }, "has no entry in params"},
		"unused param":   {func(s *postgres.Spec) { s.Params = []string{"subject.bin", "article"} }, "never bound"},
		"skipped number": {func(s *postgres.Spec) {
			s.Query = "SELECT a FROM t WHERE b = $2"
			s.Params = []string{"basis", "article"}
		}, "does not use $1"},
		"printf":             {func(s *postgres.Spec) { s.Query = "SELECT a FROM t WHERE b = '%s'"; s.Params = nil }, "text substitution"},
		"template":           {func(s *postgres.Spec) { s.Query = "SELECT a FROM t WHERE b = {{.BIN}} AND c = $1" }, "text substitution"},
		"named":              {func(s *postgres.Spec) { s.Query = "SELECT a FROM t WHERE b = :bin AND c = $1" }, "text substitution"},
		"two statements":     {func(s *postgres.Spec) { s.Query = "SELECT 1 WHERE $1 = ''; DROP TABLE t" }, "one statement"},
		"record type":        {func(s *postgres.Spec) { s.RecordType = "CounterCheck" }, "snake_case"},
		"field name":         {func(s *postgres.Spec) { s.Fields = map[string]string{"Inspection No": "inspection_no"} }, "snake_case"},
		"no fields":          {func(s *postgres.Spec) { s.Fields = nil }, "at least one field"},
		"negative timeout":   {func(s *postgres.Spec) { s.Timeout = -time.Second }, "negative"},
		"empty query":        {func(s *postgres.Spec) { s.Query = ""; s.Params = nil }, "must not be empty"},
		"empty column":       {func(s *postgres.Spec) { s.Fields = map[string]string{"a": ""} }, "column must not be empty"},
		"dollar-quoted name": {func(s *postgres.Spec) { s.Query = "SELECT $bin WHERE x = $1" }, "text substitution"},
	} {
		s := good
		s.Params = append([]string(nil), good.Params...)
		tc.change(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
	casts := good
	casts.Query = "SELECT a::text, b FROM t WHERE c = $1::text AND d > now() - interval '1 day';"
	if err := casts.Validate(); err != nil {
		t.Errorf("casts and a trailing ';' are fine: %v", err)
	}
	if _, err := postgres.New(nil, good); err == nil {
		t.Error("New(nil pool) gave no error")
	}
}
