package middleware

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// Adapter is the adapter a stack answers for. Its name goes into every answer (for tracing) and
// every dead-letter reason; its clock stamps them.
type Adapter struct {
	Name  string
	Clock siobroker.Clock
}

// Final returns the answer that carries result to req's reply topic as the source's answer: Dedup
// remembers it, and Ledger records the request answered once it is published.
func (a Adapter) Final(req schemas.ServiceRequest, result siobroker.ServiceResult) (*message.Message, error) {
	return newAnswer(req, a.response(req, result), true)
}

// Provisional is Final for an answer that is not the source's last word (the adapter refused the
// request, could not read the ledger, or gave up on the source): it is published all the same,
// but neither remembered nor recorded, so that a copy of the request is asked again.
func (a Adapter) Provisional(req schemas.ServiceRequest, result siobroker.ServiceResult) (*message.Message, error) {
	return newAnswer(req, a.response(req, result), false)
}

func (a Adapter) response(req schemas.ServiceRequest, result siobroker.ServiceResult) schemas.ServiceResponse {
	return schemas.ServiceResponse{RequestID: req.RequestID, Service: req.Service, Result: result,
		Adapter: a.Name, AnsweredAt: a.Clock.Now()}
}

type answerKey struct{}

// answer is what an answer message carries for the middleware above the handler that made it,
// in its context: what goes on the wire is its payload and metadata only.
type answer struct {
	resp    schemas.ServiceResponse // the payload, unencoded
	final   bool
	settled []func(published bool) // called by Publish once it is done with the answer
}

// newAnswer returns the message that carries resp to req's reply topic: a new transport id each
// time (a copy given again is a new message), and the ids of the request in the metadata.
func newAnswer(req schemas.ServiceRequest, resp schemas.ServiceResponse, final bool) (*message.Message, error) {
	payload, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encode answer to %s service %d: %w", req.RequestID, req.Service, err)
	}
	m := message.NewMessage(watermill.NewUUID(), payload)
	m.Metadata.Set(schemas.MetaRequestID, req.RequestID)
	m.Metadata.Set(schemas.MetaService, strconv.Itoa(req.Service))
	m.Metadata.Set(schemas.MetaCorrelation, schemas.CorrelationKey(req.RequestID, req.Service))
	m.Metadata.Set(schemas.MetaMessageID, req.MessageID)
	m.SetContext(context.WithValue(context.Background(), answerKey{}, &answer{resp: resp, final: final}))
	return m, nil
}

// answerOf returns what m carries as an answer; nil when m was not made by newAnswer.
func answerOf(m *message.Message) *answer {
	a, _ := m.Context().Value(answerKey{}).(*answer)
	return a
}

// onSettled makes Publish call f once it is done with m: published says whether m went out. It
// reports false, registering nothing, when m was not made by newAnswer.
func onSettled(m *message.Message, f func(published bool)) bool {
	a := answerOf(m)
	if a == nil {
		return false
	}
	a.settled = append(a.settled, f)
	return true
}

// settle calls what onSettled registered for m, once.
func settle(m *message.Message, published bool) {
	a := answerOf(m)
	if a == nil {
		return
	}
	fs := a.settled
	a.settled = nil
	for _, f := range fs {
		f(published)
	}
}

func errorResult(service int, message string) siobroker.ServiceResult {
	return siobroker.ServiceResult{Service: service, Status: siobroker.StatusError,
		Reason: siobroker.ReasonAdapterError, Message: message}
}
