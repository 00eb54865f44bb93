package schemas

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// personal is what a source's error may quote: names in Cyrillic and Latin, an IIN, an address.
const personal = "ИВАНОВ ИВАН ИВАНОВИЧ, John Smith, IIN 810803325634, г. Астана, ул. Абая 12, кв. 5"

type statusErr struct{ code int }

func (e statusErr) Error() string   { return fmt.Sprintf("status %d for %s", e.code, personal) }
func (e statusErr) HTTPStatus() int { return e.code }

type sqlErr struct{ state string }

func (e sqlErr) Error() string    { return "ERROR: " + personal + " (SQLSTATE " + e.state + ")" }
func (e sqlErr) SQLState() string { return e.state }

// TestErrorClassOf: an error is classified by its type, wrapped in text that quotes a person or
// not, and its HTTP status or SQLSTATE is kept only when it is one.
func TestErrorClassOf(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("source asked about %s: %w", personal, err) }
	var syntax error
	if err := json.Unmarshal([]byte("{"+personal), &struct{}{}); err != nil {
		syntax = err
	}
	for _, tt := range []struct {
		err    error
		class  ErrorClass
		status int
		state  string
	}{
		{nil, "", 0, ""},
		{wrap(statusErr{503}), ErrorHTTPStatus, 503, ""},
		{wrap(statusErr{42}), ErrorOther, 0, ""},
		{wrap(sqlErr{"08006"}), ErrorSQLState, 0, "08006"},
		{wrap(sqlErr{"08 06"}), ErrorOther, 0, ""},
		{wrap(context.DeadlineExceeded), ErrorTimeout, 0, ""},
		{wrap(os.ErrDeadlineExceeded), ErrorTimeout, 0, ""},
		{wrap(context.Canceled), ErrorCanceled, 0, ""},
		{wrap(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), ErrorConnectionRefused, 0, ""},
		{wrap(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), ErrorConnectionLost, 0, ""},
		{wrap(io.ErrUnexpectedEOF), ErrorConnectionLost, 0, ""},
		{wrap(&net.DNSError{Err: "no such host", Name: "src.internal"}), ErrorDNS, 0, ""},
		{wrap(x509.UnknownAuthorityError{}), ErrorTLS, 0, ""},
		{wrap(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New(personal)}), ErrorNetwork, 0, ""},
		{wrap(syntax), ErrorJSON, 0, ""},
		{errors.New(personal), ErrorOther, 0, ""},
	} {
		class, status, state := ErrorClassOf(tt.err)
		if class != tt.class || status != tt.status || state != tt.state {
			t.Errorf("ErrorClassOf(%v) = %q, %d, %q; want %q, %d, %q", tt.err, class, status, state, tt.class, tt.status, tt.state)
		}
	}
}

// TestDeadReasonHeader: what Header writes ParseDeadReason reads back whole, and String says it
// to the operator; a name with characters a configured name has not is cut to those it may
// have; a header that is not one (free text of an earlier version, a value out of range, an
// unknown key) is refused whole.
func TestDeadReasonHeader(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		r      DeadReason
		header string
		text   string
	}{
		{DeadReason{Category: DeadSourceFailing, Adapter: "vehicles", Service: 5, Attempts: 4}.WithError(statusErr{503}),
			"source-failing adapter=vehicles service=5 attempts=4 error=http-status http-status=503",
			"the source failed transiently 4 times (adapter vehicles, service 5); last error: HTTP status 503"},
		{DeadReason{Category: DeadSourceFailing, Adapter: "gcvp", Service: 11, Attempts: 3}.WithError(sqlErr{"57P03"}),
			"source-failing adapter=gcvp service=11 attempts=3 error=sqlstate sqlstate=57P03",
			"the source failed transiently 3 times (adapter gcvp, service 11); last error: SQLSTATE 57P03"},
		{DeadReason{Category: DeadSourceFailing, Adapter: "cars ИВАНОВ", Service: 5, Attempts: 2}.WithError(errors.New(personal)),
			"source-failing adapter=cars service=5 attempts=2 error=other",
			"the source failed transiently 2 times (adapter cars, service 5); last error: an error (see the adapter's log)"},
		{DeadReason{Category: DeadNotARequest, Adapter: "demo"}.WithError(&json.SyntaxError{}),
			"not-a-request adapter=demo error=json",
			"the message is not a service request (adapter demo); last error: not valid JSON"},
		{DeadReason{Category: DeadNoReplyTopic, Adapter: "demo", Service: 93},
			"no-reply-topic adapter=demo service=93",
			"the service request names no reply topic: nobody could be answered (adapter demo, service 93)"},
		{DeadReason{Category: DeadAnswerForgotten, Adapter: "demo", Service: 2, AnsweredBy: "adapter-x", AnsweredAt: at},
			"answer-forgotten adapter=demo service=2 answered-by=adapter-x answered-at=2026-11-30T09:00:00Z",
			"answered by adapter process adapter-x at 2026-11-30T09:00:00Z, but the ledger no longer keeps that answer (it forgets answers after its retention) and the source is not asked twice (adapter demo, service 2)"},
		{DeadReason{Category: DeadReplyUnreadable, Error: ErrorNoRequest},
			"reply-unreadable error=no-request",
			"broker: a reply that cannot be correlated with a request; last error: names no request"},
		{DeadReason{Category: DeadUnauthenticated, Adapter: "kgd-adapter-1", Auth: AuthMissing},
			"unauthenticated adapter=kgd-adapter-1 auth=missing",
			"the service message or case check is not authenticated by the broker, and its source is not asked (adapter kgd-adapter-1): it carries no authenticator"},
		{DeadReason{Category: DeadAnswerUnauthenticated, Service: 37, Auth: AuthWrongAdapter},
			"answer-unauthenticated service=37 auth=wrong_adapter",
			"broker: an answer not authenticated by the adapter of its service, given to no request (service 37): it was made for another adapter"},
	} {
		if h := tt.r.Header(); h != tt.header {
			t.Errorf("Header = %q, want %q", h, tt.header)
		}
		got, ok := ParseDeadReason(tt.header)
		if !ok || got.String() != tt.text {
			t.Errorf("ParseDeadReason(%q) = %+v, %v; its text %q, want %q", tt.header, got, ok, got.String(), tt.text)
		}
		for _, word := range strings.FieldsFunc(personal, func(c rune) bool { return c == ' ' || c == ',' }) {
			if len(word) > 3 && (strings.Contains(tt.header, word) || strings.Contains(got.String(), word)) {
				t.Errorf("%q / %q quotes %q", tt.header, got.String(), word)
			}
		}
	}
	for _, h := range []string{
		"",
		"the source failed transiently 3 times (adapter demo); last error: " + personal,
		"source-failing adapter=demo error=" + personal,
		"source-failing adapter=ИВАНОВ",
		"source-failing adapter=demo adapter=demo",
		"source-failing service=1000",
		"source-failing http-status=200 ",
		"source-failing sqlstate=0800",
		"source-failing note=x",
		"source-failing attempts=01",
		"answer-forgotten answered-at=yesterday",
		"unauthenticated auth=" + personal,
		"unauthenticated auth=forged",
		"broker: " + personal,
	} {
		if r, ok := ParseDeadReason(h); ok {
			t.Errorf("ParseDeadReason(%q) = %+v, want refused", h, r)
		}
	}
}
