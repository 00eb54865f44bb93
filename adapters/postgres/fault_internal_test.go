package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestConnectionFault: the SQLSTATEs of a connection or a server in trouble are connection
// faults, those of the query or its data are not; so are broken connections, and not a context
// that ended.
func TestConnectionFault(t *testing.T) {
	for code, want := range map[string]bool{
		"08006": true, "08001": true, "53300": true, "53200": true, "57P01": true, "57P02": true, "57P03": true,
		"42601": false, "42P01": false, "42703": false, "22P02": false, "57014": false, "23505": false,
	} {
		err := fmt.Errorf("postgres service 1: %w", &pgconn.PgError{Code: code})
		if got := connectionFault(err); got != want {
			t.Errorf("SQLSTATE %s: connection fault %v, want %v", code, got, want)
		}
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{errors.New("field x: the query has no column"), false},
		{context.DeadlineExceeded, false},
		{context.Canceled, false},
	} {
		if got := connectionFault(tt.err); got != tt.want {
			t.Errorf("%v: connection fault %v, want %v", tt.err, got, tt.want)
		}
	}
}
