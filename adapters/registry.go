package adapters

import (
	"context"

	"github.com/sio-pso/siobroker/schemas"
)

// CaseRegistry answers case checks (§5 of the Rules): does the case exist, and is it in the
// signer's proceedings. An error means the registry could not answer, which is not the same as
// "no such case".
type CaseRegistry interface {
	Check(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error)
}

// CaseRegistryFunc adapts a function to CaseRegistry.
type CaseRegistryFunc func(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error)

// Check calls f.
func (f CaseRegistryFunc) Check(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
	return f(ctx, req)
}
