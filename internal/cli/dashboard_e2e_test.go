package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// chromiumPath returns Debian's Chromium. Under CI=true a missing browser fails the test (.ci/run
// installs the chromium package); elsewhere the test is skipped.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing (Debian package chromium); .ci/run installs it")
	}
	t.Skip("chromium not installed (Debian package chromium)")
	return ""
}

// headlessChromium starts chromium headless for the test, and returns the context its actions run
// in. The whole browser session is bounded: the allocator's context ends it, at the latest when
// the test ends.
func headlessChromium(t *testing.T, ctx context.Context, chromium string) context.Context {
	t.Helper()
	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(bctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))...)
	cctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancel()
	})
	return cctx
}

// operatorUser is the demo user the demo registrations give the operator right: the role-1 prosecutor.
func operatorUser(t *testing.T, m *devpki.Manifest) devpki.User {
	t.Helper()
	for _, u := range m.Users {
		if u.Role == 1 && u.Status == devpki.StatusValid {
			return u
		}
	}
	t.Fatal("no valid role-1 demo user")
	return devpki.User{}
}

// TestDashboardInChromium: a real broker, an open delivery-delay incident, the signed login of
// `siobroker dashboard login`, and the dashboard in headless Chromium: it shows the service
// queues and the incident, and the operator annotates and closes the incident by filling in the
// page's form and pressing its buttons. The store then has the incident closed, with the
// operator's measures, and the journal has the operator's actions.
func TestDashboardInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	e := privateBroker(t, siobroker.SystemClock{})
	ctx := context.Background()
	op := operatorUser(t, e.manifest)

	now := siobroker.SystemClock{}.Now()
	inc, created, err := e.b.Store().OpenIncident(ctx, siobroker.Incident{
		Type: siobroker.IncidentDeliveryDelay, Cause: siobroker.IncidentCause{Service: 7, Queue: schemas.ServiceTopic(7)},
		LastError: "adapter not answering", StartedAt: now.Add(-75 * time.Minute), OpenedAt: now.Add(-14 * time.Minute), Affected: 3,
	}, "siobroker")
	if err != nil || !created {
		t.Fatalf("open an incident: %v (created %v)", err, created)
	}

	var out, errb bytes.Buffer
	if code := Main(ctx, []string{"dashboard", "login", "--url", e.base, "--user", op.IIN, "--pki", e.pki}, &out, &errb); code != 0 {
		t.Fatalf("siobroker dashboard login exited %d: %s", code, errb.String())
	}
	link := strings.TrimSpace(out.String())
	if !strings.HasPrefix(link, e.base+"/dashboard/?ticket=") {
		t.Fatalf("login printed %q", link)
	}

	cctx := headlessChromium(t, ctx, chromium)

	row := fmt.Sprintf("#incident-%d", inc.Number)
	status := func(want string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById('status').textContent.includes(%q)`, want),
			chromedp.WithPollingTimeout(20*time.Second))
	}
	shot := func() {
		// Kept after the test, to be looked at.
		if b, err := chromedp.Run(cctx, chromedp.FullScreenshot(80)); err == nil {
			if f, err := os.CreateTemp("", "siobroker-dashboard-*.jpg"); err == nil {
				_, werr := f.Write(b)
				if f.Close() == nil && werr == nil {
					t.Logf("screenshot: %s", f.Name())
				}
			}
		}
		if s, err := chromedp.Run(cctx, chromedp.Text(chromedp.CSS("#status"))); err == nil {
			t.Logf("status line: %q", s)
		}
	}

	// The link answers a form and spends nothing; its button (a POST with the form's CSRF token)
	// opens the session.
	if err := chromedp.Do(cctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`#open-session-button`)),
	); err != nil {
		shot()
		t.Fatalf("load the ticket link: %v", err)
	}
	// By default the table shows the busy services only: here, without traffic, the one with the
	// open incident.
	if err := chromedp.Do(cctx,
		chromedp.Click(chromedp.CSS(`#open-session-button`)),
		chromedp.WaitVisible(chromedp.CSS(`#service-7`)),
		chromedp.WaitVisible(chromedp.CSS(row+" button")),
	); err != nil {
		shot()
		t.Fatalf("load the dashboard: %v", err)
	}
	loc, err := chromedp.Run(cctx, chromedp.Location())
	if err != nil || loc != e.base+"/dashboard/" {
		t.Errorf("after the ticket the page is at %q (%v), want the bare /dashboard/: the ticket must leave the address bar", loc, err)
	}
	services, err := chromedp.Run(cctx, chromedp.Text(chromedp.CSS("#services-rows")))
	if err != nil || !strings.Contains(services, "sio.service.007") || strings.Contains(services, "sio.service.001") {
		t.Fatalf("the services table, busy only: %v\n%s", err, services)
	}
	// "Busy only" unticked, it shows all 93.
	if err := chromedp.Do(cctx,
		chromedp.Click(chromedp.CSS(`#services-busy-only`)),
		chromedp.WaitVisible(chromedp.CSS(`#services-rows tr:nth-child(93)`)),
	); err != nil {
		shot()
		t.Fatalf("show all the services: %v", err)
	}
	services, err = chromedp.Run(cctx, chromedp.Text(chromedp.CSS("#services-rows")))
	if err != nil || !strings.Contains(services, "sio.service.001") || !strings.Contains(services, "sio.service.093") {
		t.Fatalf("the services table, all: %v\n%s", err, services)
	}
	open, err := chromedp.Run(cctx, chromedp.Text(chromedp.CSS(row)))
	if err != nil || !strings.Contains(open, "sio.service.007") || !strings.Contains(open, "adapter not answering") ||
		!strings.Contains(open, " +05:00") {
		t.Fatalf("the incident's row: %v\n%s", err, open)
	}
	who, err := chromedp.Run(cctx, chromedp.Text(chromedp.CSS("#who")))
	if err != nil || !strings.Contains(who, op.IIN) {
		t.Errorf("the page names %q as the operator (%v)", who, err)
	}
	dlq, err := chromedp.Run(cctx, chromedp.Text(chromedp.CSS("#dlq-note")))
	if err != nil || !strings.Contains(dlq, "no dead-letter queue") {
		t.Errorf("on GoChannel the page says about the dead-letter queue: %q (%v)", dlq, err)
	}

	// The operator acts through the page: Act on the row, type, press the buttons.
	if err := chromedp.Do(cctx,
		chromedp.Click(chromedp.CSS(row+" button")),
		chromedp.SendKeys(chromedp.CSS("#act-measures"), "адаптер перезапущен"),
		chromedp.SendKeys(chromedp.CSS("#act-responsible"), "Петров П."),
		chromedp.Click(chromedp.CSS("#act-annotate")),
		status(fmt.Sprintf("Measures recorded for incident %d", inc.Number)),
		chromedp.SendKeys(chromedp.CSS("#act-note"), "доставка восстановлена"),
		chromedp.Click(chromedp.CSS("#act-close")),
		status(fmt.Sprintf("Incident %d closed", inc.Number)),
		chromedp.WaitVisible(chromedp.CSS("#incidents-recent "+row)),
	); err != nil {
		shot()
		t.Fatalf("annotate and close through the page: %v", err)
	}
	recent, err := chromedp.Run(cctx, chromedp.Text(chromedp.CSS("#incidents-recent "+row)))
	if err != nil || !strings.Contains(recent, "доставка восстановлена") || !strings.Contains(recent, "Петров П.") {
		t.Errorf("the closed incident on the page: %v\n%s", err, recent)
	}

	got, ok, err := e.b.Store().Incident(ctx, inc.Number)
	if err != nil || !ok {
		t.Fatalf("incident %d in the store: %v %v", inc.Number, ok, err)
	}
	if got.Status != siobroker.IncidentClosed || got.CloseNote != "доставка восстановлена" || got.Measures != "адаптер перезапущен" ||
		got.Responsible != "Петров П." || got.ClosedAt.IsZero() {
		t.Fatalf("incident in the store after the page closed it: %+v", got)
	}
	events, err := e.b.Store().IncidentEvents(ctx, inc.Number)
	if err != nil {
		t.Fatal(err)
	}
	if last := events[len(events)-1]; last.Kind != siobroker.IncidentEventClosed || !strings.Contains(last.By, op.IIN) {
		t.Fatalf("the close is recorded as by %q", last.By)
	}

	recs, err := e.b.Store().Journal().Query(ctx, siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalOperator}})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		var d struct{ Action string }
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		if r.SignerIIN != op.IIN {
			t.Errorf("journal record %d is by %s", r.Seq, r.SignerIIN)
		}
		actions = append(actions, d.Action+":"+r.Code)
	}
	if fmt.Sprint(actions) != "[login:ok session:ok annotate:ok close:ok]" {
		t.Fatalf("journaled dashboard actions: %v", actions)
	}

	// An emergency of Appendix 7 through the page (§41): the kind chosen, the causes typed, opened;
	// its first action started and ended with the buttons of its row; the register printed.
	emergency := "#emergency-2"
	if err := chromedp.Do(cctx,
		chromedp.SetValue(chromedp.CSS("#em-kind"), "fire-alarm"),
		chromedp.SendKeys(chromedp.CSS("#em-cause"), "дым в серверной"),
		chromedp.Click(chromedp.CSS("#em-open")),
		status("Emergency opened"),
		chromedp.WaitVisible(chromedp.CSS(emergency+"-action-1 button.action-start")),
		chromedp.Click(chromedp.CSS(emergency+"-action-1 button.action-start")),
		status("Action 1 of emergency 2 started"),
		chromedp.WaitVisible(chromedp.CSS(emergency+"-action-1 button.action-end")),
		chromedp.Click(chromedp.CSS(emergency+"-action-1 button.action-end")),
		status("Action 1 of emergency 2 ended"),
	); err != nil {
		shot()
		t.Fatalf("an emergency through the page: %v", err)
	}
	// The page redraws the emergency at every refresh: wait for the drawing that shows the end.
	if err := chromedp.Do(cctx, chromedp.Poll[chromedp.Void](`(() => {
			const e = document.querySelector('`+emergency+`');
			const t = e ? e.textContent : '';
			return t.includes('3. Действия в случае пожарной тревоги') && t.includes('дым в серверной') && t.includes('5 мин') &&
				!document.querySelector('`+emergency+`-action-1 button');
		})()`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		shot()
		t.Errorf("the emergency on the page, its first action ended: %v", err)
	}
	em, ok, err := e.b.Store().Incident(ctx, 2)
	if err != nil || !ok || em.Type != string(siobroker.EmergencyFireAlarm) || em.Reason != "дым в серверной" ||
		em.Actions[0].StartedAt.IsZero() || em.Actions[0].EndedAt.IsZero() || !em.Actions[1].StartedAt.IsZero() {
		t.Fatalf("the emergency in the store: %+v, %v, %v", em, ok, err)
	}
	if err := chromedp.Do(cctx,
		chromedp.Navigate(e.base+"/dashboard/register"),
		chromedp.WaitVisible(chromedp.CSS("#incident-2")),
	); err != nil {
		shot()
		t.Fatalf("the register: %v", err)
	}
	printed, err := chromedp.Run(cctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil || !strings.Contains(printed, "Журнал аварийных ситуаций") || !strings.Contains(printed, "Дата и время окончания") ||
		!strings.Contains(printed, "дым в серверной") {
		t.Errorf("the printed register: %v\n%s", err, printed)
	}
}

// dashboardSession logs in as op with `siobroker dashboard login` against base, opens the link
// in an HTTP client with a cookie jar, and returns the client and the session's CSRF token.
func dashboardSession(t *testing.T, base, pki string, op devpki.User) (*http.Client, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"dashboard", "login", "--url", base, "--user", op.IIN, "--pki", pki}, &out, &errb); code != 0 {
		t.Fatalf("siobroker dashboard login exited %d: %s", code, errb.String())
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	// The link answers the form that opens the session; posting it, as its button does, opens it.
	resp, err := c.Get(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{}
	for _, m := range regexp.MustCompile(`name="(csrf|ticket)" value="([^"]*)"`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	resp, err = c.PostForm(base+"/dashboard/session", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var s struct{ CSRF string }
	if status := dashboardGet(t, c, base+"/dashboard/api/session", &s); status != http.StatusOK || s.CSRF == "" {
		t.Fatalf("dashboard session: HTTP %d %+v", status, s)
	}
	return c, s.CSRF
}

func dashboardGet(t *testing.T, c *http.Client, endpoint string, v any) int {
	t.Helper()
	resp, err := c.Get(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: HTTP %d, not JSON: %v", endpoint, resp.StatusCode, err)
	}
	return resp.StatusCode
}

// TestDashboardDeadLettersOverRabbitMQ: on the RabbitMQ transport the dashboard lists the
// dead-letter queue (the message, the queue it died in, why) and replays it to that queue.
func TestDashboardDeadLettersOverRabbitMQ(t *testing.T) {
	prefix := amqpPrefix(t)
	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	cfg := testConfig(dir)
	cfg.Transport = "amqp"
	cfg.AMQP.URL, cfg.AMQP.Prefix, cfg.AMQP.Instance, cfg.AMQP.ClassicQueues = testAMQPURL, prefix, prefix+"broker", true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := app.Start(ctx, cfg, siobroker.SystemClock{}, testLogger())
	if err != nil {
		t.Fatalf("start a broker on RabbitMQ: %v", err)
	}
	defer b.Close()

	// A message of service 7, which no adapter consumes here, is rejected: RabbitMQ dead-letters it.
	conn, err := amqp091.Dial(testAMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	queue := prefix + schemas.ServiceTopic(7)
	if err := ch.PublishWithContext(ctx, "", queue, true, false, amqp091.Publishing{
		MessageId: "dashboard-dead-1", DeliveryMode: amqp091.Persistent, Body: []byte(`{"requestId":"r"}`),
	}); err != nil {
		t.Fatal(err)
	}
	var got bool
	for deadline := time.Now().Add(15 * time.Second); !got && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if err := ch.Nack(d.DeliveryTag, false, false); err != nil {
				t.Fatal(err)
			}
			got = true
		}
	}
	if !got {
		t.Fatalf("the message never reached %s", queue)
	}

	c, csrf := dashboardSession(t, b.BaseURL(), filepath.Join(dir, "pki"), operatorUser(t, src.manifest))
	type letters struct {
		Available bool
		Letters   []struct{ MessageID, Queue, Reason, DiedAt string }
	}
	var dl letters
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if status := dashboardGet(t, c, b.BaseURL()+"/dashboard/api/deadletters", &dl); status != http.StatusOK {
			t.Fatalf("deadletters: HTTP %d", status)
		}
		if len(dl.Letters) > 0 {
			break
		}
	}
	if !dl.Available || len(dl.Letters) != 1 || dl.Letters[0].MessageID != "dashboard-dead-1" || dl.Letters[0].Queue != queue ||
		dl.Letters[0].Reason != "rejected" || !strings.HasSuffix(dl.Letters[0].DiedAt, "+05:00") {
		t.Fatalf("the dashboard's dead letters: %+v", dl)
	}

	resp, err := c.PostForm(b.BaseURL()+"/dashboard/api/deadletters/replay", url.Values{"csrf": {csrf}, "max": {"10"}})
	if err != nil {
		t.Fatal(err)
	}
	var replay struct{ Replayed int }
	err = json.NewDecoder(resp.Body).Decode(&replay)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || replay.Replayed != 1 {
		t.Fatalf("replay: HTTP %d %+v %v", resp.StatusCode, replay, err)
	}
	if dashboardGet(t, c, b.BaseURL()+"/dashboard/api/deadletters", &dl); len(dl.Letters) != 0 {
		t.Fatalf("after the replay the dead-letter queue holds %+v", dl.Letters)
	}
	d, ok, err := ch.Get(queue, true)
	if err != nil || !ok || d.MessageId != "dashboard-dead-1" {
		t.Fatalf("the replayed message on %s: %v %v %q", queue, ok, err, d.MessageId)
	}
}
