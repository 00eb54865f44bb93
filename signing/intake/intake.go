// Package intake reads a signed SendMessage as every signed endpoint takes one (the channels,
// reports, the dashboard login): under the size limits, with the messageDate window, the
// signature verified at the message time and only what the signature covers handed on; and it
// keeps the replay memory of the endpoints outside the request pipeline.
package intake

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// SignedRequest is a SendMessage whose signature verified. Info and Data are taken from what the
// signature covers: in the WS-Security placement from the signed Body, in the enveloped placement
// Data is the signed element and Info, which no signature covers there, is read from the envelope.
type SignedRequest struct {
	Raw []byte
	// Doc is the envelope as read from Raw, before verification (the request index reads the
	// journaled query from it: soap.JournaledQueryOfTree).
	Doc      *etree.Document
	Info     siobroker.RequestInfo
	Data     *etree.Element
	Verified *signing.Verified
	Now      time.Time // the clock when the message date was checked
}

// ReadSigned reads a SendMessage envelope under lim, refuses a messageDate outside ±window of the
// clock, verifies the signature at the message time and returns the signed content. Every signed
// endpoint (the channels, reports) reads requests through it. On refusal the fields learnt so far
// are filled, for the caller's journal.
func ReadSigned(ctx context.Context, body io.Reader, contentType string, lim soap.Limits, window time.Duration, clock siobroker.Clock,
	verify func(context.Context, *etree.Document, time.Time) (*signing.Verified, error)) (SignedRequest, error) {
	return ReadSignedOperation(ctx, soap.OpSendMessage, body, contentType, lim, window, clock, verify)
}

// ReadSignedOperation is ReadSigned for the request of operation op of the SyncChannel endpoint
// (soap.OpGetMaintenanceWindows), whose element holds the same request as SendMessage.
func ReadSignedOperation(ctx context.Context, op soap.Operation, body io.Reader, contentType string, lim soap.Limits, window time.Duration,
	clock siobroker.Clock, verify func(context.Context, *etree.Document, time.Time) (*signing.Verified, error)) (SignedRequest, error) {
	doc, raw, err := soap.ReadOperationEnvelope(body, contentType, lim, op)
	if err != nil {
		return SignedRequest{}, err
	}
	sr, err := verifyRequest(ctx, op, doc, window, clock, verify)
	sr.Raw = raw
	return sr, err
}

// VerifySendMessage is ReadSigned for an envelope already read (the asynchronous endpoint reads
// it first, to tell its contracts apart).
func VerifySendMessage(ctx context.Context, doc *etree.Document, window time.Duration, clock siobroker.Clock,
	verify func(context.Context, *etree.Document, time.Time) (*signing.Verified, error)) (SignedRequest, error) {
	return verifyRequest(ctx, soap.OpSendMessage, doc, window, clock, verify)
}

func verifyRequest(ctx context.Context, op soap.Operation, doc *etree.Document, window time.Duration, clock siobroker.Clock,
	verify func(context.Context, *etree.Document, time.Time) (*signing.Verified, error)) (SignedRequest, error) {
	sr := SignedRequest{Doc: doc}
	// requestInfo is read once before verification, only to learn the message time at which the
	// certificate must be valid; in the WS-Security placement it is read again from the signed
	// Body, and only that copy is used.
	info, _, err := parseRequest(op, soap.Body(doc))
	sr.Info = info
	if err != nil {
		return sr, err
	}
	sr.Now = clock.Now()
	if skew := sr.Now.Sub(info.MessageDate); skew > window || skew < -window {
		return sr, siobroker.Errorf(siobroker.CodeReplayDate,
			"messageDate %s is outside ±%s of the broker's time %s",
			siobroker.FormatTime(info.MessageDate), window, siobroker.FormatTime(sr.Now))
	}

	if sr.Verified, err = verify(ctx, doc, info.MessageDate); err != nil {
		return sr, err
	}
	switch sr.Verified.Placement {
	case signing.PlacementWSSE, signing.PlacementWSSEToken, signing.PlacementWSSETokenTimestamp:
		signedInfo, data, err := parseRequest(op, sr.Verified.Signed)
		if err != nil {
			return sr, err
		}
		if signedInfo.MessageID != info.MessageID || !signedInfo.MessageDate.Equal(info.MessageDate) {
			return sr, siobroker.Errorf(siobroker.CodeSigReference, "requestInfo differs from the signed Body")
		}
		sr.Info, sr.Data = signedInfo, data
	case signing.PlacementEnveloped:
		sr.Data = sr.Verified.Signed
	default:
		return sr, fmt.Errorf("verifier returned unknown placement %q", sr.Verified.Placement)
	}
	return sr, nil
}

// parseRequest locates and reads requestInfo and the data element of a request of op in a Body.
func parseRequest(op soap.Operation, body *etree.Element) (siobroker.RequestInfo, *etree.Element, error) {
	riEl, data, err := soap.RequestParts(body, op)
	if err != nil {
		return siobroker.RequestInfo{}, nil, err
	}
	info, err := soap.ParseRequestInfo(riEl)
	if err != nil {
		return siobroker.RequestInfo{}, nil, err
	}
	return info, data, nil
}
