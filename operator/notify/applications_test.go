package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/sqlite"
)

// submit records a pending register application for iin in db, submitted at now, due in a day.
func submit(t *testing.T, db *sqlite.DB, now time.Time, iin string) int64 {
	t.Helper()
	u := siobroker.User{IIN: iin, FullName: "Тестов Тест", Organisation: "ДП г. Астаны", Department: "СУ", Position: "следователь",
		Role: 3, Status: siobroker.UserActive}
	id, err := db.SubmitApplication(context.Background(), siobroker.SubmittedApplication{
		Application: siobroker.Application{Kind: siobroker.ApplyRegister, IIN: iin, Reason: "приказ № 5", At: now, By: "кадры", User: u},
		Deadline:    now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestApplicationNotices: each event of a submitted application is told once: its submission to
// the operator with the deadline (§13), its deadline passed undecided to the operator again, and
// its decision (approval, or the refusal with its motive) to the applicant's organisation; two
// notifiers over one store at once still tell each event once.
func TestApplicationNotices(t *testing.T) {
	ctx := context.Background()
	db, j := openStore(t)
	clk := &clock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)}
	var mu sync.Mutex
	var hooks []webhookBody
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b webhookBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			t.Error(err)
		}
		mu.Lock()
		hooks = append(hooks, b)
		mu.Unlock()
	}))
	defer hook.Close()
	cfg := Config{Applications: db, Recipients: Recipients{
		Operator:      Contacts{Webhooks: []string{hook.URL + "/operator"}},
		Prosecutor:    Contacts{Emails: []string{"nadzor@prokuratura.test"}},
		Organisations: map[string]Contacts{"ДП г. Астаны": {Webhooks: []string{hook.URL + "/org"}}},
	}}
	n, err := New(cfg, db, j, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	written := func(want int) {
		t.Helper()
		got, err := n.NotifyApplications(ctx)
		if err != nil || got != want {
			t.Fatalf("NotifyApplications = %d, %v; want %d", got, err, want)
		}
	}
	first := submit(t, db, clk.Now(), "870315123455")
	second := submit(t, db, clk.Now(), "900101300017")
	written(2) // two submissions, to the operator's one webhook
	written(0)

	clk.add(time.Hour)
	if _, err := db.ApproveSubmitted(ctx, first, "оператор Асқаров", clk.Now()); err != nil {
		t.Fatal(err)
	}
	written(1) // the approval, to the organisation
	clk.add(24 * time.Hour)
	written(1) // the second is past its deadline: the operator again
	written(0)
	if err := db.RefuseSubmitted(ctx, second, "оператор Асқаров", clk.Now(), "неполные сведения", []byte("<signed/>"), "750312300458"); err != nil {
		t.Fatal(err)
	}
	// Two notifiers at once: the refusal is told once.
	other, err := New(cfg, db, j, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, nn := range []*Notifier{n, other} {
		wg.Go(func() {
			c, err := nn.NotifyApplications(ctx)
			if err != nil {
				t.Error(err)
			}
			counts[i] = c
		})
	}
	wg.Wait()
	if counts[0]+counts[1] != 1 {
		t.Fatalf("the refusal was written %v times", counts)
	}

	if d, f, err := n.DeliverDue(ctx); err != nil || d != 5 || f != 0 {
		t.Fatalf("DeliverDue = %d delivered, %d failed, %v; want 5", d, f, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []struct{ kind, subject, body string }{
		{siobroker.NoticeApplicationSubmitted, "решение до 2026-12-08T10:00:00.000+05:00 (п. 13 Правил)", "870315123455"},
		{siobroker.NoticeApplicationSubmitted, "900101300017", "Основание: приказ № 5"},
		{siobroker.NoticeApplicationDecided, "исполнена", "Решение: исполнена, 2026-12-07T11:00:00.000+05:00 (оператор Асқаров)"},
		{siobroker.NoticeApplicationOverdue, "не рассмотрена в срок", "истёк"},
		{siobroker.NoticeApplicationDecided, "отклонена", "Мотивы отказа: неполные сведения"},
	}
	if len(hooks) != len(want) {
		t.Fatalf("%d webhooks, want %d: %+v", len(hooks), len(want), hooks)
	}
	for i, w := range want {
		h := hooks[i]
		if h.Kind != w.kind || !strings.Contains(h.Subject, w.subject) || !strings.Contains(h.Body, w.body) {
			t.Errorf("notice %d: %s %q\n%s\nwant %s %q, body with %q", i, h.Kind, h.Subject, h.Body, w.kind, w.subject, w.body)
		}
	}
	queued := 0
	for _, r := range notificationRecords(t, j) {
		if r.Event == "queued" {
			queued++
		}
	}
	if queued != 5 {
		t.Errorf("journal: %d notices queued, want 5", queued)
	}
}

// TestApplicationNoticesWithoutRecipients: with nobody configured, events are marked as they pass
// and nothing is written; recipients configured later hear only of what happens after.
func TestApplicationNoticesWithoutRecipients(t *testing.T) {
	ctx := context.Background()
	db, j := openStore(t)
	clk := &clock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)}
	silent, err := New(Config{Applications: db}, db, j, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	submit(t, db, clk.Now(), "870315123455")
	if c, err := silent.NotifyApplications(ctx); err != nil || c != 0 {
		t.Fatalf("without recipients: %d, %v", c, err)
	}
	told, err := New(Config{Applications: db, Recipients: Recipients{Operator: Contacts{Emails: []string{"operator@sio.test"}}}}, db, j, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := told.NotifyApplications(ctx); err != nil || c != 0 {
		t.Fatalf("an event told while nobody was configured was told again: %d, %v", c, err)
	}
	submit(t, db, clk.Now(), "900101300017")
	if c, err := told.NotifyApplications(ctx); err != nil || c != 1 {
		t.Fatalf("a new submission: %d, %v", c, err)
	}
}
