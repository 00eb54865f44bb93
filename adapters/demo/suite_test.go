package demo

import (
	"context"
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

// This file is the contract every adapters.Backend must meet, written without reference to the
// demo package so that it can move to a shared adapters test package as it stands.

// BackendCase describes one backend under test and the subjects to ask it about.
type BackendCase struct {
	Service int
	Backend adapters.Backend
	// WithData are subjects the backend has records about: it must answer ok/OK with records.
	WithData []siobroker.Subject
	// WithoutData are subjects it must answer ok/NO_DATA without records: unknown ones and ones
	// of a kind the service does not cover.
	WithoutData []siobroker.Subject
}

var (
	snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	isoDate   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// RunBackendSuite checks the behaviour the adapter runtime relies on: results carry the service
// number and status ok, data and no-data are told apart by the reason, records are well formed,
// a done context is an error wrapping ctx.Err(), and concurrent questions get the answers that
// sequential ones do.
func RunBackendSuite(t *testing.T, c BackendCase) {
	t.Helper()
	t.Run("with data", func(t *testing.T) {
		for _, s := range c.WithData {
			res := queryOK(t, c, s)
			if res.Reason != siobroker.ReasonOK || len(res.Records) == 0 {
				t.Errorf("service %d, subject %s: reason %q with %d records, want OK with records", c.Service, s.ID(), res.Reason, len(res.Records))
			}
			checkRecords(t, c.Service, res.Records)
		}
	})
	t.Run("without data", func(t *testing.T) {
		for _, s := range c.WithoutData {
			res := queryOK(t, c, s)
			if res.Reason != siobroker.ReasonNoData || len(res.Records) != 0 {
				t.Errorf("service %d, subject %s: reason %q with %d records, want NO_DATA without records", c.Service, s.ID(), res.Reason, len(res.Records))
			}
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		subjects := append(append([]siobroker.Subject(nil), c.WithData...), c.WithoutData...)
		if len(subjects) == 0 {
			t.Skip("no subjects to ask about")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.Backend.Query(ctx, request(c.Service, subjects[0])); !errors.Is(err, context.Canceled) {
			t.Errorf("service %d: cancelled context gave %v, want an error wrapping context.Canceled", c.Service, err)
		}
		ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		if _, err := c.Backend.Query(ctx, request(c.Service, subjects[0])); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("service %d: expired deadline gave %v, want an error wrapping context.DeadlineExceeded", c.Service, err)
		}
	})
	t.Run("concurrent use", func(t *testing.T) {
		subjects := append(append([]siobroker.Subject(nil), c.WithData...), c.WithoutData...)
		want := make([]siobroker.ServiceResult, len(subjects))
		for i, s := range subjects {
			want[i] = queryOK(t, c, s)
		}
		const workers = 8
		var wg sync.WaitGroup
		errs := make(chan string, workers*len(subjects))
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range subjects {
					i := (k + w) % len(subjects) // each worker starts elsewhere, to mix the order
					got, err := c.Backend.Query(context.Background(), request(c.Service, subjects[i]))
					if err != nil || !reflect.DeepEqual(got, want[i]) {
						errs <- subjects[i].ID()
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for id := range errs {
			t.Errorf("service %d, subject %s: concurrent answer differs from the sequential one", c.Service, id)
		}
	})
}

func request(service int, s siobroker.Subject) schemas.ServiceRequest {
	return schemas.ServiceRequest{
		RequestID: "test-request",
		Service:   service,
		Basis:     siobroker.BasisCriminal,
		Case:      siobroker.CaseRef{Number: "255100031000123"},
		Subject:   s,
		SentAt:    time.Date(2026, 1, 15, 10, 0, 0, 0, siobroker.Astana),
	}
}

func queryOK(t *testing.T, c BackendCase, s siobroker.Subject) siobroker.ServiceResult {
	t.Helper()
	res, err := c.Backend.Query(context.Background(), request(c.Service, s))
	if err != nil {
		t.Fatalf("service %d, subject %s: %v", c.Service, s.ID(), err)
	}
	if res.Service != c.Service || res.Status != siobroker.StatusOK {
		t.Errorf("service %d, subject %s: result for service %d with status %q, want service %d, status ok", c.Service, s.ID(), res.Service, res.Status, c.Service)
	}
	return res
}

// checkRecords wants snake_case record types and field names, no empty or duplicate fields, and
// YYYY-MM-DD in every field whose name says it is a date.
func checkRecords(t *testing.T, service int, records []siobroker.Record) {
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
