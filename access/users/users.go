// Package users is the user registry of the broker (§12–19 and §45 of the Rules): who may make
// requests, with which role, and why a request is refused.
//
// The registry is a service over the store. Every change is an application (Заявка, App. 5) of
// one of the five kinds of §12–15, applied in one transaction and kept forever with its reason.
// Authorize decides whether the holder of an IIN may make a request now: unknown, blocked and
// deleted users and users without a recorded consent (§17, §19) are refused, and every refusal is
// recorded. The §16 rule (blocked after 60 days without a request) is applied lazily by Authorize
// and by the periodic sweep BlockInactive. A block (§13, §45) takes effect on the very next
// request: nothing is cached.
package users

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sio-pso/siobroker"
)

// Store is what the registry needs of the store; the embedded store (sqlite.DB) implements it.
type Store interface {
	ApplyApplication(ctx context.Context, a siobroker.Application) (siobroker.User, error)
	// ApplyApplicationIf applies a only if check, run inside the transaction on the user's state
	// before the application, returns nil.
	ApplyApplicationIf(ctx context.Context, a siobroker.Application, check func(current siobroker.User, exists bool) error) (siobroker.User, error)
	User(ctx context.Context, iin string) (siobroker.User, bool, error)
	Users(ctx context.Context) ([]siobroker.User, error)
	TouchLastRequest(ctx context.Context, iin string, at time.Time) error
	RecordRefusal(ctx context.Context, iin string, code siobroker.Code, reason string, at time.Time) error
}

// SystemBy is the author of the applications the registry makes itself (§16).
const SystemBy = "system"

// InactivityReason is the reason of the automatic §16 block.
const InactivityReason = "§16: no request for 60 days"

// MaxRole is the last row of Appendix 1 (2026 version).
const MaxRole = 19

// Registry is the user registry service. It is safe for concurrent use.
type Registry struct {
	store  Store
	clock  siobroker.Clock
	logger *slog.Logger
}

// New returns a registry over store. A nil logger discards.
func New(store Store, clock siobroker.Clock, logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{store: store, clock: clock, logger: logger}
}

// Authorize returns the user with the IIN if the user may make a request now, and otherwise a
// *siobroker.Error with CodeUserUnknown, CodeUserBlocked, CodeUserDeleted or CodeNoConsent. Every
// refusal is recorded. If the user has made no request for 60 days, the user is blocked first
// (§16). On success nothing is written: the broker calls Touch once the request is accepted.
func (r *Registry) Authorize(ctx context.Context, iin string) (siobroker.User, error) {
	now := r.clock.Now()
	u, ok, err := r.store.User(ctx, iin)
	if err != nil {
		return siobroker.User{}, siobroker.Wrap(siobroker.CodeInternal, err, "the user registry is unavailable")
	}
	if !ok {
		return siobroker.User{}, r.refuse(ctx, iin, now, siobroker.Errorf(siobroker.CodeUserUnknown, "user %s is not registered", iin))
	}
	if u.Inactive(now) {
		blocked, err := r.blockInactive(ctx, iin, now)
		switch {
		case err == nil:
			return siobroker.User{}, r.refuse(ctx, iin, now, siobroker.Errorf(siobroker.CodeUserBlocked,
				"the account of user %s is blocked: no request for more than 60 days (§16 of the Rules)", iin))
		case blocked:
			// Someone else changed the user meanwhile (a request, another block, an operator):
			// decide on the state as it is now.
			if u, ok, err = r.store.User(ctx, iin); err != nil {
				return siobroker.User{}, siobroker.Wrap(siobroker.CodeInternal, err, "the user registry is unavailable")
			} else if !ok {
				return siobroker.User{}, r.refuse(ctx, iin, now, siobroker.Errorf(siobroker.CodeUserUnknown, "user %s is not registered", iin))
			}
		default:
			return siobroker.User{}, siobroker.Wrap(siobroker.CodeInternal, err, "the user registry is unavailable")
		}
	}
	if err := u.CheckAccess(); err != nil {
		return siobroker.User{}, r.refuse(ctx, iin, now, err)
	}
	return u, nil
}

// refuse records the refusal err of the user's request and returns err. A refusal that cannot be
// recorded is still a refusal; the failure is logged.
func (r *Registry) refuse(ctx context.Context, iin string, now time.Time, err error) error {
	code := siobroker.ErrorCode(err)
	if rerr := r.store.RecordRefusal(ctx, iin, code, siobroker.ErrorMessage(err), now); rerr != nil {
		r.logger.ErrorContext(ctx, "cannot record a refusal", "iin", iin, "code", string(code), "err", rerr)
	}
	r.logger.InfoContext(ctx, "request refused by the user registry", "iin", iin, "code", string(code))
	return err
}

// errNoLongerInactive is the precondition failure of a §16 block whose user is not inactive any
// more when the transaction runs.
var errNoLongerInactive = errors.New("the user is no longer inactive")

// blockInactive applies the §16 block to the user if, inside the transaction, the user is still
// inactive at now. refused reports that the store refused the application (the state changed
// meanwhile), as opposed to a failure of the store.
func (r *Registry) blockInactive(ctx context.Context, iin string, now time.Time) (refused bool, err error) {
	a := siobroker.Application{Kind: siobroker.ApplyBlock, IIN: iin, Reason: InactivityReason, At: now, By: SystemBy}
	_, err = r.store.ApplyApplicationIf(ctx, a, func(cur siobroker.User, exists bool) error {
		if !exists || !cur.Inactive(now) {
			return errNoLongerInactive
		}
		return nil
	})
	if err == nil {
		r.logger.InfoContext(ctx, "user blocked for inactivity (§16)", "iin", iin)
		return false, nil
	}
	return errors.Is(err, siobroker.ErrTransition) || errors.Is(err, errNoLongerInactive), err
}

// LastRequestResolution is how stale the recorded time of a user's last request may be: Touch
// does not write it again within this of the time it holds. The §16 clock runs 60 days, and a
// write per request would otherwise be a transaction per request for a busy user.
const LastRequestResolution = time.Minute

// Touch records that the request of u, as Authorize returned it, was accepted now, restarting
// the §16 clock, unless u's recorded last request is less than LastRequestResolution old.
func (r *Registry) Touch(ctx context.Context, u siobroker.User) error {
	now := r.clock.Now()
	if !u.LastRequest.IsZero() && now.Sub(u.LastRequest) < LastRequestResolution && !now.Before(u.LastRequest) {
		return nil
	}
	return r.store.TouchLastRequest(ctx, u.IIN, now)
}

// BlockInactive blocks every active user who has made no request for 60 days (§16) and returns
// their IINs. The broker runs it periodically; Authorize applies the same rule on each request.
func (r *Registry) BlockInactive(ctx context.Context) (blocked []string, err error) {
	now := r.clock.Now()
	users, err := r.store.Users(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range users {
		if !u.Inactive(now) {
			continue
		}
		refused, err := r.blockInactive(ctx, u.IIN, now)
		switch {
		case err == nil:
			blocked = append(blocked, u.IIN)
		case refused:
			// The user made a request or was changed meanwhile; nothing to do.
		default:
			errs = append(errs, fmt.Errorf("block %s: %w", u.IIN, err))
		}
	}
	return blocked, errors.Join(errs...)
}

// Apply applies an operator's application. a.At defaults to now. Register and move applications
// are validated first (IIN check digit, role, required fields); a.Reason is required.
func (r *Registry) Apply(ctx context.Context, a siobroker.Application) (siobroker.User, error) {
	if a.At.IsZero() {
		a.At = r.clock.Now()
	}
	if err := validateApplication(a, false); err != nil {
		return siobroker.User{}, err
	}
	u, err := r.store.ApplyApplication(ctx, a)
	if err != nil {
		return siobroker.User{}, err
	}
	r.logger.InfoContext(ctx, "application applied", "kind", string(a.Kind), "iin", a.IIN, "by", a.By, "status", string(u.Status))
	return u, nil
}

// ApplyForm applies an operator's application as Apply does, after the checks of a submitted one:
// a register or move must carry every field of the App. 5 form, each believable (§43: the
// operator does not register on incomplete or unreliable data). It is what the operator's own
// register and move take; Apply's lighter checks are for imports of a registry taken over and
// the demo users.
func (r *Registry) ApplyForm(ctx context.Context, a siobroker.Application) (siobroker.User, error) {
	if err := validateApplication(a, true); err != nil {
		return siobroker.User{}, err
	}
	return r.Apply(ctx, a)
}

// validateApplication makes the checks of every application: the IIN's check digit, and the
// App. 5 fields of a register or move; complete asks for every field of the form (§43), as a
// submitted application carries them.
func validateApplication(a siobroker.Application, complete bool) error {
	if err := siobroker.ValidateIIN(a.IIN); err != nil {
		return fmt.Errorf("%s: %w", a.Kind, fieldErr(FieldIIN, "%q: %v", a.IIN, err))
	}
	if a.Kind == siobroker.ApplyRegister || a.Kind == siobroker.ApplyMove {
		if err := checkFields(a.User, complete); err != nil {
			return fmt.Errorf("%s %s: %w", a.Kind, a.IIN, err)
		}
	}
	return nil
}

// RegisterMissing applies the register applications apps whose user is not registered yet, and
// leaves alone a user who is, whatever his state: seeding the demo users again must not undo an
// operator's block. A user registered meanwhile by another process is skipped the same way.
func (r *Registry) RegisterMissing(ctx context.Context, apps []siobroker.Application) error {
	var errs []error
	for _, a := range apps {
		if a.Kind != siobroker.ApplyRegister {
			errs = append(errs, fmt.Errorf("user %s: RegisterMissing takes register applications, not %s", a.IIN, a.Kind))
			continue
		}
		_, ok, err := r.store.User(ctx, a.IIN)
		if err != nil {
			return fmt.Errorf("user %s: %w", a.IIN, err)
		}
		if ok {
			continue
		}
		if _, err := r.Apply(ctx, a); err != nil && !errors.Is(err, siobroker.ErrTransition) {
			errs = append(errs, fmt.Errorf("register user %s: %w", a.IIN, err))
		}
	}
	return errors.Join(errs...)
}
