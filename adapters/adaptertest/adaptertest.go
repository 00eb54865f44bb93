// Package adaptertest is the contract every adapters.Backend must meet, as one shared suite:
// RunBackendSuite. A backend counts as ready only when its tests pass it, with hooks that make its
// source fail and hang, as watermill's pub/sub backends all pass pubsub/tests.
package adaptertest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// Case describes one backend under test, the subjects to ask it about, and how to make its source
// misbehave.
type Case struct {
	Service int
	Backend adapters.Backend
	// WithData are subjects the backend has records about: it must answer ok/OK with records.
	WithData []siobroker.Subject
	// WithoutData are subjects it must answer ok/NO_DATA without records: unknown ones and ones
	// of a kind the service does not cover.
	WithoutData []siobroker.Subject

	// Failing returns a backend for the same service whose source answers with an error (a
	// missing table, a closed pool, a 500). Nil skips the upstream-error checks.
	Failing func(t *testing.T) adapters.Backend
	// FailText, if set, is text the failing source puts in its error (a table name, a message
	// body): it must not appear in the result the backend returns.
	FailText string
	// Hanging returns a backend for the same service whose source never answers until the
	// request's context ends (pg_sleep, a handler blocked on r.Context()). Nil skips the
	// timeout and cancellation checks against a live source.
	Hanging func(t *testing.T) adapters.Backend
	// Prompt bounds how long after its context ends a backend may take to return. Zero means 2s.
	Prompt time.Duration
}

var (
	snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	isoDate   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// RunBackendSuite checks the behaviour the adapter runtime relies on: results carry the service
// number and status ok, data and no-data are told apart by the reason, records are well formed, a
// failing source is an error whose text stays out of the result, a done context (already done, or
// ending while the source hangs) is a prompt error wrapping ctx.Err(), and concurrent questions
// get the answers that sequential ones do.
func RunBackendSuite(t *testing.T, c Case) {
	t.Helper()
	if c.Backend == nil {
		t.Fatal("adaptertest: Case.Backend is nil")
	}
	if len(c.WithData) == 0 {
		t.Fatal("adaptertest: Case.WithData is empty: every backend must show it can answer")
	}
	t.Run("with data", func(t *testing.T) { testWithData(t, c) })
	t.Run("without data", func(t *testing.T) { testWithoutData(t, c) })
	t.Run("upstream error", func(t *testing.T) { testUpstreamError(t, c) })
	t.Run("done context", func(t *testing.T) { testDoneContext(t, c) })
	t.Run("timeout", func(t *testing.T) { testTimeout(t, c) })
	t.Run("cancellation", func(t *testing.T) { testCancellation(t, c) })
	t.Run("concurrent use", func(t *testing.T) { testConcurrentUse(t, c) })
}

// subjects returns all the subjects of c: those with data first, then those without.
func (c Case) subjects() []siobroker.Subject {
	return append(append([]siobroker.Subject(nil), c.WithData...), c.WithoutData...)
}

// prompt returns c.Prompt, or its default of 2s when unset.
func (c Case) prompt() time.Duration {
	if c.Prompt <= 0 {
		return 2 * time.Second
	}
	return c.Prompt
}

// testWithData wants ok/OK with well-formed records for every subject of c.WithData.
func testWithData(t *testing.T, c Case) {
	for _, s := range c.WithData {
		res := queryOK(t, c, s)
		if res.Reason != siobroker.ReasonOK || len(res.Records) == 0 {
			t.Errorf("service %d, subject %s: reason %q with %d records, want OK with records", c.Service, s.ID(), res.Reason, len(res.Records))
		}
		CheckRecords(t, c.Service, res.Records)
	}
}

// testWithoutData wants ok/NO_DATA without records for every subject of c.WithoutData.
func testWithoutData(t *testing.T, c Case) {
	for _, s := range c.WithoutData {
		res := queryOK(t, c, s)
		if res.Reason != siobroker.ReasonNoData || len(res.Records) != 0 {
			t.Errorf("service %d, subject %s: reason %q with %d records, want NO_DATA without records", c.Service, s.ID(), res.Reason, len(res.Records))
		}
	}
}

// testUpstreamError wants a failing source to give a non-context error, an empty result, and
// none of its error text in that result.
func testUpstreamError(t *testing.T, c Case) {
	if c.Failing == nil {
		t.Skip("no Failing hook")
	}
	b := c.Failing(t)
	res, err := b.Query(context.Background(), Request(c.Service, c.WithData[0]))
	if err == nil {
		t.Fatalf("service %d: a failing source gave no error but %+v", c.Service, res)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("service %d: a failing source gave a context error %v; the runtime would report a timeout", c.Service, err)
	}
	if res.Message != "" || len(res.Records) != 0 || res.Reason == siobroker.ReasonOK || res.Reason == siobroker.ReasonNoData {
		t.Errorf("service %d: with an error the result must be empty, got %+v", c.Service, res)
	}
	body, _ := json.Marshal(res)
	for _, leak := range []string{err.Error(), c.FailText} {
		if leak != "" && strings.Contains(string(body), leak) {
			t.Errorf("service %d: the result %s carries the source's error text %q", c.Service, body, leak)
		}
	}
}

// testDoneContext wants a context already cancelled, or already past its deadline, to give an
// error wrapping ctx.Err().
func testDoneContext(t *testing.T, c Case) {
	subject := c.subjects()[0]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Backend.Query(ctx, Request(c.Service, subject)); !errors.Is(err, context.Canceled) {
		t.Errorf("service %d: cancelled context gave %v, want an error wrapping context.Canceled", c.Service, err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := c.Backend.Query(ctx, Request(c.Service, subject)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("service %d: expired deadline gave %v, want an error wrapping context.DeadlineExceeded", c.Service, err)
	}
}

// testTimeout wants a hanging source to return promptly, with an error wrapping
// context.DeadlineExceeded, once the request's deadline passes.
func testTimeout(t *testing.T, c Case) {
	if c.Hanging == nil {
		t.Skip("no Hanging hook")
	}
	b := c.Hanging(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	err := hang(t, c, b, ctx, cancel, c.prompt())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("service %d: a hanging source past the deadline gave %v, want an error wrapping context.DeadlineExceeded", c.Service, err)
	}
}

// testCancellation wants a hanging source to return promptly, with an error wrapping
// context.Canceled, once the request's context is cancelled.
func testCancellation(t *testing.T, c Case) {
	if c.Hanging == nil {
		t.Skip("no Hanging hook")
	}
	b := c.Hanging(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.AfterFunc(150*time.Millisecond, cancel)
	defer timer.Stop()
	err := hang(t, c, b, ctx, cancel, c.prompt())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("service %d: a hanging source cancelled gave %v, want an error wrapping context.Canceled", c.Service, err)
	}
}

// testConcurrentUse asks about every subject from several goroutines at once and wants the
// answers that sequential questions got.
func testConcurrentUse(t *testing.T, c Case) {
	subjects := c.subjects()
	want := make([]siobroker.ServiceResult, len(subjects))
	for i, s := range subjects {
		want[i] = queryOK(t, c, s)
	}
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan string, workers*len(subjects))
	for w := range workers {
		wg.Go(func() {
			for k := range subjects {
				i := (k + w) % len(subjects) // each worker starts elsewhere, to mix the order
				got, err := c.Backend.Query(context.Background(), Request(c.Service, subjects[i]))
				if err != nil || !reflect.DeepEqual(got, want[i]) {
					errs <- subjects[i].ID()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for id := range errs {
		t.Errorf("service %d, subject %s: concurrent answer differs from the sequential one", c.Service, id)
	}
}

// hang asks b, whose source hangs, and wants it back within prompt of ctx ending. It returns the
// error b gave.
func hang(t *testing.T, c Case, b adapters.Backend, ctx context.Context, cancel context.CancelFunc, prompt time.Duration) error {
	t.Helper()
	type answer struct {
		res siobroker.ServiceResult
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := b.Query(ctx, Request(c.Service, c.WithData[0]))
		done <- answer{res, err}
	}()
	select {
	case a := <-done:
		if a.err == nil {
			t.Errorf("service %d: a hanging source gave no error but %+v", c.Service, a.res)
		}
		return a.err
	case <-ctx.Done():
	}
	select {
	case a := <-done:
		return a.err
	case <-time.After(prompt):
		cancel()
		t.Fatalf("service %d: still waiting %s after the context ended", c.Service, prompt)
		return nil
	}
}

// Request is the request the suite sends: service s about subject, under a criminal case.
func Request(service int, s siobroker.Subject) schemas.ServiceRequest {
	return schemas.ServiceRequest{
		RequestID: "test-request",
		MessageID: "test-message",
		Service:   service,
		Basis:     siobroker.BasisCriminal,
		Case:      siobroker.CaseRef{Number: "255100031000123"},
		Article:   "190",
		Subject:   s,
		SignerIIN: "850101300015",
		SentAt:    time.Date(2026, 1, 15, 10, 0, 0, 0, siobroker.Astana),
	}
}

func queryOK(t *testing.T, c Case, s siobroker.Subject) siobroker.ServiceResult {
	t.Helper()
	res, err := c.Backend.Query(context.Background(), Request(c.Service, s))
	if err != nil {
		t.Fatalf("service %d, subject %s: %v", c.Service, s.ID(), err)
	}
	if res.Service != c.Service || res.Status != siobroker.StatusOK {
		t.Errorf("service %d, subject %s: result for service %d with status %q, want service %d, status ok", c.Service, s.ID(), res.Service, res.Status, c.Service)
	}
	return res
}

// CheckRecords wants snake_case record types and field names, no empty or duplicate fields, and
// YYYY-MM-DD in every field whose name says it is a date.
func CheckRecords(t *testing.T, service int, records []siobroker.Record) {
	t.Helper()
	for _, r := range records {
		if !snakeCase.MatchString(r.Type) {
			t.Errorf("service %d: record type %q is not snake_case", service, r.Type)
		}
		if len(r.Fields) == 0 {
			t.Errorf("service %d: record %q has no fields", service, r.Type)
		}
		seen := map[string]bool{}
		for _, f := range r.Fields {
			if !snakeCase.MatchString(f.Name) {
				t.Errorf("service %d: %s.%s is not snake_case", service, r.Type, f.Name)
			}
			if seen[f.Name] {
				t.Errorf("service %d: %s.%s appears twice", service, r.Type, f.Name)
			}
			seen[f.Name] = true
			if strings.TrimSpace(f.Value) == "" {
				t.Errorf("service %d: %s.%s is empty", service, r.Type, f.Name)
			}
			if strings.HasSuffix(f.Name, "_date") && !isoDate.MatchString(f.Value) {
				t.Errorf("service %d: %s.%s = %q, want YYYY-MM-DD", service, r.Type, f.Name, f.Value)
			}
		}
	}
}

// RequireReachable reports whether a service the integration tests need (PostgreSQL, AMQP) can be
// used: when err is not nil, the test fails if CI=true and is skipped otherwise.
func RequireReachable(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if ciEnv() {
		t.Fatalf("%s is not reachable and CI=true: %v", what, err)
	}
	t.Skipf("%s is not reachable (set CI=true to make this a failure): %v", what, err)
}
