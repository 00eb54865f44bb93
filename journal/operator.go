package journal

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
)

// The records of operators' actions (siobroker.JournalOperator, §50 of the Rules): a login to the
// dashboard and every action there, and the same actions taken with siobroker's commands, in one
// shape, so that an audit of the journal finds an operator's actions whichever way they were
// taken. The dashboard and the command line both append them; neither imports the other.

// OutcomeOK is the Code of the record of an allowed login or action; a refused one carries its
// fault code.
const OutcomeOK = "ok"

// ChannelCommandLine is the channel of an operator's action taken with siobroker's commands.
const ChannelCommandLine = "cli"

// Operator is who an operator record is about.
type Operator struct {
	IIN          string
	Organisation string
	MessageID    string // the signed login's messageId
	Service      int    // the service of the incident acted on
}

// OperatorAction is the Data of a JournalOperator record, as JSON. It only ever gains fields.
type OperatorAction struct {
	Action      string         `json:"action"` // login, session, logout, annotate, close, open, action, replay, announce, cancel, stop
	Channel     string         `json:"channel,omitempty"`
	By          string         `json:"by,omitempty"` // the operator's name and IIN
	Incident    int64          `json:"incident,omitempty"`
	Measures    string         `json:"measures,omitempty"`
	Responsible string         `json:"responsible,omitempty"`
	Note        string         `json:"note,omitempty"`
	Max         int            `json:"max,omitempty"`
	Replayed    *int           `json:"replayed,omitempty"`
	WindowID    int64          `json:"windowId,omitempty"`
	Window      *WindowView    `json:"window,omitempty"`
	Request     string         `json:"request,omitempty"` // stop: the asynchronous request stopped
	Reason      string         `json:"reason,omitempty"`  // stop: why
	Refusal     siobroker.Code `json:"refusal,omitempty"`
	Message     string         `json:"message,omitempty"`

	// open: the kind of emergency (App. 7), and its cause and onset as the operator gave them.
	Kind    string `json:"kind,omitempty"`
	Cause   string `json:"cause,omitempty"`
	Started string `json:"started,omitempty"`
	// action: the number of the emergency's action, whether its start or its end was recorded,
	// and the time recorded.
	ActionNo int    `json:"actionNo,omitempty"`
	Phase    string `json:"phase,omitempty"` // start, end
	At       string `json:"at,omitempty"`
}

// WindowView is a maintenance window as an operator record keeps it, and the dashboard shows it.
type WindowView struct {
	ID          int64  `json:"id"`
	Services    []int  `json:"services"` // empty: every service
	Start       string `json:"start"`
	End         string `json:"end"`
	Reason      string `json:"reason"`
	AnnouncedBy string `json:"announcedBy,omitempty"`
	AnnouncedAt string `json:"announcedAt,omitempty"`
	Source      string `json:"source,omitempty"`
	Cancelled   string `json:"cancelled,omitempty"`
	State       string `json:"state"` // announced, in force, ended, cancelled
	// Emergency: announced with less than the minimum notice, or after it began, and recorded
	// as an incident (§39–41). Omitted when false, so that the records kept before it are as
	// they were written.
	Emergency bool `json:"emergency,omitempty"`
}

// ViewOfWindow is w as it stands at now.
func ViewOfWindow(w siobroker.MaintenanceWindow, now time.Time) WindowView {
	v := WindowView{ID: w.ID, Services: w.Services, Start: formatTime(w.Start), End: formatTime(w.End), Reason: w.Reason,
		AnnouncedBy: w.AnnouncedBy, AnnouncedAt: formatTime(w.AnnouncedAt), Source: w.Source, Cancelled: formatTime(w.Cancelled),
		Emergency: w.Emergency}
	if v.Services == nil {
		v.Services = []int{}
	}
	switch {
	case !w.Cancelled.IsZero():
		v.State = "cancelled"
	case !now.Before(w.End):
		v.State = "ended"
	case !now.Before(w.Start):
		v.State = "in force"
	default:
		v.State = "announced"
	}
	return v
}

// formatTime is siobroker.FormatTime, and "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return siobroker.FormatTime(t)
}

// AppendOperatorAction appends the JournalOperator record of a by who, with code: OutcomeOK, or
// the fault code of a refusal. An action on an asynchronous request is recorded under that
// request's id, so that it is found with the request's own records.
func AppendOperatorAction(ctx context.Context, j siobroker.JournalWriter, clock siobroker.Clock, who Operator, a OperatorAction, code string) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("journal: encode operator action: %w", err)
	}
	requestID := a.Request
	if requestID == "" {
		requestID = uuid.NewString()
	}
	_, err = j.Append(ctx, siobroker.JournalRecord{
		At: clock.Now().In(siobroker.Astana), Kind: siobroker.JournalOperator, RequestID: requestID,
		MessageID: who.MessageID, SignerIIN: who.IIN, Organisation: who.Organisation, Service: who.Service,
		Code: code, Data: data,
	})
	if err != nil {
		return fmt.Errorf("journal: operator %s: %w", a.Action, err)
	}
	return nil
}

// CommandLineAction is an operator's action taken with siobroker's commands rather than on the
// dashboard: `maintenance announce` and `cancel`, `dlq replay`, `async stop`, and `incidents
// open`, `action`, `annotate` and `close`.
type CommandLineAction struct {
	Action   string                       // "announce", "cancel", "replay", "open", "action", "annotate" or "close", as the dashboard names them; "stop"
	By       string                       // the operator's name (--by): a command has no signed login, so no IIN
	Incident *siobroker.Incident          // open, action, annotate, close: the incident as it is after the action
	Details  OperatorAction               // open, action, annotate, close: what the operator gave (Kind, Cause, ActionNo, Phase, Note, ...)
	Window   *siobroker.MaintenanceWindow // announce: the window as announced, with its ID
	WindowID int64                        // cancel: the window cancelled
	Max      int                          // replay: at most this many dead letters
	Replayed *int                         // replay: how many were sent back
	Request  string                       // stop: the broker's id of the asynchronous request stopped
	Reason   string                       // stop: why, as the client is told
}

// AppendCommandLine appends the JournalOperator record of a: the record the dashboard appends
// for the same action, with channel "cli". failed, if not nil, is why the action failed or
// stopped part-way (a replay that sent some dead letters back, then failed): the record's code
// is then its fault code, as a refused dashboard action's is.
func AppendCommandLine(ctx context.Context, j siobroker.JournalWriter, clock siobroker.Clock, a CommandLineAction, failed error) error {
	d := a.Details
	d.Action, d.Channel, d.By, d.WindowID, d.Max, d.Replayed, d.Request, d.Reason = a.Action, ChannelCommandLine, a.By, a.WindowID, a.Max,
		a.Replayed, a.Request, a.Reason
	who := Operator{}
	if a.Incident != nil {
		d.Incident, who.Service = a.Incident.Number, a.Incident.Cause.Service
	}
	if a.Window != nil {
		view := ViewOfWindow(*a.Window, clock.Now())
		d.Window, d.WindowID = &view, a.Window.ID
	}
	code := OutcomeOK
	if failed != nil {
		d.Refusal, d.Message = siobroker.ErrorCode(failed), siobroker.ErrorMessage(failed)
		code = string(d.Refusal)
	}
	return AppendOperatorAction(ctx, j, clock, who, d, code)
}
