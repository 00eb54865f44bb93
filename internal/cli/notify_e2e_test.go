package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/operator/notify/notifytest"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestUserBlockedNoticesE2E: an operator blocks a user for a violation with `users block
// --violation` beside a running broker; the broker's notifier delivers the §45 notices from the
// store's outbox: an e-mail to the prosecutor through a real SMTP server over STARTTLS, and a
// webhook to the user's organisation.
func TestUserBlockedNoticesE2E(t *testing.T) {
	mailbox := notifytest.Serve(t, nil, notifytest.SelfSigned(t))
	var mu sync.Mutex
	var hooks []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("webhook body %q: %v", b, err)
		}
		mu.Lock()
		hooks = append(hooks, v)
		mu.Unlock()
	}))
	defer hook.Close()

	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	victim := src.user(t, "rsa", "valid")
	recipients := filepath.Join(dir, "notify.yaml")
	if err := os.WriteFile(recipients, []byte(fmt.Sprintf("prosecutor:\n  emails: [nadzor@prokuratura.test]\norganisations:\n  %q:\n    webhooks: [%q]\n",
		devpki.DemoOrganisation, hook.URL+"/sio")), 0o600); err != nil {
		t.Fatal(err)
	}
	notifyCfg := config.Notify{RecipientsFile: recipients, Interval: 100 * time.Millisecond,
		SMTP: config.NotifySMTP{Addr: mailbox.Addr, From: "sio-pso@operator.test", CAFile: mailbox.CAFile}}
	e, err := startE2EWith(dir, siobroker.SystemClock{}, func(cfg *config.Broker) { cfg.Notify = notifyCfg })
	if err != nil {
		t.Fatalf("start a broker that delivers notices: %v", err)
	}
	defer e.b.Close()
	// The operator's command reads the same configuration as the broker.
	brokerFile := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(brokerFile, []byte(fmt.Sprintf("data_dir: %q\nnotify:\n  recipients_file: %q\n  smtp:\n    addr: %q\n    from: sio-pso@operator.test\n    ca_file: %q\n",
		dir, recipients, mailbox.Addr, mailbox.CAFile)), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errs := runUsers(t, "block", "--config", brokerFile, "--iin", victim.IIN, "--by", "оператор", "--reason", "запросы вне производства", "--violation")
	if code != 0 || strings.Count(out, "queued (§45)") != 2 {
		t.Fatalf("users block --violation = %d\n%s%s", code, out, errs)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := len(hooks)
		mu.Unlock()
		if n == 1 && len(mailbox.Messages()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s: %d webhooks, %d mails", n, len(mailbox.Messages()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := mailbox.Messages()[0]
	if m.To != "nadzor@prokuratura.test" || !m.TLS || !strings.Contains(string(m.Data), victim.IIN) {
		t.Errorf("mail %+v", m)
	}
	if hooks[0]["kind"] != siobroker.NoticeUserBlocked || !strings.Contains(hooks[0]["body"].(string), "запросы вне производства") {
		t.Errorf("webhook %v", hooks[0])
	}
}

// TestApplicationNoticesE2E: an application submitted with `users register --submit` beside a
// running broker is told to the operator by e-mail (through a real SMTP server, over STARTTLS)
// with the deadline of §13; once the operator approves it, the applicant's organisation hears of
// the decision by webhook.
func TestApplicationNoticesE2E(t *testing.T) {
	mailbox := notifytest.Serve(t, nil, notifytest.SelfSigned(t))
	var mu sync.Mutex
	var hooks []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("webhook body %q: %v", b, err)
		}
		mu.Lock()
		hooks = append(hooks, v)
		mu.Unlock()
	}))
	defer hook.Close()

	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	const org = "ДП г. Астаны"
	recipients := filepath.Join(dir, "notify.yaml")
	if err := os.WriteFile(recipients, []byte(fmt.Sprintf("operator:\n  emails: [dostup@operator.test]\norganisations:\n  %q:\n    webhooks: [%q]\n",
		org, hook.URL+"/sio")), 0o600); err != nil {
		t.Fatal(err)
	}
	notifyCfg := config.Notify{RecipientsFile: recipients, Interval: 100 * time.Millisecond,
		SMTP: config.NotifySMTP{Addr: mailbox.Addr, From: "sio-pso@operator.test", CAFile: mailbox.CAFile}}
	e, err := startE2EWith(dir, siobroker.SystemClock{}, func(cfg *config.Broker) { cfg.Notify = notifyCfg })
	if err != nil {
		t.Fatalf("start a broker that delivers notices: %v", err)
	}
	defer e.b.Close()
	brokerFile := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(brokerFile, []byte(fmt.Sprintf("data_dir: %q\nnotify:\n  recipients_file: %q\n", dir, recipients)), 0o600); err != nil {
		t.Fatal(err)
	}

	const applicant = "870315123455"
	code, out, errs := runUsers(t, append([]string{"register", "--config", brokerFile, "--iin", applicant, "--name", "Тестов Тест", "--org", org,
		"--role", "3", "--reason", "приказ № 5", "--by", "кадры", "--submit"}, app5Flags...)...)
	if code != 0 || !strings.Contains(out, "submitted") {
		t.Fatalf("users register --submit = %d\n%s%s", code, out, errs)
	}
	id := strings.TrimSuffix(strings.Fields(out)[1], ":") // "application N: register … submitted; …"
	waitFor := func(what string, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !done() {
			if time.Now().After(deadline) {
				t.Fatalf("after 15 s, no %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("mail to the operator", func() bool { return len(mailbox.Messages()) == 1 })
	m := mailbox.Messages()[0]
	if m.To != "dostup@operator.test" || !m.TLS || !strings.Contains(string(m.Data), applicant) {
		t.Errorf("mail %+v", m)
	}
	if code, out, errs := runUsers(t, "approve", id, "--config", brokerFile, "--by", "оператор Асқаров"); code != 0 {
		t.Fatalf("users approve %s = %d\n%s%s", id, code, out, errs)
	}
	waitFor("webhook to the organisation", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(hooks) == 1
	})
	if hooks[0]["kind"] != siobroker.NoticeApplicationDecided || !strings.Contains(hooks[0]["subject"].(string), "исполнена") ||
		hooks[0]["organisation"] != org {
		t.Errorf("webhook %v", hooks[0])
	}
	if n := len(mailbox.Messages()); n != 1 {
		t.Errorf("%d mails; the operator hears of a submission once", n)
	}
}
