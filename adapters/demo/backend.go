package demo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// ErrUnknownService is returned by NewBackend for a number outside 1..93.
var ErrUnknownService = errors.New("demo: no such service")

// backend answers one service from a Dataset. It holds nothing mutable: every answer is computed
// from the immutable dataset and a random source private to the call.
type backend struct {
	d       *Dataset
	service catalogEntry
}

// NewBackend returns the demo backend for one service of Appendix 2.
func NewBackend(d *Dataset, service int) (adapters.Backend, error) {
	if service < siobroker.FirstService || service > siobroker.LastService {
		return nil, fmt.Errorf("%w: %d (services are numbered %d to %d)", ErrUnknownService, service, siobroker.FirstService, siobroker.LastService)
	}
	if d == nil {
		return nil, errors.New("demo: nil dataset")
	}
	return backend{d: d, service: catalog[service-1]}, nil
}

// NewBackends returns the demo backends of all 93 services, keyed by service number.
func NewBackends(d *Dataset) map[int]adapters.Backend {
	out := make(map[int]adapters.Backend, len(catalog))
	for _, e := range catalog {
		out[e.No] = backend{d: d, service: e}
	}
	return out
}

// Query answers req. Unknown subjects and subjects the service does not cover are answered with
// NO_DATA, as a source system would; only a request the service cannot make sense of (another
// service's number, no subject, both an IIN and a BIN) is an error.
func (b backend) Query(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
	no := b.service.No
	if err := ctx.Err(); err != nil {
		return siobroker.ServiceResult{}, fmt.Errorf("demo service %d: %w", no, err)
	}
	if req.Service != no {
		return siobroker.ServiceResult{}, fmt.Errorf("demo service %d: request is for service %d", no, req.Service)
	}
	s := req.Subject
	if (s.IIN == "") == (s.BIN == "") {
		return siobroker.ServiceResult{}, fmt.Errorf("demo service %d: the subject needs exactly one of IIN and BIN", no)
	}
	result := siobroker.ServiceResult{Service: no, Status: siobroker.StatusOK, Reason: siobroker.ReasonNoData}
	q := query{d: b.d}
	if s.IIN != "" && b.service.SubjectKinds&PersonSubject != 0 {
		if i, ok := b.d.byIIN[s.IIN]; ok {
			q.person = &b.d.people[i]
		}
	}
	if s.BIN != "" && b.service.SubjectKinds&OrganisationSubject != 0 {
		if i, ok := b.d.byBIN[s.BIN]; ok {
			q.org = &b.d.orgs[i]
		}
	}
	if q.person == nil && q.org == nil {
		return result, nil
	}
	q.generator = &generator{r: b.d.serviceRand(no, s.ID()), d: b.d}
	records := b.service.answer(q)
	if len(records) > 0 {
		result.Reason, result.Records = siobroker.ReasonOK, records
	}
	return result, nil
}

// serviceRand is the random source for the details that only one service shows about one subject
// (a border crossing, a train ticket). Seeding it from the dataset seed, the service and the
// subject keeps answers deterministic and independent of the order in which questions arrive.
func (d *Dataset) serviceRand(service int, id string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(id))
	return rand.New(rand.NewPCG(uint64(d.seed)^h.Sum64(), uint64(service)*0x9e37_79b9_7f4a_7c15))
}

// query is one question to a service: the subject found in the dataset (exactly one of person and
// org is set) and a generator whose random source is private to this question. Answer functions
// must only read the dataset.
type query struct {
	*generator
	d      *Dataset
	person *Person
	org    *Organisation
}

// id is the subject's IIN or BIN.
func (q query) id() string {
	if q.person != nil {
		return q.person.IIN
	}
	return q.org.BIN
}
