package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// The fields of a case registry's answer that a query's columns give (RegistrySpec.Columns).
const (
	ColumnStatus   = "status"   // the case's status, the same in every row
	ColumnArticles = "articles" // its qualification: a text[] of articles, or text with ',' or ';' between them
	ColumnIIN      = "iin"      // one participant's IIN (NULL in a row of a case without participants)
	ColumnPart     = "part"     // and their part in the proceedings
)

// RegistryColumns are the fields a RegistrySpec's Columns may map.
var RegistryColumns = []string{ColumnStatus, ColumnArticles, ColumnIIN, ColumnPart}

// RegistrySpec is one case registry's query (§5) and the columns its answer is read from. The
// query finds the case by the check's values (bound as $1..$n, never spliced in) and returns a row
// per participant, with the case's status and articles in each: no rows is "no such case".
type RegistrySpec struct {
	Registry string   // its name, for errors
	Query    string   // fixed SQL using $1..$n, one per entry of Params
	Params   []string // names from adapters.CaseParams, bound in order as $1..$n
	// Columns maps an answer field (RegistryColumns) to the column of the result it is read from;
	// a field left out is read from the column of its own name. The articles column may be absent
	// from the result (a registry of civil cases has none) unless Columns names it.
	Columns map[string]string
	Timeout time.Duration // 0: only the caller's ctx bounds the query
}

// Validate checks the spec without a database, as Spec.Validate does a service's.
func (s RegistrySpec) Validate() error {
	var errs []error
	if s.Registry == "" {
		errs = append(errs, errors.New("registry: the name must not be empty"))
	}
	errs = append(errs, checkQuery(s.Query, s.Params, func(p string) bool { _, ok := adapters.CaseParams[p]; return ok },
		adapters.CaseParamNames())...)
	for _, field := range slices.Sorted(maps.Keys(s.Columns)) {
		switch {
		case !slices.Contains(RegistryColumns, field):
			errs = append(errs, fmt.Errorf("columns: %q is not one of %s", field, strings.Join(RegistryColumns, ", ")))
		case s.Columns[field] == "":
			errs = append(errs, fmt.Errorf("columns.%s: the column must not be empty", field))
		}
	}
	if s.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must not be negative, got %s", s.Timeout))
	}
	return errors.Join(errs...)
}

// Registry answers one case registry's checks from a PostgreSQL pool. It is safe for concurrent
// use.
type Registry struct {
	pool    *pgxpool.Pool
	spec    RegistrySpec
	read    []func(schemas.CaseCheckRequest) string
	columns map[string]string // every field → its column
	clock   siobroker.Clock
}

var _ adapters.CaseRegistry = (*Registry)(nil)

// NewRegistry returns the registry for spec. The pool is the caller's to close.
func NewRegistry(pool *pgxpool.Pool, spec RegistrySpec) (*Registry, error) {
	if pool == nil {
		return nil, errors.New("postgres: nil pool")
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("postgres registry %s: %w", spec.Registry, err)
	}
	r := &Registry{pool: pool, spec: spec, columns: map[string]string{}, clock: siobroker.SystemClock{}}
	r.spec.Params = slices.Clone(spec.Params)
	for _, field := range RegistryColumns {
		r.columns[field] = field
		if col, ok := spec.Columns[field]; ok {
			r.columns[field] = col
		}
	}
	r.spec.Columns = maps.Clone(spec.Columns)
	for _, p := range spec.Params {
		r.read = append(r.read, adapters.CaseParams[p])
	}
	return r, nil
}

// Check runs the registry's query with the check's values bound as parameters and answers from
// its rows (adapters.CaseAnswer). No rows is Found false. A failing query is an error, wrapping
// the context's error when ctx or the spec's timeout ended it, and marked adapters.Transient when
// the connection failed (see Backend.Query).
func (r *Registry) Check(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
	what := "postgres registry " + r.spec.Registry
	if err := ctx.Err(); err != nil {
		return schemas.CaseCheckResponse{}, fmt.Errorf("%s: %w", what, err)
	}
	if r.spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.spec.Timeout)
		defer cancel()
	}
	found, facts, err := r.run(ctx, bind(r.read, req))
	if err != nil {
		return schemas.CaseCheckResponse{}, sourceError(ctx, err, what)
	}
	resp, err := adapters.CaseAnswer(req, found, facts)
	if err != nil {
		return schemas.CaseCheckResponse{}, fmt.Errorf("%s: %w", what, err)
	}
	resp.Registry, resp.AnsweredAt = r.spec.Registry, r.clock.Now()
	return resp, nil
}

func (r *Registry) run(ctx context.Context, args []any) (bool, siobroker.CaseFacts, error) {
	var facts siobroker.CaseFacts
	rows, err := r.pool.Query(ctx, r.spec.Query, args...)
	if err != nil {
		return false, facts, err
	}
	defer rows.Close()
	cols := rows.FieldDescriptions()
	if len(cols) == 0 {
		// A failure of the query may come only with its rows (see Backend.run).
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, facts, err
		}
	}
	at := map[string]int{}
	for _, field := range RegistryColumns {
		col := r.columns[field]
		i := slices.IndexFunc(cols, func(f pgconn.FieldDescription) bool { return f.Name == col })
		_, named := r.spec.Columns[field]
		switch {
		case i >= 0:
			at[field] = i
		case field == ColumnArticles && !named:
			// A registry without qualifications: no column, no articles.
		default:
			return false, facts, fmt.Errorf("%s: the query has no column %q", field, col)
		}
	}
	text := func(values []any, field string) (string, error) {
		i, ok := at[field]
		if !ok {
			return "", nil
		}
		v, err := format(values[i], cols[i].DataTypeOID)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return v, nil
	}
	found := false
	for rows.Next() {
		values, err := rows.Values()
		if err != nil {
			return false, facts, err
		}
		status, err := text(values, ColumnStatus)
		if err != nil {
			return false, facts, err
		}
		if found && !strings.EqualFold(strings.TrimSpace(status), strings.TrimSpace(facts.Status)) {
			// More than one case matched: the registry cannot say which the request means.
			return false, facts, errors.New("the rows disagree on the case's status: the query matches more than one case")
		}
		found, facts.Status = true, status
		if i, ok := at[ColumnArticles]; ok {
			articles, err := articleValues(values[i], cols[i].DataTypeOID)
			if err != nil {
				return false, facts, err
			}
			facts.Articles = append(facts.Articles, articles...)
		}
		iin, err := text(values, ColumnIIN)
		if err != nil {
			return false, facts, err
		}
		part, err := text(values, ColumnPart)
		if err != nil {
			return false, facts, err
		}
		facts.Participants = append(facts.Participants, siobroker.Participant{IIN: iin, Part: part})
	}
	return found, facts, rows.Err()
}

// articleValues renders the articles column: each element of an array, or the text of a scalar
// (which CaseAnswer splits at ',' and ';').
func articleValues(v any, oid uint32) ([]string, error) {
	items, ok := v.([]any)
	if !ok {
		s, err := format(v, oid)
		if err != nil {
			return nil, fmt.Errorf("articles: %w", err)
		}
		return []string{s}, nil
	}
	out := make([]string, 0, len(items))
	for _, item := range items {
		s, err := format(item, 0)
		if err != nil {
			return nil, fmt.Errorf("articles: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}
