package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// TestSubmittedApplications: a submitted application waits pending; its approval applies it and
// records the decision together, or, when the registry refuses the transition, changes neither;
// a decided application is never decided again nor changed, and none is ever deleted.
func TestSubmittedApplications(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)
	user := siobroker.User{FullName: "Тестов Тест", Organisation: "ДП", Role: 3}
	submit := func(iin string) int64 {
		t.Helper()
		id, err := s.SubmitApplication(ctx, siobroker.SubmittedApplication{Deadline: at.Add(24 * time.Hour),
			Application: siobroker.Application{Kind: siobroker.ApplyRegister, IIN: iin, Reason: "заявка", At: at, By: "кадры", User: user}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	first, second := submit("870315123455"), submit("870315123455")
	pending, err := s.SubmittedApplications(ctx, true)
	if err != nil || len(pending) != 2 || pending[0].Application.User.FullName != "Тестов Тест" || !pending[0].Deadline.Equal(at.Add(24*time.Hour)) {
		t.Fatalf("pending %+v, %v", pending, err)
	}
	if _, exists, _ := s.User(ctx, "870315123455"); exists {
		t.Fatal("a submitted application was applied before its decision")
	}
	u, err := s.ApproveSubmitted(ctx, first, "оператор", at.Add(time.Hour))
	if err != nil || u.Status != siobroker.UserActive || u.Role != 3 {
		t.Fatalf("approve = %+v, %v", u, err)
	}
	// The same registration again: the registry refuses it, and the application stays pending.
	if _, err := s.ApproveSubmitted(ctx, second, "оператор", at.Add(time.Hour)); !errors.Is(err, siobroker.ErrTransition) {
		t.Fatalf("approving a second registration = %v, want ErrTransition", err)
	}
	if sa, _, _ := s.SubmittedApplication(ctx, second); sa.Status != siobroker.SubmittedPending {
		t.Errorf("a refused transition decided the application: %+v", sa)
	}
	if _, err := s.ApproveSubmitted(ctx, first, "другой", at.Add(2*time.Hour)); !errors.Is(err, siobroker.ErrNotPending) {
		t.Errorf("a second decision = %v, want ErrNotPending", err)
	}
	if err := s.RefuseSubmitted(ctx, second, "оператор", at.Add(time.Hour), "дубль", []byte("<signed/>"), "750312300458"); err != nil {
		t.Fatal(err)
	}
	sa, _, _ := s.SubmittedApplication(ctx, second)
	if sa.Status != siobroker.SubmittedRefused || sa.RefusalReason != "дубль" || string(sa.Refusal) != "<signed/>" || sa.RefusalSigner != "750312300458" {
		t.Errorf("refused %+v", sa)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE submitted_applications SET refusal_reason = 'другое' WHERE id = ?`, second); err == nil {
		t.Error("a decided application was changed")
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM submitted_applications WHERE id = ?`, first); err == nil {
		t.Error("an application was deleted")
	}
}
