// Package routing carries one message per requested service from the broker to the adapter for
// that service, and the adapter's answer back, over watermill. The same handlers run on the
// in-process GoChannel of the embedded default and on any other watermill pub/sub: only the
// Publisher and Subscriber passed in differ.
//
// The broker side is the Dispatcher: scatter one ServiceRequest per service, gather the
// ServiceResponses from the broker instance's own reply topic through a correlation map, and
// answer "timeout" for any service whose adapter does not answer in time; an answer that comes
// after that goes to the Dispatcher's OnLateAnswer hook (DispatcherConfig), and a copy of one
// already used is recognised and dropped. The adapter side is the AdapterRuntime: consume a
// service's topic, ask the Backend, publish the answer to the reply topic named in the request.
// Everything around asking the Backend (decoding, the served-service check, dedup, the deadline,
// the ledger, retries, dead-lettering, publishing) is watermill middleware, one concern a file, in
// package routing/middleware. The Dispatcher, AdapterRuntime and RegistryRuntime are each built
// from their Config (NewDispatcher, NewAdapterRuntime, NewRegistryRuntime), and nothing is set on
// them afterwards.
package routing

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker/schemas"
)

// ReplyTopicPrefix starts the name of every broker instance's reply topic.
const ReplyTopicPrefix = "sio.reply."

// ErrTransportUnavailable is wrapped by a Publisher's error when the message transport cannot
// take messages for a while (its connection is down or being replaced), so that the message may
// be published again later. A publish that fails with any other error is not tried again.
var ErrTransportUnavailable = errors.New("the message transport is unavailable")

// CorrelationKey names one service of one request: "request/service" (schemas.CorrelationKey). It
// is the correlation_id of every log line about that service of the request, and the transport
// message id, so that a redelivered copy can be recognised.
func CorrelationKey(requestID string, service int) string {
	return schemas.CorrelationKey(requestID, service)
}

func newJSONMessage(uuid string, v any, meta map[string]string) (*message.Message, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	msg := message.NewMessage(uuid, payload)
	for k, val := range meta {
		msg.Metadata.Set(k, val)
	}
	return msg, nil
}

func requestMetadata(req schemas.ServiceRequest) map[string]string {
	return map[string]string{
		schemas.MetaRequestID: req.RequestID,
		schemas.MetaService:   strconv.Itoa(req.Service),
		schemas.MetaReplyTo:   req.ReplyTo,
		schemas.MetaMessageID: req.MessageID,
	}
}

// NewMessageID returns a fresh transport message id.
func NewMessageID() string { return watermill.NewUUID() }
