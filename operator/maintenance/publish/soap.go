package publish

import (
	"context"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing/intake"
)

// StatusWindows is the responseInfo/status/code of a GetMaintenanceWindows reply.
const StatusWindows = "SCSS001"

// GetMaintenanceWindows answers the operation GetMaintenanceWindows of the SyncChannel endpoint:
// a signed op:GetMaintenanceWindows whose data holds q:maintenanceQuery, read and verified as
// every signed request is (size limits, messageDate within the window, the signature and the
// signer's chain at the message time, only the signed content used), whose issuedAt is within
// the window too, whose messageId and signed content were not seen before, and whose signer is
// a registered user the registry lets act now. The answer is op:GetMaintenanceWindowsResponse
// holding q:maintenanceWindows, signed in the request's placement; a refusal is an error with
// its code, for the endpoint to answer as a SOAP fault. Nothing is journaled (see the package).
func (p *Publisher) GetMaintenanceWindows(ctx context.Context, body io.Reader, contentType string) ([]byte, error) {
	out, signer, err := p.getMaintenanceWindows(ctx, body, contentType)
	if err != nil {
		code := siobroker.ErrorCode(err)
		switch {
		case code == siobroker.CodeInternal || code == siobroker.CodeUnavailable:
			p.log.ErrorContext(ctx, "GetMaintenanceWindows failed", "code", string(code), "error", err)
		case signer == "":
			// Not authenticated: anyone's, and cheap to send many of; the fault says enough.
			p.log.DebugContext(ctx, "GetMaintenanceWindows refused before its signature verified", "code", string(code))
		default:
			p.log.InfoContext(ctx, "GetMaintenanceWindows refused", "signer_iin", signer, "code", string(code), "reason", siobroker.ErrorMessage(err))
		}
	}
	return out, err
}

func (p *Publisher) getMaintenanceWindows(ctx context.Context, body io.Reader, contentType string) ([]byte, string, error) {
	sr, err := intake.ReadSignedOperation(ctx, soap.OpGetMaintenanceWindows, body, contentType, p.cfg.Limits, p.cfg.MessageDateWindow,
		p.cfg.Clock, p.cfg.Verify)
	if err != nil {
		signer := ""
		if sr.Verified != nil {
			signer = sr.Verified.SignerIIN
		}
		return nil, signer, err
	}
	v, now := sr.Verified, sr.Now
	// Marked after verification, so that unsigned traffic cannot burn a signer's ids.
	if err := p.replay.Mark(ctx, v.SignerIIN, sr.Info.MessageID, v.Signed, now); err != nil {
		return nil, v.SignerIIN, err
	}
	q, err := soap.ParseMaintenanceQuery(sr.Data)
	if err != nil {
		return nil, v.SignerIIN, err
	}
	window := p.cfg.MessageDateWindow
	if skew := now.Sub(q.IssuedAt); skew > window || skew < -window {
		return nil, v.SignerIIN, siobroker.Errorf(siobroker.CodeReplayDate, "maintenanceQuery/issuedAt %s is outside ±%s of the broker's time %s",
			siobroker.FormatTime(q.IssuedAt), window, siobroker.FormatTime(now))
	}
	if _, err := p.cfg.Users.Authorize(ctx, v.SignerIIN); err != nil {
		return nil, v.SignerIIN, err
	}
	list, err := p.schedule(ctx, now)
	if err != nil {
		return nil, v.SignerIIN, err
	}
	m := soap.MaintenanceWindows{RequestMessageID: sr.Info.MessageID, AsOf: now, MinNotice: p.cfg.Schedule.MinNotice()}
	for _, pw := range list {
		m.Windows = append(m.Windows, pw.entry)
	}
	replyID := uuid.NewString()
	reply := soap.NewMaintenanceWindowsResponse(soap.ResponseInfo{
		MessageID: replyID, CorrelationID: sr.Info.MessageID, ResponseDate: now, SessionID: sr.Info.SessionID,
		StatusCode: StatusWindows, StatusMessage: fmt.Sprintf("%d maintenance windows", len(m.Windows)),
	}, m)
	if err := p.cfg.Sign(reply, v.Placement); err != nil {
		return nil, v.SignerIIN, fmt.Errorf("publish: sign the reply %s: %w", replyID, err)
	}
	out, err := soap.Serialize(reply)
	if err != nil {
		return nil, v.SignerIIN, fmt.Errorf("publish: serialise the reply %s: %w", replyID, err)
	}
	p.log.InfoContext(ctx, "GetMaintenanceWindows answered", "signer_iin", v.SignerIIN, "windows", len(m.Windows))
	return out, v.SignerIIN, nil
}
