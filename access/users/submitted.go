package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
)

// SubmittedStore is what the workflow of submitted applications (§12–15) needs of the store; the
// embedded store (sqlite.DB) implements it.
type SubmittedStore interface {
	SubmitApplication(ctx context.Context, sa siobroker.SubmittedApplication) (int64, error)
	SubmittedApplications(ctx context.Context, pendingOnly bool) ([]siobroker.SubmittedApplication, error)
	SubmittedApplication(ctx context.Context, id int64) (siobroker.SubmittedApplication, bool, error)
	ApproveSubmitted(ctx context.Context, id int64, by string, at time.Time) (siobroker.User, error)
	RefuseSubmitted(ctx context.Context, id int64, by string, at time.Time, reason string, refusal []byte, signer string) error
}

// DefaultDecisionDeadline is the time §13 of the Rules gives the operator to decide an
// application: "в течение суток".
const DefaultDecisionDeadline = 24 * time.Hour

// ImmediateBy is the decider recorded for a block application, which §13 has the operator apply
// at once ("незамедлительно блокирует"): it is approved as it is submitted.
const ImmediateBy = "§13: a block is applied at once"

// Desk is the operator's desk of submitted applications: each is submitted (by the person who
// sends it for the organisation), waits for the operator's decision within the deadline, and is
// approved (applied to the registry in the same transaction) or refused with a motivated refusal
// signed with the operator's EDS. A block is applied as it is submitted (§13).
type Desk struct {
	store    SubmittedStore
	registry *Registry
	deadline time.Duration
}

// NewDesk returns the desk over store, whose applications the registry's rules validate, with
// the decision deadline deadline (0: DefaultDecisionDeadline).
func NewDesk(store SubmittedStore, registry *Registry, deadline time.Duration) (*Desk, error) {
	if store == nil || registry == nil {
		return nil, errors.New("users: NewDesk needs a store and a registry")
	}
	if deadline < 0 {
		return nil, fmt.Errorf("users: a negative decision deadline %s", deadline)
	}
	if deadline == 0 {
		deadline = DefaultDecisionDeadline
	}
	return &Desk{store: store, registry: registry, deadline: deadline}, nil
}

// Submit records application a, entered by the operator a.By without a signed form, as pending
// until its deadline; the application is kept marked unsigned (SubmittedApplication.Signed). See
// submit.
func (d *Desk) Submit(ctx context.Context, a siobroker.Application) (siobroker.SubmittedApplication, error) {
	return d.submit(ctx, siobroker.SubmittedApplication{Application: a})
}

// SubmitSigned records the application carried by raw, an App. 5 document signed by the head of
// the applicant's organisation (CheckApplicationForm under trust), submitted by by: the signed
// bytes and the signer's IIN and subject are kept with it.
func (d *Desk) SubmitSigned(ctx context.Context, raw []byte, trust *signing.TrustStore, by string) (siobroker.SubmittedApplication, error) {
	sa, err := CheckApplicationForm(ctx, raw, trust, d.registry.clock.Now())
	if err != nil {
		return siobroker.SubmittedApplication{}, err
	}
	sa.Application.By = by
	return d.submit(ctx, sa)
}

// submit records sa's application, submitted by a.By, as pending until its deadline, after the
// checks Apply makes (the IIN's check digit) and, for a register or move, every field of the
// App. 5 form (§43: the operator does not register on incomplete data; the error names each
// field). A block is approved at once. It returns the application as recorded.
func (d *Desk) submit(ctx context.Context, sa siobroker.SubmittedApplication) (siobroker.SubmittedApplication, error) {
	now := d.registry.clock.Now()
	a := sa.Application
	if a.By == "" {
		return siobroker.SubmittedApplication{}, errors.New("an application names who submits it")
	}
	if err := validateApplication(a, true); err != nil {
		return siobroker.SubmittedApplication{}, err
	}
	if a.Kind != siobroker.ApplyRegister && a.Reason == "" {
		return siobroker.SubmittedApplication{}, fmt.Errorf("%s %s: the reason is required (App. 5: the reason of a block or deletion)", a.Kind, a.IIN)
	}
	if a.Kind == siobroker.ApplyBlock {
		// A block is applied as it is submitted: one the registry would refuse (a user not
		// registered, or not active) is refused here, rather than recorded and left pending.
		u, exists, err := d.registry.store.User(ctx, a.IIN)
		if err != nil {
			return siobroker.SubmittedApplication{}, err
		}
		if !exists {
			return siobroker.SubmittedApplication{}, fmt.Errorf("block %s: the user is not registered: %w", a.IIN, siobroker.ErrTransition)
		}
		if u.Status != siobroker.UserActive {
			return siobroker.SubmittedApplication{}, fmt.Errorf("block %s: the user is %s, not active: nothing to block: %w", a.IIN, u.Status, siobroker.ErrTransition)
		}
	}
	a.At = now
	sa.Application, sa.Deadline, sa.Status = a, now.Add(d.deadline), siobroker.SubmittedPending
	id, err := d.store.SubmitApplication(ctx, sa)
	if err != nil {
		return sa, err
	}
	sa.ID = id
	if a.Kind == siobroker.ApplyBlock {
		if _, err := d.store.ApproveSubmitted(ctx, id, ImmediateBy, now); err != nil {
			return sa, fmt.Errorf("apply the block application %d at once: %w", id, err)
		}
		sa.Status, sa.DecidedBy, sa.DecidedAt = siobroker.SubmittedApproved, ImmediateBy, now
	}
	d.registry.logger.InfoContext(ctx, "application submitted", "id", id, "kind", string(a.Kind), "iin", a.IIN, "by", a.By, "status", sa.Status,
		"signed_by", sa.FormSignerIIN)
	return sa, nil
}

// Pending returns the applications waiting for a decision, by id.
func (d *Desk) Pending(ctx context.Context) ([]siobroker.SubmittedApplication, error) {
	return d.store.SubmittedApplications(ctx, true)
}

// All returns every submitted application, by id.
func (d *Desk) All(ctx context.Context) ([]siobroker.SubmittedApplication, error) {
	return d.store.SubmittedApplications(ctx, false)
}

// Get returns the submitted application id.
func (d *Desk) Get(ctx context.Context, id int64) (siobroker.SubmittedApplication, bool, error) {
	return d.store.SubmittedApplication(ctx, id)
}

// Overdue returns the pending applications past their deadline now.
func (d *Desk) Overdue(ctx context.Context) ([]siobroker.SubmittedApplication, error) {
	pending, err := d.Pending(ctx)
	if err != nil {
		return nil, err
	}
	now := d.registry.clock.Now()
	var out []siobroker.SubmittedApplication
	for _, sa := range pending {
		if sa.Overdue(now) {
			out = append(out, sa)
		}
	}
	return out, nil
}

// Approve applies the pending application id, decided by by, and returns the user as it is
// after it.
func (d *Desk) Approve(ctx context.Context, id int64, by string) (siobroker.User, error) {
	if by == "" {
		return siobroker.User{}, errors.New("a decision names the operator who takes it")
	}
	return d.store.ApproveSubmitted(ctx, id, by, d.registry.clock.Now())
}

// Refuse refuses the pending application id, decided by by, for reason, with refusal the
// refusal document signed with the operator's EDS by the holder of IIN signer (§13: "мотивированный
// отказ ..., подписанный средствами ЭЦП"). The caller signs and verifies the document.
func (d *Desk) Refuse(ctx context.Context, id int64, by, reason string, refusal []byte, signer string) error {
	switch {
	case by == "":
		return errors.New("a decision names the operator who takes it")
	case reason == "":
		return errors.New("a refusal is motivated (§13): give its reason")
	case len(refusal) == 0 || signer == "":
		return errors.New("a refusal is signed with the operator's EDS (§13)")
	}
	return d.store.RefuseSubmitted(ctx, id, by, d.registry.clock.Now(), reason, refusal, signer)
}
