package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/notify/notifytest"
	"github.com/sio-pso/siobroker/sqlite"
)

// clock is a clock the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openStore(t *testing.T) (*sqlite.DB, *sqlite.Journal) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, db.Journal()
}

// notificationRecords returns the journal's notification records, decoded.
func notificationRecords(t *testing.T, j *sqlite.Journal) []journalDetails {
	t.Helper()
	recs, err := j.Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalNotification}})
	if err != nil {
		t.Fatal(err)
	}
	var out []journalDetails
	for _, r := range recs {
		var d journalDetails
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// TestUserBlockedNotices: the §45 notices of a user blocked for a violation go to the prosecutor
// by e-mail, over STARTTLS, through a real SMTP server that is down at first, and to the
// organisation's webhook, which fails at first; each is retried after its back-off until it is
// delivered, and every step is journaled without the notice's body.
func TestUserBlockedNotices(t *testing.T) {
	ctx := context.Background()
	db, j := openStore(t)
	clk := &clock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)}

	// The SMTP server's port, not listening yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	var hookCalls atomic.Int32
	var hookBody webhookBody
	var hookKey string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hookCalls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		hookKey = r.Header.Get("Idempotency-Key")
		if err := json.NewDecoder(r.Body).Decode(&hookBody); err != nil {
			t.Error(err)
		}
	}))
	defer hook.Close()

	// The server's certificate is made now; the server starts after the first attempt.
	cert := notifytest.SelfSigned(t)
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(cert.CAFile)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("the mail server's certificate: %v", err)
	}
	n, err := New(Config{
		SMTP:     SMTP{Addr: addr, From: "sio-pso@operator.test", TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}},
		RetryMin: time.Minute, RetryMax: 10 * time.Minute,
		Recipients: Recipients{Prosecutor: Contacts{Emails: []string{"nadzor@prokuratura.test"}},
			Organisations: map[string]Contacts{"ДП г. Астаны": {Webhooks: []string{hook.URL + "/notices"}}}},
	}, db, j, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := siobroker.User{IIN: "750312300458", FullName: "Иванов Иван", Organisation: "ДП г. Астаны", Department: "СУ", Position: "следователь"}
	notes, err := n.UserBlocked(ctx, u, "запросы вне производства", "оператор Асқаров")
	if err != nil || len(notes) != 2 {
		t.Fatalf("UserBlocked = %d notices, %v", len(notes), err)
	}

	delivered, failed, err := n.DeliverDue(ctx)
	if err != nil || delivered != 0 || failed != 2 {
		t.Fatalf("first attempt: %d delivered, %d failed, %v; want both failed (no SMTP server, webhook busy)", delivered, failed, err)
	}
	if d, f, _ := n.DeliverDue(ctx); d+f != 0 {
		t.Errorf("tried again before the back-off: %d, %d", d, f)
	}

	if l, err = net.Listen("tcp", addr); err != nil {
		t.Fatalf("listen on the SMTP port again: %v", err)
	}
	box := notifytest.Serve(t, l, cert)
	clk.add(time.Minute)
	delivered, failed, err = n.DeliverDue(ctx)
	if err != nil || delivered != 2 || failed != 0 {
		t.Fatalf("after the back-off: %d delivered, %d failed, %v", delivered, failed, err)
	}

	msgs := box.Messages()
	if len(msgs) != 1 || msgs[0].To != "nadzor@prokuratura.test" || !msgs[0].TLS || msgs[0].From != "sio-pso@operator.test" {
		t.Fatalf("mail received %+v", msgs)
	}
	m, err := mail.ReadMessage(strings.NewReader(string(msgs[0].Data)))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	body, _ := io.ReadAll(m.Body)
	if err != nil || !strings.Contains(subject, "750312300458") || !strings.Contains(subject, "п. 45") ||
		!strings.Contains(string(body), "запросы вне производства") || !strings.Contains(string(body), "Иванов Иван") {
		t.Errorf("mail %q (%v):\n%s", subject, err, body)
	}
	if hookCalls.Load() != 2 || hookBody.Kind != siobroker.NoticeUserBlocked || hookBody.Organisation != "ДП г. Астаны" ||
		!strings.Contains(hookBody.Body, "Иванов Иван") || !strings.HasPrefix(hookKey, "sio-notice-") {
		t.Errorf("webhook: %d calls, %+v, key %q", hookCalls.Load(), hookBody, hookKey)
	}
	if d, f, _ := n.DeliverDue(ctx); d+f != 0 {
		t.Errorf("delivered notices were sent again: %d, %d", d, f)
	}

	recs := notificationRecords(t, j)
	var queued, done int
	for _, r := range recs {
		switch r.Event {
		case "queued":
			queued++
		case "delivered":
			done++
		}
	}
	if queued != 2 || done != 2 {
		t.Errorf("journal: %d queued, %d delivered; want 2 and 2: %+v", queued, done, recs)
	}
}

// TestMailNeedsSTARTTLS: a server that does not offer STARTTLS gets nothing; the notice stays in
// the outbox with the reason.
func TestMailNeedsSTARTTLS(t *testing.T) {
	ctx := context.Background()
	db, j := openStore(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	box := notifytest.Serve(t, l, nil)
	clk := &clock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)}
	n, err := New(Config{SMTP: SMTP{Addr: l.Addr().String(), From: "sio@operator.test"}}, db, j, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(ctx, siobroker.NoticeUserBlocked, "org", "s", "b", Contacts{Emails: []string{"a@b.test"}}); err != nil {
		t.Fatal(err)
	}
	if d, f, err := n.DeliverDue(ctx); d != 0 || f != 1 || err != nil {
		t.Fatalf("DeliverDue = %d, %d, %v", d, f, err)
	}
	if len(box.Messages()) != 0 {
		t.Error("a notice was sent in clear")
	}
	left, err := db.Notifications(ctx, clk.Now().Add(-time.Hour), clk.Now().Add(time.Hour))
	if err != nil || len(left) != 1 || !left[0].DeliveredAt.IsZero() || !strings.Contains(left[0].LastError, "STARTTLS") || left[0].Attempts != 1 {
		t.Errorf("outbox %+v, %v", left, err)
	}
}

// TestRecipientsValidated: addresses and webhooks are checked when the recipients are loaded.
func TestRecipientsValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Recipients
		want string
	}{
		{"display name", Recipients{Prosecutor: Contacts{Emails: []string{"Прокурор <p@x.test>"}}}, "not a plain e-mail address"},
		{"plain http", Recipients{Organisations: map[string]Contacts{"o": {Webhooks: []string{"http://hr.example/x"}}}}, "only to a loopback"},
		{"ftp", Recipients{Prosecutor: Contacts{Webhooks: []string{"ftp://x/y"}}}, "want https"},
	} {
		if err := tc.r.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	ok := Recipients{Prosecutor: Contacts{Emails: []string{"p@x.test"}, Webhooks: []string{"https://x.test/h", "http://127.0.0.1:9/h"}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid recipients: %v", err)
	}
}
