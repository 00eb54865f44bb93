// Package client is the code path of `siobroker send`: build a SyncChannel request, sign it with
// a user's certificate, post it, and accept the reply only if its signature verifies against the
// trusted roots and it answers this request. The end-to-end tests drive the broker through it.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// Client sends signed requests to one broker.
type Client struct {
	URL string
	// AsyncURL is the asynchronous endpoint; "" means URL with SyncChannel replaced by
	// AsyncChannel.
	AsyncURL  string
	Signer    *signing.Signer
	Verifier  *signing.Verifier // checks the broker's reply signature
	Placement signing.Placement
	HTTP      *http.Client
	Clock     siobroker.Clock
	SenderID  string
	ServiceID string
	// MaxReplyBytes bounds what is read of a reply; 0 means 16 MiB.
	MaxReplyBytes int64
}

// Exchange is one request and its reply, as sent and received.
type Exchange struct {
	Request   []byte
	Reply     []byte
	Info      soap.ResponseInfo
	Result    soap.Result
	BrokerCN  string // the subject of the certificate that signed the reply
	Placement signing.Placement
}

// FaultError is a SOAP fault the broker answered with. It is a distinct type so that a fault is
// never confused with a reply the client itself refused (which also carries codes).
type FaultError struct {
	Fault *siobroker.Error
}

func (e *FaultError) Error() string { return "SOAP fault " + e.Fault.Error() }

// Send signs and posts q. A SOAP fault is returned as a *FaultError; the exchange is returned
// with any error, so that the bytes can still be saved.
func (c *Client) Send(ctx context.Context, q siobroker.Query) (*Exchange, error) {
	info := c.newInfo()
	ex, err := c.post(ctx, c.URL, soap.NewRequest(info, q))
	if err != nil {
		return ex, err
	}
	if err := c.verifyReply(ex, info); err != nil {
		return ex, err
	}
	return ex, nil
}

func (c *Client) newInfo() siobroker.RequestInfo {
	return siobroker.RequestInfo{
		MessageID:   uuid.NewString(),
		ServiceID:   c.ServiceID,
		MessageDate: c.Clock.Now(),
		SenderID:    c.SenderID,
	}
}

// Prepared is a request built and signed ahead of sending: a load generator signs its requests
// before it starts the clock, so that its own signing does not compete with the broker it measures.
type Prepared struct {
	Info siobroker.RequestInfo
	Raw  []byte
}

// Prepare builds and signs the request for q, with a fresh messageId and the current time.
func (c *Client) Prepare(q siobroker.Query) (Prepared, error) {
	info := c.newInfo()
	raw, err := c.sign(soap.NewRequest(info, q))
	if err != nil {
		return Prepared{}, err
	}
	return Prepared{Info: info, Raw: raw}, nil
}

// SendPrepared posts p. With verify it checks the reply as Send does. Without, the reply is not
// parsed: an HTTP 200 carrying a SendMessageResponse counts as answered (the broker answers every
// fault with another status, and those are still read as a *FaultError). Only a load generator
// that accounts for its own cost should skip the check.
func (c *Client) SendPrepared(ctx context.Context, p Prepared, verify bool) (*Exchange, error) {
	ex, err := c.postRaw(ctx, c.URL, p.Raw, verify)
	if err != nil || !verify {
		return ex, err
	}
	if err := c.verifyReply(ex, p.Info); err != nil {
		return ex, err
	}
	return ex, nil
}

// sign signs doc in the client's placement and serialises it.
func (c *Client) sign(doc *etree.Document) ([]byte, error) {
	if err := c.Signer.Sign(doc, c.Placement); err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		return nil, fmt.Errorf("serialize request: %w", err)
	}
	return raw, nil
}

// post signs doc, posts it to url and reads the reply. A SOAP fault is returned as a *FaultError.
// The reply's signature is not checked here.
func (c *Client) post(ctx context.Context, url string, doc *etree.Document) (*Exchange, error) {
	raw, err := c.sign(doc)
	if err != nil {
		return nil, err
	}
	return c.postRaw(ctx, url, raw, true)
}

// postRaw posts a signed request. parseOK looks for a SOAP fault in an HTTP 200 reply too.
func (c *Client) postRaw(ctx context.Context, url string, raw []byte, parseOK bool) (*Exchange, error) {
	ex := &Exchange{Request: raw}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return ex, fmt.Errorf("build HTTP request: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `""`)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return ex, fmt.Errorf("post to %s: %w", url, err)
	}
	defer resp.Body.Close()
	limit := c.MaxReplyBytes
	if limit <= 0 {
		limit = 16 << 20
	}
	ex.Reply, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return ex, fmt.Errorf("read reply: %w", err)
	}
	if int64(len(ex.Reply)) > limit {
		return ex, fmt.Errorf("reply exceeds %d bytes", limit)
	}
	if parseOK || resp.StatusCode != http.StatusOK {
		if fault, ok := soap.ParseFault(ex.Reply); ok {
			return ex, &FaultError{Fault: fault}
		}
	}
	if resp.StatusCode != http.StatusOK {
		return ex, fmt.Errorf("broker answered HTTP %d without a SOAP fault", resp.StatusCode)
	}
	if !parseOK && !bytes.Contains(ex.Reply, []byte("SendMessageResponse")) {
		return ex, errors.New("broker answered HTTP 200 without a SendMessageResponse")
	}
	return ex, nil
}

func (c *Client) verifyReply(ex *Exchange, info siobroker.RequestInfo) error {
	if err := c.verifyResult(ex); err != nil {
		return err
	}
	if ex.Info.CorrelationID != info.MessageID || ex.Result.RequestMessageID != info.MessageID {
		return fmt.Errorf("reply answers message %q, not this request %q", ex.Result.RequestMessageID, info.MessageID)
	}
	return nil
}

// verifySignature checks the reply's signature and placement, and returns the document and what
// the signature covers.
func (c *Client) verifySignature(ex *Exchange) (*etree.Document, *signing.Verified, error) {
	doc, _, err := soap.ReadResponseEnvelope(bytes.NewReader(ex.Reply), "text/xml; charset=utf-8",
		soap.Limits{MaxBytes: int64(len(ex.Reply)) + 1, MaxElements: 1 << 20, MaxDepth: 64})
	if err != nil {
		return nil, nil, fmt.Errorf("reply is not a valid envelope: %w", err)
	}
	// The broker's certificate must be valid now, when the reply is relied on; responseDate is
	// not used for this because in the enveloped placement it is not signed.
	v, err := c.Verifier.Verify(context.Background(), doc, c.Clock.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("reply signature does not verify: %w", err)
	}
	if v.Placement != c.Placement {
		return nil, nil, fmt.Errorf("reply is signed in the %s placement, the request in %s", v.Placement, c.Placement)
	}
	ex.BrokerCN, ex.Placement = v.Certificate.Subject.CommonName, v.Placement
	return doc, v, nil
}

// verifyResult verifies a reply carrying q:result and reads it into ex.
func (c *Client) verifyResult(ex *Exchange) error {
	doc, v, err := c.verifySignature(ex)
	if err != nil {
		return err
	}

	body := v.Signed
	if v.Placement == signing.PlacementEnveloped {
		// Only the result is signed here: read responseInfo from the envelope, the result from
		// the signed element.
		body = soap.Body(doc)
	}
	ex.Info, ex.Result, err = soap.ParseResponse(body)
	if err != nil {
		return fmt.Errorf("reply does not match the schema: %w", err)
	}
	if v.Placement == signing.PlacementEnveloped {
		if ex.Result, err = soap.ParseResult(v.Signed); err != nil {
			return fmt.Errorf("signed result does not match the schema: %w", err)
		}
	}
	return nil
}

// DefaultHTTPClient has a timeout longer than any service timeout the broker would apply.
func DefaultHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout}
}
