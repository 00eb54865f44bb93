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
	Action      string         `json:"action"` // login, session, logout, annotate, close, replay, announce, cancel, stop
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
	Request     string         `json:"request,omitempty"` // stop: the asynchronous request stopped
	Reason      string         `json:"reason,omitempty"`  // stop: why
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
	return appendOperatorRecord(ctx, h.cfg.Journal, h.cfg.Clock, rec, d, code)
}

func appendOperatorRecord(ctx context.Context, j siobroker.JournalWriter, clock siobroker.Clock, rec record, d details, code string) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("dashboard: encode journal details: %w", err)
	}
	requestID := d.Request // an action on a request is found with the request's own records
	if requestID == "" {
		requestID = uuid.NewString()
	}
	_, err = j.Append(ctx, siobroker.JournalRecord{
		At: clock.Now().In(siobroker.Astana), Kind: siobroker.JournalOperator, RequestID: requestID,
		MessageID: rec.messageID, SignerIIN: rec.iin, Organisation: rec.organisation, Service: rec.service,
		Code: code, Data: data,
	})
	return err
}

// ChannelCommandLine is the channel of an operator's action taken with siobroker's commands.
const ChannelCommandLine = "cli"

// CommandLineAction is an operator's action taken with siobroker's commands rather than on the
// dashboard: `maintenance announce` and `cancel`, `dlq replay`, `async stop`.
type CommandLineAction struct {
	Action   string                       // "announce", "cancel" or "replay", as the dashboard names them; "stop"
	By       string                       // the operator's name (--by): a command has no signed login, so no IIN
	Window   *siobroker.MaintenanceWindow // announce: the window as announced, with its ID
	WindowID int64                        // cancel: the window cancelled
	Max      int                          // replay: at most this many dead letters
	Replayed *int                         // replay: how many were sent back
	Request  string                       // stop: the broker's id of the asynchronous request stopped
	Reason   string                       // stop: why, as the client is told
}

// JournalCommandLine appends the JournalOperator record of a: the record the dashboard appends
// for the same action, with channel "cli", so that an audit of the journal finds the operators'
// actions whichever way they were taken. failed, if not nil, is why the action failed or stopped
// part-way (a replay that sent some dead letters back, then failed): the record's code is then
// its fault code, as a refused dashboard action's is.
func JournalCommandLine(ctx context.Context, j siobroker.JournalWriter, clock siobroker.Clock, a CommandLineAction, failed error) error {
	d := details{Action: a.Action, Channel: ChannelCommandLine, By: a.By, WindowID: a.WindowID, Max: a.Max, Replayed: a.Replayed,
		Request: a.Request, Reason: a.Reason}
	if a.Window != nil {
		view := viewOf(*a.Window, clock.Now())
		d.Window, d.WindowID = &view, a.Window.ID
	}
	code := outcomeOK
	if failed != nil {
		d.Refusal, d.Message = siobroker.ErrorCode(failed), siobroker.ErrorMessage(failed)
		code = string(d.Refusal)
	}
	return appendOperatorRecord(ctx, j, clock, record{}, d, code)
}
