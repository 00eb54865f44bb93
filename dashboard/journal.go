package dashboard

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
)

// outcomeOK is the Code of the journal record of an allowed login or action.
const outcomeOK = "ok"

// record is who a journal record is about.
type record struct {
	iin          string
	organisation string
	messageID    string // the signed login's messageId
	service      int    // the service of the incident acted on
}

// details is the Data of a JournalOperator record, as JSON. It only ever gains fields.
type details struct {
	Action      string         `json:"action"` // login, session, logout, annotate, close, replay, announce, cancel
	Channel     string         `json:"channel,omitempty"`
	By          string         `json:"by,omitempty"` // the operator's name and IIN
	Incident    int64          `json:"incident,omitempty"`
	Measures    string         `json:"measures,omitempty"`
	Responsible string         `json:"responsible,omitempty"`
	Note        string         `json:"note,omitempty"`
	Max         int            `json:"max,omitempty"`
	Replayed    *int           `json:"replayed,omitempty"`
	WindowID    int64          `json:"windowId,omitempty"`
	Window      *windowView    `json:"window,omitempty"`
	Refusal     siobroker.Code `json:"refusal,omitempty"`
	Message     string         `json:"message,omitempty"`
}

// journal appends the record of an allowed login or action. An error means the record is
// missing; the caller hands nothing out when it can still help it.
func (h *handler) journal(ctx context.Context, rec record, d details) error {
	if err := h.append(ctx, rec, d, outcomeOK); err != nil {
		h.log.ErrorContext(ctx, "cannot journal a dashboard "+d.Action, "signer_iin", rec.iin, "error", err)
		return siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot record the dashboard %s in the journal now; retry later", d.Action)
	}
	return nil
}

// refused journals a refused login or action and returns err. A refusal that cannot be journaled
// is still a refusal; the failure is logged.
func (h *handler) refused(ctx context.Context, rec record, d details, err error) error {
	code := siobroker.ErrorCode(err)
	d.Refusal, d.Message = code, siobroker.ErrorMessage(err)
	if jerr := h.append(context.WithoutCancel(ctx), rec, d, string(code)); jerr != nil {
		h.log.ErrorContext(ctx, "cannot journal a refused dashboard "+d.Action, "signer_iin", rec.iin, "code", string(code), "error", jerr)
	}
	return err
}

func (h *handler) append(ctx context.Context, rec record, d details, code string) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("dashboard: encode journal details: %w", err)
	}
	_, err = h.cfg.Journal.Append(ctx, siobroker.JournalRecord{
		At: h.cfg.Clock.Now().In(siobroker.Astana), Kind: siobroker.JournalOperator, RequestID: uuid.NewString(),
		MessageID: rec.messageID, SignerIIN: rec.iin, Organisation: rec.organisation, Service: rec.service,
		Code: code, Data: data,
	})
	return err
}
