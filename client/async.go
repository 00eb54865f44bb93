package client

import (
	"context"
	"fmt"
	"strings"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// AsyncExchange is one request of the asynchronous channel answered with q:asyncStatus: an ack
// or a status reply.
type AsyncExchange struct {
	Request   []byte
	Reply     []byte
	Info      soap.ResponseInfo
	Status    soap.AsyncStatus
	BrokerCN  string
	Placement signing.Placement
}

func (c *Client) asyncURL() string {
	if c.AsyncURL != "" {
		return c.AsyncURL
	}
	return strings.Replace(c.URL, "/SyncChannel/", "/AsyncChannel/", 1)
}

// SendAsync signs q and posts it to the asynchronous endpoint. The broker answers at once; the
// returned Status.MessageID is the broker's id, by which Status and Fetch ask about it.
func (c *Client) SendAsync(ctx context.Context, q siobroker.Query) (*AsyncExchange, error) {
	info := c.newInfo()
	ax, err := c.postStatus(ctx, soap.NewRequest(info, q), info)
	if err != nil {
		return ax, err
	}
	if ax.Status.CorrelationID != info.MessageID || ax.Status.State != siobroker.AsyncOnDelivery {
		return ax, fmt.Errorf("ack is for message %q in state %s, not this request %q on delivery",
			ax.Status.CorrelationID, ax.Status.State, info.MessageID)
	}
	return ax, nil
}

// Status asks for the delivery state of the asynchronous request with the broker's id messageID.
func (c *Client) Status(ctx context.Context, messageID string) (*AsyncExchange, error) {
	info := c.newInfo()
	ax, err := c.postStatus(ctx, soap.NewAsyncQueryRequest(info, soap.AsyncStatusQuery, messageID), info)
	if err != nil {
		return ax, err
	}
	if ax.Status.MessageID != messageID {
		return ax, fmt.Errorf("status is of request %q, not %q", ax.Status.MessageID, messageID)
	}
	return ax, nil
}

// Fetch fetches the signed reply of the asynchronous request with the broker's id messageID. The
// reply is the one produced for the original request: it verifies like a synchronous reply, its
// q:result names the original request's messageId and this client's signer.
func (c *Client) Fetch(ctx context.Context, messageID string) (*Exchange, error) {
	info := c.newInfo()
	ex, err := c.post(ctx, c.asyncURL(), soap.NewAsyncQueryRequest(info, soap.AsyncFetchQuery, messageID))
	if err != nil {
		return ex, err
	}
	if err := c.verifyResult(ex); err != nil {
		return ex, err
	}
	// In the WS-Security placement responseInfo is signed; in the enveloped one only the result
	// is, and the signer check below is what binds it.
	if ex.Info.MessageID != messageID {
		return ex, fmt.Errorf("fetched reply is %q, not %q", ex.Info.MessageID, messageID)
	}
	if ex.Result.SignerIIN != c.Signer.IIN() {
		return ex, fmt.Errorf("fetched reply answers signer %s, not %s", ex.Result.SignerIIN, c.Signer.IIN())
	}
	return ex, nil
}

// postStatus posts doc to the asynchronous endpoint and verifies a reply carrying q:asyncStatus that
// answers info.
func (c *Client) postStatus(ctx context.Context, doc *etree.Document, info siobroker.RequestInfo) (*AsyncExchange, error) {
	ex, err := c.post(ctx, c.asyncURL(), doc)
	if ex == nil {
		return nil, err
	}
	ax := &AsyncExchange{Request: ex.Request, Reply: ex.Reply}
	if err != nil {
		return ax, err
	}
	signed, v, err := c.verifySignature(ex)
	if err != nil {
		return ax, err
	}
	ax.BrokerCN, ax.Placement = ex.BrokerCN, ex.Placement
	body := v.Signed
	if v.Placement == signing.PlacementEnveloped {
		body = soap.Body(signed)
	}
	if ax.Info, ax.Status, err = soap.ParseAsyncStatusResponse(body); err != nil {
		return ax, fmt.Errorf("reply does not match the schema: %w", err)
	}
	if v.Placement == signing.PlacementEnveloped {
		if ax.Status, err = soap.ParseAsyncStatus(v.Signed); err != nil {
			return ax, fmt.Errorf("signed status does not match the schema: %w", err)
		}
	}
	if ax.Status.RequestMessageID != info.MessageID {
		return ax, fmt.Errorf("reply answers message %q, not this request %q", ax.Status.RequestMessageID, info.MessageID)
	}
	return ax, nil
}
