package siobroker_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
)

func TestErrorCodeAndMessage(t *testing.T) {
	cause := errors.New("disk on fire at /var/lib/secret")
	tests := []struct {
		name     string
		err      error
		wantCode siobroker.Code
		wantMsg  string
	}{
		{"plain error", errors.New("boom"), siobroker.CodeInternal, "internal error"},
		{"plain io error", io.ErrUnexpectedEOF, siobroker.CodeInternal, "internal error"},
		{"Errorf", siobroker.Errorf(siobroker.CodeReplayID, "messageId %q seen", "m1"), siobroker.CodeReplayID, `messageId "m1" seen`},
		{"Wrap keeps code, hides cause", siobroker.Wrap(siobroker.CodeUnavailable, cause, "retry later"), siobroker.CodeUnavailable, "retry later"},
		{"FieldError", siobroker.FieldError("query/basis", "must be 1..6, got %d", 9), siobroker.CodeSchema, "query/basis: must be 1..6, got 9"},
		{"wrapped with %w", fmt.Errorf("handle: %w", siobroker.Errorf(siobroker.CodeSubject, "bad iin")), siobroker.CodeSubject, "bad iin"},
		{"wrapped twice", fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", siobroker.Errorf(siobroker.CodeOversize, "too big"))), siobroker.CodeOversize, "too big"},
		{"joined", errors.Join(io.EOF, siobroker.Errorf(siobroker.CodeDoctype, "doctype")), siobroker.CodeDoctype, "doctype"},
		{"wrapped with %v loses the code", fmt.Errorf("handle: %v", siobroker.Errorf(siobroker.CodeSubject, "bad iin")), siobroker.CodeInternal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := siobroker.ErrorCode(tt.err); got != tt.wantCode {
				t.Errorf("ErrorCode = %q, want %q", got, tt.wantCode)
			}
			if got := siobroker.ErrorMessage(tt.err); got != tt.wantMsg {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.wantMsg)
			}
			if strings.Contains(siobroker.ErrorMessage(tt.err), "secret") {
				t.Errorf("ErrorMessage leaks the cause: %q", siobroker.ErrorMessage(tt.err))
			}
		})
	}
}

func TestErrorErrorAndUnwrap(t *testing.T) {
	cause := errors.New("sqlite: database is locked")
	w := siobroker.Wrap(siobroker.CodeUnavailable, cause, "retry %s", "later")
	if !errors.Is(w, cause) {
		t.Fatalf("errors.Is(Wrap(cause), cause) = false")
	}
	if got, want := w.Error(), "SIO-UNAVAILABLE: retry later: sqlite: database is locked"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	e := siobroker.Errorf(siobroker.CodeReplayDate, "old")
	if got, want := e.Error(), "SIO-REPLAY-DATE: old"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if e.Unwrap() != nil {
		t.Fatalf("Unwrap of Errorf = %v, want nil", e.Unwrap())
	}
	f := siobroker.FieldError("query/subject/iin", "bad")
	if f.Field != "query/subject/iin" || f.Code != siobroker.CodeSchema {
		t.Fatalf("FieldError = %+v", f)
	}
	var nilErr error
	if got := siobroker.ErrorCode(nilErr); got != siobroker.CodeInternal {
		t.Fatalf("ErrorCode(nil) = %q", got)
	}
}
