// Package postgres is an adapters.Backend that answers one service with one fixed SQL query
// against the source system's PostgreSQL database. The query text comes from configuration, never
// from a request: the request's values reach it only as bound parameters ($1..$n), named from a
// fixed allowlist (Params).
package postgres

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// Spec is one service's query and how its rows become records.
type Spec struct {
	Service    int
	Query      string            // fixed SQL using $1..$n, one per entry of Params
	Params     []string          // names from Params, bound in order as $1..$n
	RecordType string            // snake_case type of every record
	Fields     map[string]string // result field name (snake_case) → column of the query's result
	Timeout    time.Duration     // 0: only the caller's ctx bounds the query
}

// Params are the request values a query may bind (adapters.Params). An empty value (no BIN for a
// person, no article) is bound as NULL.
var Params = adapters.Params

// ParamNames returns the names of Params, sorted.
func ParamNames() []string { return adapters.ParamNames() }

var (
	snakeCase   = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	placeholder = regexp.MustCompile(`\$(\d+)`)
	// Signs that a query was meant to be filled in by text substitution, which this package never
	// does: printf verbs, templates, shell-style variables and named parameters.
	templating = regexp.MustCompile(`%[-+#0-9.]*[svdqxXT]|\{\{|\}\}|\$\{|\$[A-Za-z_]|(^|[^:]):[A-Za-z_]\w*`)
)

// Validate checks the spec without a database: the service number, a query that binds exactly
// $1..$n for its n params from the allowlist and nothing else, a single statement, and snake_case
// names.
func (s Spec) Validate() error {
	var errs []error
	if s.Service < siobroker.FirstService || s.Service > siobroker.LastService {
		errs = append(errs, fmt.Errorf("service %d: no such service in Appendix 2 (%d..%d)", s.Service, siobroker.FirstService, siobroker.LastService))
	}
	errs = append(errs, checkQuery(s.Query, s.Params, func(p string) bool { _, ok := Params[p]; return ok }, ParamNames())...)
	if !snakeCase.MatchString(s.RecordType) {
		errs = append(errs, fmt.Errorf("record_type: %q must be snake_case", s.RecordType))
	}
	if len(s.Fields) == 0 {
		errs = append(errs, errors.New("fields: at least one field → column mapping is needed"))
	}
	for name, col := range s.Fields {
		if !snakeCase.MatchString(name) {
			errs = append(errs, fmt.Errorf("fields: %q must be snake_case", name))
		}
		if col == "" {
			errs = append(errs, fmt.Errorf("fields.%s: the column must not be empty", name))
		}
	}
	if s.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must not be negative, got %s", s.Timeout))
	}
	return errors.Join(errs...)
}

// checkQuery checks a configured query: one statement, no sign of text substitution, and
// placeholders $1..$n bound exactly by params, each a name known takes (of names).
func checkQuery(query string, params []string, known func(string) bool, names []string) []error {
	var errs []error
	q := strings.TrimSpace(query)
	if q == "" {
		errs = append(errs, errors.New("query: must not be empty"))
	}
	if strings.Contains(strings.TrimSuffix(q, ";"), ";") {
		errs = append(errs, errors.New("query: must be one statement (no ';' inside)"))
	}
	if m := templating.FindString(q); m != "" {
		errs = append(errs, fmt.Errorf("query: %q looks like text substitution; bind values as $1..$n", strings.TrimSpace(m)))
	}
	used := map[int]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(q, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil || n < 1 || n > len(params) {
			errs = append(errs, fmt.Errorf("query: $%s has no entry in params (%d given)", m[1], len(params)))
			continue
		}
		used[n] = true
	}
	for i, p := range params {
		if !known(p) {
			errs = append(errs, fmt.Errorf("params[%d]: %q is not one of %s", i, p, strings.Join(names, ", ")))
		}
		if !used[i+1] {
			errs = append(errs, fmt.Errorf("params[%d]: %q is never bound: the query does not use $%d", i, p, i+1))
		}
	}
	return errs
}

// Backend answers one service from a PostgreSQL pool. It is safe for concurrent use.
type Backend struct {
	pool *pgxpool.Pool
	spec Spec
	read []func(schemas.ServiceRequest) string
}

// New returns the backend for spec. The pool is the caller's to close.
func New(pool *pgxpool.Pool, spec Spec) (*Backend, error) {
	if pool == nil {
		return nil, errors.New("postgres: nil pool")
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("postgres service %d: %w", spec.Service, err)
	}
	spec.Params = slices.Clone(spec.Params)
	fields := make(map[string]string, len(spec.Fields))
	for k, v := range spec.Fields {
		fields[k] = v
	}
	spec.Fields = fields
	b := &Backend{pool: pool, spec: spec}
	for _, p := range spec.Params {
		b.read = append(b.read, Params[p])
	}
	return b, nil
}

// Query runs the service's query with the request's values bound as parameters. Each row is one
// record with the mapped fields in the order of the result's columns; NULL and empty values are
// left out. No rows is NO_DATA. A failing query is an error; when ctx or the spec's timeout ended
// it, the error wraps the context's error. A failure to reach the database, or a connection it
// lost or refused (see connectionFault), is marked adapters.Transient, so that the runtime asks
// again with back-off and then dead-letters the request; a fault of the query or the data (a
// syntax error, a missing table or column) is final: asking again would fail the same way.
func (b *Backend) Query(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
	no := b.spec.Service
	if err := ctx.Err(); err != nil {
		return siobroker.ServiceResult{}, fmt.Errorf("postgres service %d: %w", no, err)
	}
	if req.Service != no {
		return siobroker.ServiceResult{}, fmt.Errorf("postgres service %d: request is for service %d", no, req.Service)
	}
	if b.spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.spec.Timeout)
		defer cancel()
	}
	records, err := b.run(ctx, bind(b.read, req))
	if err != nil {
		return siobroker.ServiceResult{}, sourceError(ctx, err, fmt.Sprintf("postgres service %d", no))
	}
	result := siobroker.ServiceResult{Service: no, Status: siobroker.StatusOK, Reason: siobroker.ReasonNoData}
	if len(records) > 0 {
		result.Reason, result.Records = siobroker.ReasonOK, records
	}
	return result, nil
}

// bind reads the query's arguments from req, one per read; an empty value is bound as NULL.
func bind[R any](read []func(R) string, req R) []any {
	args := make([]any, len(read))
	for i, r := range read {
		if v := r(req); v != "" {
			args[i] = v
		}
	}
	return args
}

// sourceError is the error of a query that failed under ctx, named what: it wraps ctx's error
// when ctx ended it, and is marked adapters.Transient when the connection, not the query, failed
// before our deadline, since the database may be back shortly.
func sourceError(ctx context.Context, err error, what string) error {
	cerr := ctx.Err()
	if cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	err = fmt.Errorf("%s: %w", what, err)
	if cerr == nil && connectionFault(err) {
		return adapters.Transient(err)
	}
	return err
}

// connectionFault reports whether err is a failure of the connection to the database rather than
// of the query: the server could not be reached or refused the connection (pgconn.ConnectError),
// the connection broke (a network error, an unexpected EOF), or the server said so itself, with
// an SQLSTATE of class 08 (connection exception), class 53 (insufficient resources: too many
// connections, out of memory, disk full) or 57P01..57P03 (admin shutdown, crash shutdown, cannot
// connect now: the server is stopping or starting). pgconn.SafeToRetry errors (the query was never
// sent) count too. Any other SQLSTATE is about the query or the data.
func connectionFault(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "53"):
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03":
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true // includes its connect timeout
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false // the caller's deadline, which a net.Error would also claim
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

func (b *Backend) run(ctx context.Context, args []any) ([]siobroker.Record, error) {
	rows, err := b.pool.Query(ctx, b.spec.Query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := rows.FieldDescriptions()
	if len(cols) == 0 {
		// pgx may report a failure of the query only with its rows (a lost connection): that,
		// not a missing column, is the error.
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	type slot struct {
		name string
		col  int
		oid  uint32
	}
	var slots []slot
	for name, col := range b.spec.Fields {
		i := slices.IndexFunc(cols, func(f pgconn.FieldDescription) bool { return f.Name == col })
		if i < 0 {
			return nil, fmt.Errorf("field %s: the query has no column %q", name, col)
		}
		slots = append(slots, slot{name: name, col: i, oid: cols[i].DataTypeOID})
	}
	slices.SortFunc(slots, func(a, b slot) int {
		if a.col != b.col {
			return a.col - b.col
		}
		return strings.Compare(a.name, b.name)
	})
	var records []siobroker.Record
	for rows.Next() {
		values, err := rows.Values()
		if err != nil {
			return nil, err
		}
		r := siobroker.Record{Type: b.spec.RecordType}
		for _, s := range slots {
			v, err := format(values[s.col], s.oid)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", s.name, err)
			}
			if strings.TrimSpace(v) != "" {
				r.Fields = append(r.Fields, siobroker.Field{Name: s.name, Value: v})
			}
		}
		if len(r.Fields) > 0 {
			records = append(records, r)
		}
	}
	return records, rows.Err()
}

// format renders one column value as text: dates as YYYY-MM-DD, timestamps as RFC 3339 (timestamptz in UTC), numbers
// in full, json as compact JSON. NULL is "".
func format(v any, oid uint32) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int16:
		return strconv.FormatInt(int64(v), 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case time.Time:
		switch oid {
		case pgtype.DateOID:
			return v.Format(time.DateOnly), nil
		case pgtype.TimestampOID:
			return v.Format("2006-01-02T15:04:05.999999"), nil
		}
		return v.UTC().Format(time.RFC3339Nano), nil // timestamptz: in UTC, whatever the session zone
	case [16]byte: // uuid
		return fmt.Sprintf("%x-%x-%x-%x-%x", v[0:4], v[4:6], v[6:8], v[8:10], v[10:16]), nil
	case pgtype.Numeric:
		return formatNumeric(v)
	case driver.Valuer:
		dv, err := v.Value()
		if err != nil {
			return "", err
		}
		return format(dv, oid)
	case fmt.Stringer:
		return v.String(), nil
	case map[string]any, []any: // json, jsonb
		b, err := json.Marshal(v)
		return string(b), err
	}
	return "", fmt.Errorf("a value of type %T cannot be rendered as text; cast the column to text in the query", v)
}

func formatNumeric(n pgtype.Numeric) (string, error) {
	if !n.Valid {
		return "", nil
	}
	if n.NaN || n.InfinityModifier != pgtype.Finite {
		v, err := n.Value()
		if err != nil {
			return "", err
		}
		return fmt.Sprint(v), nil
	}
	if n.Exp >= 0 {
		return new(big.Int).Mul(n.Int, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.Exp)), nil)).String(), nil
	}
	v, err := n.Value() // pgtype renders a negative exponent as a plain decimal
	if err != nil {
		return "", err
	}
	return fmt.Sprint(v), nil
}
