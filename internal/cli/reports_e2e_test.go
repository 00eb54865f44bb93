package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sio-pso/siobroker"
)

// TestReportsInChromium: the whole chain of §9–10 on a running broker. A request is served and
// journaled by the pipeline; the broker folds it into the request index by itself; the demo
// prosecutor (reports right) logs in to the dashboard with `siobroker dashboard login`, and in
// headless Chromium the reports section, asked to show the month's report, lists the request
// with its basis, case and subject; the use is journaled with the dashboard as its channel.
func TestReportsInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	e := privateBroker(t, siobroker.SystemClock{})
	ctx := context.Background()
	op := operatorUser(t, e.manifest)
	if code, out, errOut := runSend(t, e.sendArgs(op, "--purpose", "проверка по уголовному делу")...); code != 0 {
		t.Fatalf("send: exit %d\n%s%s", code, out, errOut)
	}

	var out, errb bytes.Buffer
	if code := Main(ctx, []string{"dashboard", "login", "--url", e.base, "--user", op.IIN, "--pki", e.pki}, &out, &errb); code != 0 {
		t.Fatalf("siobroker dashboard login exited %d: %s", code, errb.String())
	}
	cctx := headlessChromium(t, ctx, chromium)
	status := func() string {
		s, _ := chromedp.Run(cctx, chromedp.Text(chromedp.CSS("#status")))
		return s
	}
	if err := chromedp.Do(cctx,
		chromedp.Navigate(strings.TrimSpace(out.String())),
		chromedp.WaitVisible(chromedp.CSS(`#open-session-button`)),
		chromedp.Click(chromedp.CSS(`#open-session-button`)),
		chromedp.WaitVisible(chromedp.CSS(`#report-show`)),
		chromedp.Click(chromedp.CSS(`#report-show`)),
		chromedp.Poll[chromedp.Void](`document.getElementById('report-rows').textContent.includes('`+prosecutorCase+`')`,
			chromedp.WithPollingTimeout(30*time.Second)),
	); err != nil {
		t.Fatalf("the report in the page: %v (status line %q)", err, status())
	}
	rows, err := chromedp.Run(cctx, chromedp.Text(chromedp.CSS("#report-rows")))
	if err != nil || !strings.Contains(rows, e.subject) || !strings.Contains(rows, "проверка по уголовному делу") || !strings.Contains(rows, "answered") {
		t.Errorf("the report's rows: %v\n%s", err, rows)
	}
	uses, err := e.b.Store().Journal().Query(ctx, siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalReport}})
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Channel string
		Rows    int
	}
	if len(uses) != 1 || uses[0].SignerIIN != op.IIN || json.Unmarshal(uses[0].Data, &d) != nil || d.Channel != "dashboard" || d.Rows < 1 {
		t.Errorf("uses journaled: %+v %+v", uses, d)
	}
}
