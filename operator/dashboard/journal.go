package dashboard

import (
	"context"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
)

// journal appends the record of an allowed login or action. An error means the record is
// missing; the caller hands nothing out when it can still help it.
func (h *handler) journal(ctx context.Context, rec journal.Operator, d journal.OperatorAction) error {
	if err := h.append(ctx, rec, d, journal.OutcomeOK); err != nil {
		h.log.ErrorContext(ctx, "cannot journal a dashboard "+d.Action, "signer_iin", rec.IIN, "error", err)
		return siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker cannot record the dashboard %s in the journal now; retry later", d.Action)
	}
	return nil
}

// refused journals a refused login or action and returns err. A refusal that cannot be journaled
// is still a refusal; the failure is logged.
func (h *handler) refused(ctx context.Context, rec journal.Operator, d journal.OperatorAction, err error) error {
	code := siobroker.ErrorCode(err)
	d.Refusal, d.Message = code, siobroker.ErrorMessage(err)
	if jerr := h.append(context.WithoutCancel(ctx), rec, d, string(code)); jerr != nil {
		h.log.ErrorContext(ctx, "cannot journal a refused dashboard "+d.Action, "signer_iin", rec.IIN, "code", string(code), "error", jerr)
	}
	return err
}

func (h *handler) append(ctx context.Context, rec journal.Operator, d journal.OperatorAction, code string) error {
	return journal.AppendOperatorAction(ctx, h.cfg.Journal, h.cfg.Clock, rec, d, code)
}
