package broker

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/cases"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

// The access checks of the pipeline with the real user registry, case rules and case registries:
// who may ask (§12–19), under which basis (Appendix 1), and about which case (§5, §§20–27).

// demoUserWithRole returns the first valid demo user with the role.
func demoUserWithRole(t *testing.T, role int) devpki.User {
	t.Helper()
	for _, u := range manifest.Users {
		if u.Role == role && u.Status == devpki.StatusValid {
			return u
		}
	}
	t.Fatalf("no valid demo user with role %d", role)
	return devpki.User{}
}

// refusals returns the recorded refusals of the user with the IIN.
func (h *harness) refusals(t *testing.T, iin string) []sqlite.Refusal {
	t.Helper()
	rs, err := h.db.Refusals(context.Background(), iin)
	if err != nil {
		t.Fatalf("Refusals: %v", err)
	}
	return rs
}

// wantRefusal checks that exactly one refusal with code is recorded for the IIN.
func (h *harness) wantRefusal(t *testing.T, iin string, code siobroker.Code) {
	t.Helper()
	rs := h.refusals(t, iin)
	if len(rs) != 1 || rs[0].Code != code || rs[0].IIN != iin || !rs[0].At.Equal(h.clock.Now()) {
		t.Errorf("refusals of %s = %+v, want one %s at %s", iin, rs, code, siobroker.FormatTime(h.clock.Now()))
	}
}

// notServed checks that a refused request reached no backend and did not count as a request.
func (h *harness) notServed(t *testing.T, iin string, lastRequest time.Time) {
	t.Helper()
	for n, c := range h.calls {
		if c.Load() != 0 {
			t.Errorf("backend %d asked %d times for a refused request", n, c.Load())
		}
	}
	if u := h.user(t, iin); !u.LastRequest.Equal(lastRequest) {
		t.Errorf("LastRequest = %s after a refused request, want %s", u.LastRequest, lastRequest)
	}
}

// TestRoleFromRegistry: the role is the registry's, by the certificate's IIN. An operator's move
// application changes it, and the next request is judged by the new role.
func TestRoleFromRegistry(t *testing.T) {
	// Role 19 (Сотрудник дежурной части) may use basis 6 only.
	const newRole = 19
	if table.RoleMayUse(newRole, siobroker.BasisCriminal) || !table.RoleMayUse(newRole, siobroker.BasisSearch) {
		t.Fatalf("configs/rights.yaml: role %d is expected to have basis 6 and not basis 1", newRole)
	}
	h := newHarness(t, nil)
	iin := userSigner.IIN()
	u := h.user(t, iin)
	if u.Role != 1 || !table.RoleMayUse(u.Role, siobroker.BasisCriminal) {
		t.Fatalf("seeded user %+v: want role 1, which may use basis 1", u)
	}

	// Before the move, the prosecutor's criminal-case request goes through.
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	_, seen, err := h.handle(raw)
	if err != nil {
		t.Fatalf("before the move: %v", err)
	}
	if seen.Role != 1 {
		t.Errorf("Request.Role = %d, want 1", seen.Role)
	}
	last := h.user(t, iin).LastRequest

	u.Role = newRole
	if got := h.apply(t, siobroker.Application{Kind: siobroker.ApplyMove, IIN: iin, User: u}); got.Role != newRole {
		t.Fatalf("after the move: %+v", got)
	}
	h.clock.Set(h.clock.Now().Add(time.Second))
	raw, info := h.build(t, reqSpec{basis: siobroker.BasisCriminal, services: []int{2}})
	_, seen, err = h.handle(raw)
	wantCode(t, err, siobroker.CodeRoleBasis)
	if seen.Role != newRole || seen.MessageID != info.MessageID || seen.SignerIIN != iin {
		t.Errorf("Request = %+v, want role %d", seen, newRole)
	}
	if h.called(2) != 0 || h.checked() != 1 {
		t.Errorf("refused request: backend asked %d times, case registries %d times (1 before the move)", h.called(2), h.checked())
	}
	if u := h.user(t, iin); !u.LastRequest.Equal(last) {
		t.Errorf("LastRequest moved by a refused request: %s, want %s", u.LastRequest, last)
	}

	// Under the basis role 19 does have, the role check passes, and the case check of §5 decides
	// by the new role too: the search case lists him as its supervising prosecutor, a part that
	// does not put it in the proceedings of a duty officer (cases.parts).
	raw, _ = h.build(t, reqSpec{basis: siobroker.BasisSearch, services: []int{2}})
	_, seen, err = h.handle(raw)
	wantCode(t, err, siobroker.CodeCaseUnknown)
	if !strings.Contains(err.Error(), "role 19") || !strings.Contains(err.Error(), "supervising_prosecutor") {
		t.Errorf("basis 6 after the move: %v", err)
	}
	if seen.Role != newRole || h.called(2) != 0 || h.checked() != 2 {
		t.Errorf("basis 6 after the move: Request %+v; backend asked %d times, registries %d", seen, h.called(2), h.checked())
	}
}

// TestUnknownUser: a valid certificate of the trusted PKI whose IIN is not in the registry.
func TestUnknownUser(t *testing.T) {
	iin := ecdsaSigner.IIN()
	h := newHarnessWith(t, harnessOpts{seed: func(u devpki.User) bool { return u.IIN != iin }})
	if _, ok, err := h.db.User(context.Background(), iin); ok || err != nil {
		t.Fatalf("user %s is registered (err %v)", iin, err)
	}
	raw, _ := h.build(t, reqSpec{signer: ecdsaSigner, services: []int{1}})
	_, seen, err := h.handle(raw)
	wantCode(t, err, siobroker.CodeUserUnknown)
	if seen.SignerIIN != iin || seen.Role != 0 {
		t.Errorf("Request = %+v", seen)
	}
	h.wantRefusal(t, iin, siobroker.CodeUserUnknown)
	if h.called(1) != 0 || h.checked() != 0 {
		t.Errorf("unknown user: backend asked %d times, case registries %d times", h.called(1), h.checked())
	}
	// The registered users are not affected.
	raw, _ = h.build(t, reqSpec{services: []int{1}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("a registered user: %v", err)
	}
}

// TestDeletedUser: a delete application refuses the user's next request.
func TestDeletedUser(t *testing.T) {
	h := newHarness(t, nil)
	iin := userSigner.IIN()
	if u := h.apply(t, siobroker.Application{Kind: siobroker.ApplyDelete, IIN: iin}); u.Status != siobroker.UserDeleted {
		t.Fatalf("after delete: %+v", u)
	}
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	_, _, err := h.handle(raw)
	wantCode(t, err, siobroker.CodeUserDeleted)
	h.wantRefusal(t, iin, siobroker.CodeUserDeleted)
	h.notServed(t, iin, time.Time{})
	if h.checked() != 0 {
		t.Errorf("case registries asked %d times for a deleted user", h.checked())
	}
}

// TestBlockedUser: a block (§13, §45) takes effect on the very next request, and the refusal is
// recorded; an unblock lets the user in again.
func TestBlockedUser(t *testing.T) {
	h := newHarness(t, nil)
	iin := userSigner.IIN()
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("before the block: %v", err)
	}
	last := h.user(t, iin).LastRequest

	h.apply(t, siobroker.Application{Kind: siobroker.ApplyBlock, IIN: iin, Reason: "§45: the employer's request"})
	h.clock.Set(h.clock.Now().Add(time.Second))
	raw, info := h.build(t, reqSpec{placement: signing.PlacementEnveloped, services: []int{5}})
	_, seen, err := h.handle(raw)
	wantCode(t, err, siobroker.CodeUserBlocked)
	if seen.MessageID != info.MessageID || seen.SignerIIN != iin {
		t.Errorf("Request = %+v", seen)
	}
	h.wantRefusal(t, iin, siobroker.CodeUserBlocked)
	if h.called(5) != 0 || h.checked() != 1 {
		t.Errorf("blocked user: backend 5 asked %d times, case registries %d times (1 before the block)", h.called(5), h.checked())
	}
	if u := h.user(t, iin); u.Status != siobroker.UserBlocked || !u.LastRequest.Equal(last) {
		t.Errorf("user after the refusal: %+v", u)
	}

	h.apply(t, siobroker.Application{Kind: siobroker.ApplyUnblock, IIN: iin})
	raw, _ = h.build(t, reqSpec{services: []int{5}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("after the unblock: %v", err)
	}
	if len(h.refusals(t, iin)) != 1 {
		t.Errorf("refusals after the unblock: %+v", h.refusals(t, iin))
	}
}

// TestNoConsent: a user registered without a recorded consent (App. 6, §17, §19) is refused until
// a move application records it.
func TestNoConsent(t *testing.T) {
	du := userOf(t, ecdsaSigner)
	h := newHarnessWith(t, harnessOpts{seed: func(u devpki.User) bool { return u.IIN != du.IIN }})
	fields := siobroker.User{FullName: du.Name, Organisation: devpki.DemoOrganisation, Role: du.Role}
	if u := h.apply(t, siobroker.Application{Kind: siobroker.ApplyRegister, IIN: du.IIN, User: fields}); !u.ConsentAt.IsZero() || u.Status != siobroker.UserActive {
		t.Fatalf("registered: %+v", u)
	}
	raw, _ := h.build(t, reqSpec{signer: ecdsaSigner, services: []int{1}})
	_, seen, err := h.handle(raw)
	wantCode(t, err, siobroker.CodeNoConsent)
	if seen.SignerIIN != du.IIN {
		t.Errorf("Request = %+v", seen)
	}
	h.wantRefusal(t, du.IIN, siobroker.CodeNoConsent)
	h.notServed(t, du.IIN, time.Time{})

	fields.ConsentAt = h.clock.Now()
	h.apply(t, siobroker.Application{Kind: siobroker.ApplyMove, IIN: du.IIN, User: fields})
	raw, _ = h.build(t, reqSpec{signer: ecdsaSigner, services: []int{1}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("after the consent was recorded: %v", err)
	}
}

// TestInactivityBlock: §16, no request for 60 days blocks the account at the next request. Each
// request's messageDate follows the moved clock, or it would be refused for its date first.
func TestInactivityBlock(t *testing.T) {
	h := newHarness(t, nil)
	iin := userSigner.IIN()
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("first request: %v", err)
	}
	// 59 days later the account is still active, and the request restarts the 60 days.
	h.clock.Set(h.clock.Now().Add(59 * 24 * time.Hour))
	raw, _ = h.build(t, reqSpec{services: []int{1}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("59 days later: %v", err)
	}
	last := h.user(t, iin).LastRequest
	if !last.Equal(h.clock.Now()) {
		t.Fatalf("LastRequest = %s, want %s", last, h.clock.Now())
	}

	h.clock.Set(last.Add(61 * 24 * time.Hour))
	raw, _ = h.build(t, reqSpec{services: []int{5}})
	_, _, err := h.handle(raw)
	wantCode(t, err, siobroker.CodeUserBlocked)
	h.wantRefusal(t, iin, siobroker.CodeUserBlocked)
	if h.called(5) != 0 {
		t.Errorf("backend asked for an inactive user")
	}
	u := h.user(t, iin)
	if u.Status != siobroker.UserBlocked || !u.LastRequest.Equal(last) {
		t.Errorf("user after 61 days: %+v", u)
	}
	apps, err := h.db.Applications(context.Background(), iin)
	if err != nil {
		t.Fatal(err)
	}
	if a := apps[len(apps)-1]; a.Kind != siobroker.ApplyBlock || a.By != users.SystemBy || a.Reason != users.InactivityReason || !a.At.Equal(h.clock.Now()) {
		t.Errorf("last application %+v, want the §16 block at %s", a, siobroker.FormatTime(h.clock.Now()))
	}
}

// TestCaseUnknown: the case registry of the basis does not know the case, or knows it in another
// user's proceedings.
func TestCaseUnknown(t *testing.T) {
	judge := demoUserWithRole(t, 2)
	tests := []struct {
		name     string
		basis    siobroker.Basis
		caseRef  siobroker.CaseRef
		registry string
		message  string
	}{
		{"no such criminal case", siobroker.BasisCriminal, siobroker.CaseRef{Number: "261500031999999"}, "erdr", "not among the proceedings"},
		{"no such court case", siobroker.BasisCourtCivil,
			siobroker.CaseRef{Number: "7511-25-00-2/9999", Year: "2025", Court: "Есильский районный суд г. Астаны"}, "courts", "not among the proceedings"},
		{"another user's criminal case", siobroker.BasisCriminal, caseFor(t, judge, siobroker.BasisCriminal), "erdr", "not among the proceedings"},
		{"another user's enforcement case", siobroker.BasisEnforcement, caseFor(t, judge, siobroker.BasisEnforcement), "aisoip", "not among the proceedings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			raw, _ := h.build(t, reqSpec{basis: tt.basis, caseRef: tt.caseRef, services: []int{1}})
			_, seen, err := h.handle(raw)
			wantCode(t, err, siobroker.CodeCaseUnknown)
			if msg := siobroker.ErrorMessage(err); !strings.Contains(msg, tt.message) || !strings.Contains(msg, tt.caseRef.Number) {
				t.Errorf("message %q, want it to say %q about %s", msg, tt.message, tt.caseRef.Number)
			}
			if seen.Role != 1 {
				t.Errorf("Request = %+v", seen)
			}
			for name, c := range h.checks {
				want := int32(0)
				if name == tt.registry {
					want = 1
				}
				if c.Load() != want {
					t.Errorf("registry %s asked %d times, want %d", name, c.Load(), want)
				}
			}
			h.notServed(t, userSigner.IIN(), time.Time{})
		})
	}
}

// TestCaseInvalid: a malformed case reference is refused by the rules before any registry is asked.
func TestCaseInvalid(t *testing.T) {
	tests := []struct {
		name    string
		basis   siobroker.Basis
		caseRef siobroker.CaseRef
		field   string
	}{
		{"short ЕРДР number", siobroker.BasisCriminal, siobroker.CaseRef{Number: "12345"}, cases.FieldNumber},
		{"letters in a КПСиСУ number", siobroker.BasisAdminOffence, siobroker.CaseRef{Number: "26150003100007AB"}, cases.FieldNumber},
		{"court case without a court", siobroker.BasisCourtCivil, siobroker.CaseRef{Number: "7511-25-00-2/1234", Year: "2025"}, cases.FieldCourt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			raw, _ := h.build(t, reqSpec{basis: tt.basis, caseRef: tt.caseRef, services: []int{1}})
			_, _, err := h.handle(raw)
			wantCode(t, err, siobroker.CodeCaseInvalid)
			var e *siobroker.Error
			if !errors.As(err, &e) || e.Field != tt.field {
				t.Fatalf("error %v: field %q, want %q", err, e.Field, tt.field)
			}
			if !strings.Contains(siobroker.ErrorMessage(err), tt.field) {
				t.Errorf("message %q does not name %s", siobroker.ErrorMessage(err), tt.field)
			}
			if h.checked() != 0 {
				t.Errorf("case registries asked %d times about an invalid case", h.checked())
			}
			h.notServed(t, userSigner.IIN(), time.Time{})
		})
	}
}

// TestAdminOffenceNotVerified: basis 3 is exempt from the case check (§5, §23): no registry is
// asked, so even a КПСиСУ number no registry knows goes through. The other bases go to theirs.
func TestAdminOffenceNotVerified(t *testing.T) {
	h := newHarness(t, nil)
	for _, c := range []siobroker.CaseRef{caseFor(t, userOf(t, userSigner), siobroker.BasisAdminOffence), {Number: "2615000319999999"}} {
		raw, _ := h.build(t, reqSpec{basis: siobroker.BasisAdminOffence, caseRef: c, services: []int{1}})
		if _, _, err := h.handle(raw); err != nil {
			t.Fatalf("basis 3, case %s: %v", c.Number, err)
		}
	}
	// The role 5 investigator under basis 3 as well.
	raw, _ := h.build(t, reqSpec{signer: ecdsaSigner, basis: siobroker.BasisAdminOffence, placement: signing.PlacementEnveloped, services: []int{1}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("basis 3, role 5: %v", err)
	}
	if n := h.checked(); n != 0 {
		t.Fatalf("case registries asked %d times under basis 3", n)
	}
	if h.called(1) != 3 {
		t.Errorf("backend 1 asked %d times, want 3", h.called(1))
	}

	want := map[string]int32{"erdr": 2, "courts": 2, "aisoip": 1}
	for b := siobroker.FirstBasis; b <= siobroker.LastBasis; b++ {
		if b == siobroker.BasisAdminOffence {
			continue
		}
		raw, _ := h.build(t, reqSpec{basis: b, services: []int{1}})
		if _, _, err := h.handle(raw); err != nil {
			t.Fatalf("basis %d: %v", b, err)
		}
	}
	for name, c := range h.checks {
		if c.Load() != want[name] {
			t.Errorf("registry %s asked %d times, want %d", name, c.Load(), want[name])
		}
	}
}

// TestCaseRegistrySilent: a registry that never answers refuses the request as unverifiable within
// cases.check_timeout, rather than as an unknown case; basis 3 does not depend on it.
func TestCaseRegistrySilent(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := newHarnessWith(t, harnessOpts{
		checkTimeout: timeout,
		caseRegistry: func(string) adapters.CaseRegistry { return silentRegistry{} },
	})
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	start := time.Now()
	_, seen, err := h.handle(raw)
	elapsed := time.Since(start)
	wantCode(t, err, siobroker.CodeUnavailable)
	if elapsed < timeout || elapsed > timeout+time.Second {
		t.Errorf("refused after %s, want about the check timeout %s", elapsed, timeout)
	}
	if msg := siobroker.ErrorMessage(err); !strings.Contains(msg, "erdr") {
		t.Errorf("message %q does not name the registry", msg)
	}
	if seen.Role != 1 || h.checked() != 1 {
		t.Errorf("Request %+v, case registries asked %d times", seen, h.checked())
	}
	h.notServed(t, userSigner.IIN(), time.Time{})

	raw, _ = h.build(t, reqSpec{basis: siobroker.BasisAdminOffence, services: []int{1}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("basis 3 with the registries silent: %v", err)
	}
}

// TestCaseDecidedFromParticipants: the broker, not the registry, decides §5 from the answer: the
// signer must be among the case's participants in a part cases.parts gives the role, and the case
// in an open status. The registry's own inProceedings is not taken: an answer that says it but
// names no participants (an adapter older than them) is refused, as is a closed case of the
// signer's; a signer in a part that counts is served, whatever inProceedings says.
func TestCaseDecidedFromParticipants(t *testing.T) {
	prosecutor := userSigner.IIN() // role 1
	var answer atomic.Value        // the facts the registry answers with
	h := newHarnessWith(t, harnessOpts{
		caseRegistry: func(name string) adapters.CaseRegistry {
			return adapters.CaseRegistryFunc(func(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
				resp := answer.Load().(schemas.CaseCheckResponse)
				resp.RequestID = req.RequestID
				return resp, nil
			})
		},
	})
	in := func(part string) []siobroker.Participant {
		return []siobroker.Participant{{IIN: prosecutor, Part: part}}
	}
	for _, tc := range []struct {
		name string
		resp schemas.CaseCheckResponse
		code siobroker.Code // "" served
		msg  string
	}{
		{"supervising prosecutor", schemas.CaseCheckResponse{Found: true, Status: "open", Participants: in("supervising_prosecutor")}, "", ""},
		{"inProceedings false does not matter", schemas.CaseCheckResponse{Found: true, InProceedings: false, Status: "Suspended",
			Participants: in("Supervising_Prosecutor")}, "", ""},
		{"inProceedings without participants", schemas.CaseCheckResponse{Found: true, InProceedings: true, Status: "open"},
			siobroker.CodeCaseUnknown, "not among the proceedings"},
		{"another's case", schemas.CaseCheckResponse{Found: true, Status: "open",
			Participants: []siobroker.Participant{{IIN: "860421301550", Part: "investigator"}}}, siobroker.CodeCaseUnknown, "not among the proceedings"},
		{"a part that is not a prosecutor's", schemas.CaseCheckResponse{Found: true, Status: "open", Participants: in("witness")},
			siobroker.CodeCaseUnknown, "as witness, which does not put it in the proceedings of role 1"},
		{"closed", schemas.CaseCheckResponse{Found: true, Status: "closed", Participants: in("supervising_prosecutor")},
			siobroker.CodeCaseUnknown, `is "closed" in the erdr registry`},
		{"not found", schemas.CaseCheckResponse{}, siobroker.CodeCaseUnknown, "not among the proceedings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer.Store(tc.resp)
			raw, _ := h.build(t, reqSpec{services: []int{1}})
			_, _, err := h.handle(raw)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantCode(t, err, tc.code)
			if !strings.Contains(siobroker.ErrorMessage(err), tc.msg) {
				t.Errorf("message %q, want %q", siobroker.ErrorMessage(err), tc.msg)
			}
		})
	}
}

// TestRetryAfterUnavailable: SIO-UNAVAILABLE says "retry later", so the very same signed request
// must be accepted once the registry answers again; it must not be refused as a replay.
func TestRetryAfterUnavailable(t *testing.T) {
	var answering atomic.Bool
	h := newHarnessWith(t, harnessOpts{
		checkTimeout: 300 * time.Millisecond,
		caseRegistry: func(name string) adapters.CaseRegistry {
			demoRegistry := demo.NewCaseRegistry(name, demo.CasesOf(manifest.Users))
			return adapters.CaseRegistryFunc(func(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
				if !answering.Load() {
					return silentRegistry{}.Check(ctx, req)
				}
				return demoRegistry.Check(ctx, req)
			})
		},
	})
	for _, placement := range []signing.Placement{signing.PlacementWSSE, signing.PlacementEnveloped} {
		answering.Store(false)
		raw, _ := h.build(t, reqSpec{placement: placement, services: []int{1}})
		_, _, err := h.handle(raw)
		wantCode(t, err, siobroker.CodeUnavailable)
		answering.Store(true)
		if _, _, err := h.handle(raw); err != nil {
			t.Fatalf("%s: retry of the same request after SIO-UNAVAILABLE: %v", placement, err)
		}
		_, _, err = h.handle(raw)
		wantCode(t, err, siobroker.CodeReplayID)
	}
}

// TestEnvelopedReplayNewMessageID: in the enveloped placement requestInfo is not signed, so a
// captured request re-posted under a fresh messageId is caught by the digest of its signed query.
func TestEnvelopedReplayNewMessageID(t *testing.T) {
	h := newHarness(t, nil)
	raw, info := h.build(t, reqSpec{placement: signing.PlacementEnveloped, services: []int{1}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("original: %v", err)
	}
	// Only the text of requestInfo/messageId changes; the query, its Id and its signature stay.
	newID := info.MessageID + "-again"
	old := []byte(">" + info.MessageID + "<")
	if n := bytes.Count(raw, old); n != 1 {
		t.Fatalf("messageId text occurs %d times", n)
	}
	replay := bytes.Replace(raw, old, []byte(">"+newID+"<"), 1)
	h.clock.Set(h.clock.Now().Add(time.Minute)) // later, still within the window
	_, seen, err := h.handle(replay)
	wantCode(t, err, siobroker.CodeReplayID)
	if seen.MessageID != newID || seen.SignerIIN != userSigner.IIN() || seen.Placement != signing.PlacementEnveloped {
		t.Errorf("Request = %+v: the signature must have verified", seen)
	}
	if msg := siobroker.ErrorMessage(err); !strings.Contains(msg, "signed content") {
		t.Errorf("message %q, want the signed-content replay", msg)
	}
	if h.called(1) != 1 || h.checked() != 1 {
		t.Errorf("backend asked %d times, case registries %d times, want 1 and 1", h.called(1), h.checked())
	}

	// The digest is kept for good: forgetting old messageIds does not let the copy through.
	if _, err := h.db.ForgetSeenBefore(context.Background(), h.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	replay = bytes.Replace(raw, old, []byte(">"+newID+"-2<"), 1)
	_, _, err = h.handle(replay)
	wantCode(t, err, siobroker.CodeReplayID)

	// In the WS-Security placement the messageId is signed: the same change breaks the signature.
	raw, info = h.build(t, reqSpec{services: []int{1}})
	old = []byte(">" + info.MessageID + "<")
	_, _, err = h.handle(bytes.Replace(raw, old, []byte(">"+info.MessageID+"-again<"), 1))
	if err == nil || !strings.HasPrefix(string(siobroker.ErrorCode(err)), "SIO-SIG-") {
		t.Errorf("WS-Security request with a changed messageId: %v, want a signature refusal", err)
	}
	if h.called(1) != 1 {
		t.Errorf("backend asked %d times", h.called(1))
	}
}

// TestTouchUpdatesLastRequest: an accepted request restarts the §16 clock; a refused one does not.
func TestTouchUpdatesLastRequest(t *testing.T) {
	h := newHarness(t, nil)
	iin := userSigner.IIN()
	if u := h.user(t, iin); !u.LastRequest.IsZero() {
		t.Fatalf("seeded user has LastRequest %s", u.LastRequest)
	}
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("first: %v", err)
	}
	first := h.clock.Now()
	if u := h.user(t, iin); !u.LastRequest.Equal(first) {
		t.Errorf("LastRequest = %s, want %s", u.LastRequest, first)
	}

	// A refused request (unknown case) an hour later leaves it.
	h.clock.Set(first.Add(time.Hour))
	raw, _ = h.build(t, reqSpec{caseRef: siobroker.CaseRef{Number: "261500031999999"}, services: []int{1}})
	_, _, err := h.handle(raw)
	wantCode(t, err, siobroker.CodeCaseUnknown)
	if u := h.user(t, iin); !u.LastRequest.Equal(first) {
		t.Errorf("LastRequest = %s after a refusal, want %s", u.LastRequest, first)
	}

	// An accepted one two hours later moves it; other users are untouched.
	h.clock.Set(first.Add(2 * time.Hour))
	raw, _ = h.build(t, reqSpec{placement: signing.PlacementEnveloped, services: []int{1}})
	if _, _, err := h.handle(raw); err != nil {
		t.Fatalf("second: %v", err)
	}
	if u := h.user(t, iin); !u.LastRequest.Equal(h.clock.Now()) {
		t.Errorf("LastRequest = %s, want %s", u.LastRequest, h.clock.Now())
	}
	if u := h.user(t, ecdsaSigner.IIN()); !u.LastRequest.IsZero() {
		t.Errorf("another user's LastRequest = %s", u.LastRequest)
	}
}
