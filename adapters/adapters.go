// Package adapters defines what a database adapter is: a Backend that answers one service's
// requests. The adapter runtime in routing carries messages to and from it; the backends live in
// subpackages named after what they talk to (demo, postgres and httpsource).
package adapters

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// Backend answers requests for the services it is configured for.
//
// A returned error means the source system failed (the runtime reports it as ADAPTER_ERROR, and
// may retry it); "no data about this subject" is not an error but a result with status ok, reason
// NO_DATA and no records. Query must honour ctx: the broker's deadline is on it.
type Backend interface {
	Query(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error)
}

// BackendFunc adapts a function to Backend.
type BackendFunc func(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error)

// Query calls f.
func (f BackendFunc) Query(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
	return f(ctx, req)
}

// transientError marks a failure worth retrying: the source may answer if asked again soon.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// Transient marks err as transient: the adapter runtime retries the query with back-off while
// the broker's deadline allows, instead of answering ADAPTER_ERROR at once.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

// IsTransient reports whether err, or an error it wraps, was marked with Transient.
func IsTransient(err error) bool {
	var t transientError
	return errors.As(err, &t)
}

// Params are the request values a backend may pass to its source (a postgres query's bind
// parameters, an http backend's SOAP body), and how each is read from a request. The list is
// fixed: a configuration names values, it never writes them into a query or a document itself.
var Params = map[string]func(schemas.ServiceRequest) string{
	"subject.iin": func(r schemas.ServiceRequest) string { return r.Subject.IIN },
	"subject.bin": func(r schemas.ServiceRequest) string { return r.Subject.BIN },
	"subject.id":  func(r schemas.ServiceRequest) string { return r.Subject.ID() },
	"case.number": func(r schemas.ServiceRequest) string { return r.Case.Number },
	"basis":       func(r schemas.ServiceRequest) string { return strconv.Itoa(int(r.Basis)) },
	"article":     func(r schemas.ServiceRequest) string { return r.Article },
	"signer_iin":  func(r schemas.ServiceRequest) string { return r.SignerIIN },
}

// ParamNames returns the names of Params, sorted.
func ParamNames() []string {
	names := make([]string, 0, len(Params))
	for n := range Params {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
