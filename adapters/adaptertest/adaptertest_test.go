package adaptertest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/schemas"
)

// fake is the smallest backend that meets the contract: an in-memory map, a source error, and a
// source that waits for ctx.
func fake(data map[string][]siobroker.Record, fail, hang bool) adapters.Backend {
	return adapters.BackendFunc(func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
		if err := ctx.Err(); err != nil {
			return siobroker.ServiceResult{}, fmt.Errorf("fake: %w", err)
		}
		switch {
		case fail:
			return siobroker.ServiceResult{}, errors.New("fake: SQLSTATE 42P01 secret_table")
		case hang:
			<-ctx.Done()
			return siobroker.ServiceResult{}, fmt.Errorf("fake: %w", ctx.Err())
		}
		res := siobroker.ServiceResult{Service: req.Service, Status: siobroker.StatusOK, Reason: siobroker.ReasonNoData}
		if r := data[req.Subject.ID()]; len(r) > 0 {
			res.Reason, res.Records = siobroker.ReasonOK, r
		}
		return res, nil
	})
}

func TestSuiteAcceptsAConformingBackend(t *testing.T) {
	data := map[string][]siobroker.Record{"850101300015": {{Type: "person", Fields: []siobroker.Field{
		{Name: "iin", Value: "850101300015"}, {Name: "birth_date", Value: "1985-01-01"}}}}}
	adaptertest.RunBackendSuite(t, adaptertest.Case{
		Service:     1,
		Backend:     fake(data, false, false),
		WithData:    []siobroker.Subject{{IIN: "850101300015"}},
		WithoutData: []siobroker.Subject{{IIN: "950707400057"}, {BIN: "990140000047"}},
		Failing:     func(*testing.T) adapters.Backend { return fake(nil, true, false) },
		FailText:    "secret_table",
		Hanging:     func(*testing.T) adapters.Backend { return fake(nil, false, true) },
	})
}

// fakeRegistry is the smallest registry that meets the contract: an in-memory map of cases, a
// source error, and a source that waits for ctx.
func fakeRegistry(cases map[string]siobroker.CaseFacts, fail, hang bool) adapters.CaseRegistry {
	return adapters.CaseRegistryFunc(func(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
		if err := ctx.Err(); err != nil {
			return schemas.CaseCheckResponse{}, fmt.Errorf("fake: %w", err)
		}
		switch {
		case fail:
			return schemas.CaseCheckResponse{}, errors.New("fake: SQLSTATE 42P01 secret_table")
		case hang:
			<-ctx.Done()
			return schemas.CaseCheckResponse{}, fmt.Errorf("fake: %w", ctx.Err())
		}
		facts, found := cases[fmt.Sprintf("%d/%s", req.Basis, req.Case.Number)]
		return adapters.CaseAnswer(req, found, facts)
	})
}

func TestRegistrySuiteAcceptsAConformingRegistry(t *testing.T) {
	open := siobroker.CaseFacts{Status: "open", Articles: []string{"216"},
		Participants: []siobroker.Participant{{IIN: "750312300458", Part: "supervising_prosecutor"}, {IIN: "860421301550", Part: "investigator"}}}
	closed := siobroker.CaseFacts{Status: "closed", Participants: []siobroker.Participant{{IIN: "750312300458", Part: "supervising_prosecutor"}}}
	cases := map[string]siobroker.CaseFacts{"1/261500031000123": open, "1/241500031000088": closed}
	adaptertest.RunRegistrySuite(t, adaptertest.RegistryCase{
		Registry: fakeRegistry(cases, false, false),
		Open:     adaptertest.KnownCase{CaseQuery: adaptertest.CaseQuery{Basis: 1, Case: siobroker.CaseRef{Number: "261500031000123"}}, Facts: open},
		Closed:   adaptertest.KnownCase{CaseQuery: adaptertest.CaseQuery{Basis: 1, Case: siobroker.CaseRef{Number: "241500031000088"}}, Facts: closed},
		Unknown:  []adaptertest.CaseQuery{{Basis: 6, Case: siobroker.CaseRef{Number: "261500031000123"}}},
		Outsider: "900114302034",
		Failing:  func(*testing.T) adapters.CaseRegistry { return fakeRegistry(nil, true, false) },
		FailText: "secret_table",
		Hanging:  func(*testing.T) adapters.CaseRegistry { return fakeRegistry(nil, false, true) },
	})
}
