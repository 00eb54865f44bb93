package cli

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// movableClock is the wall clock moved by an offset the test changes, in Astana time.
type movableClock struct{ d atomic.Int64 }

func (c *movableClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.d.Load())).In(siobroker.Astana)
}

// setMinute moves the clock to second 2 of the minute that starts minutes after the wall clock's
// next minute, so that what the test sends next falls in one known minute of the broker's clock.
func (c *movableClock) setMinute(minutes int) time.Time {
	now := time.Now()
	target := now.Truncate(time.Minute).Add(time.Duration(minutes+1)*time.Minute + 2*time.Second)
	c.d.Store(int64(target.Sub(now)))
	return c.Now()
}

// chartColumns reads a screenshot of a bar chart: for every column of pixels, how many pixels of
// the plot (below the legend, above the time axis) are of colour, within a tolerance for
// anti-aliasing.
func chartColumns(t *testing.T, shot []byte, colour [3]int) (cols []int, height int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	b := img.Bounds()
	// The chart is 720×240 (SVG units): its plot from y 36 to 206.
	top, bottom := b.Min.Y+b.Dy()*36/240, b.Min.Y+b.Dy()*208/240
	cols = make([]int, b.Dx())
	for x := b.Min.X; x < b.Max.X; x++ {
		for y := top; y < bottom; y++ {
			if near(img, x, y, colour) {
				cols[x-b.Min.X]++
			}
		}
	}
	return cols, b.Dy()
}

func near(img image.Image, x, y int, c [3]int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	d := func(v uint32, w int) int {
		if e := int(v>>8) - w; e >= 0 {
			return e
		} else {
			return -e
		}
	}
	return d(r, c[0])+d(g, c[1])+d(b, c[2]) < 40
}

// runs are the runs of columns holding at least min pixels of the colour: the bars as drawn.
type run struct{ from, to, height int }

func runsOf(cols []int, min int) []run {
	var out []run
	for x := 0; x < len(cols); x++ {
		if cols[x] < min {
			continue
		}
		r := run{from: x}
		for ; x < len(cols) && cols[x] >= min; x++ {
			r.height = max(r.height, cols[x])
		}
		r.to = x - 1
		out = append(out, r)
	}
	return out
}

// TestDashboardChartsInChromium: known traffic through a real broker, two requests of service 1
// in one minute and four of service 5 two minutes later (the broker's clock moved), and the
// dashboard in headless Chromium. Its screenshot of the requests chart has a bar of the chart's
// colour in each of those minutes, twice as high in the second, nothing in the minute between
// nor anywhere else, and the second at the right end (now); picked by its row, service 1's
// chart has its one bar; the latency chart draws its p50 there. The services table shows the
// two busy services by default, all 93 when "Busy only" is unticked.
func TestDashboardChartsInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	clock := &movableClock{}
	e := privateBroker(t, clock)
	ctx := context.Background()
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	signer := e.signer(t, u)
	send := func(n, service int) {
		t.Helper()
		for range n {
			info := newInfo()
			info.MessageDate = clock.Now()
			status, body := post(t, e.url, signedRequest(t, signer, signing.PlacementWSSE, info, e.query(service)))
			if status != http.StatusOK {
				t.Fatalf("request of service %d: HTTP %d %s", service, status, truncate(body))
			}
		}
	}
	first := clock.setMinute(0)
	send(2, 1)
	second := clock.setMinute(2)
	send(4, 5)
	if first.Minute() == second.Minute() || clock.Now().Truncate(time.Minute) != second.Truncate(time.Minute) {
		t.Fatalf("the traffic was not sent in the minutes meant: %s, %s, now %s", first, second, clock.Now())
	}
	t.Logf("2 requests of service 1 at %s, 4 of service 5 at %s (broker's clock)", first.Format("15:04:05"), second.Format("15:04:05"))

	op := operatorUser(t, e.manifest)
	var out, errb bytes.Buffer
	if code := Main(ctx, []string{"dashboard", "login", "--url", e.base, "--user", op.IIN, "--pki", e.pki}, &out, &errb); code != 0 {
		t.Fatalf("siobroker dashboard login exited %d: %s", code, errb.String())
	}
	cctx := headlessChromium(t, ctx, chromium)
	if err := chromedp.Do(cctx,
		chromedp.Navigate(strings.TrimSpace(out.String())),
		chromedp.WaitVisible(chromedp.CSS(`#open-session-button`)),
		chromedp.Click(chromedp.CSS(`#open-session-button`)),
		chromedp.WaitVisible(chromedp.CSS(`#service-5`)),
	); err != nil {
		t.Fatalf("load the dashboard: %v", err)
	}

	// Busy only, the default: the two services with traffic.
	services, err := chromedp.Run(cctx, chromedp.Text(chromedp.CSS("#services-rows")))
	if err != nil || !strings.Contains(services, "sio.service.001") || !strings.Contains(services, "sio.service.005") ||
		strings.Contains(services, "sio.service.002") {
		t.Fatalf("the services table, busy only: %v\n%s", err, services)
	}
	if n, err := chromedp.Run(cctx, chromedp.Evaluate[int](`document.querySelectorAll('#services-rows tr').length`)); err != nil || n != 2 {
		t.Errorf("%d rows busy only (%v), want 2", n, err)
	}

	// loaded waits for a chart whose address holds want to be drawn.
	loaded := func(id, want string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const i = document.getElementById(%q);
			return i.src.includes(%q) && i.complete && i.naturalWidth > 0; })()`, id, want), chromedp.WithPollingTimeout(20*time.Second))
	}
	screenshot := func(id, name string) []byte {
		t.Helper()
		b, err := chromedp.Run(cctx, chromedp.Screenshot(chromedp.CSS("#"+id)))
		if err != nil {
			t.Fatalf("screenshot of #%s: %v", id, err)
		}
		if f, err := os.CreateTemp("", "siobroker-chart-"+name+"-*.png"); err == nil {
			_, werr := f.Write(b)
			if f.Close() == nil && werr == nil {
				t.Logf("screenshot: %s", f.Name())
			}
		}
		return b
	}
	if err := chromedp.Do(cctx, loaded("chart-requests", "service=0"), loaded("chart-latency", "service=0")); err != nil {
		t.Fatalf("the charts: %v", err)
	}
	blue := [3]int{0x15, 0x65, 0xc0} // colourRequests and colourP50 of package dashboard
	shot := screenshot("chart-requests", "total")
	cols, height := chartColumns(t, shot, blue)
	bars := runsOf(cols, 3)
	if len(bars) != 2 {
		t.Fatalf("the total requests chart shows %d bars of its colour, want 2: %+v", len(bars), bars)
	}
	a, b := bars[0], bars[1]
	width := len(cols)
	slot := float64(width) * 644 / 720 / 60 // one minute of the plot
	gap := float64((b.from+b.to)-(a.from+a.to)) / 2
	if gap < 1.5*slot || gap > 2.5*slot {
		t.Errorf("the bars are %.1f px apart, want two minutes (%.1f px)", gap, 2*slot)
	}
	if right := float64(width) * 704 / 720; float64(b.to) < right-2*slot || float64(b.to) > right+1 {
		t.Errorf("the last bar ends at %d px, want within the last minutes before the plot's end at %.0f", b.to, right)
	}
	if r := float64(b.height) / float64(a.height); r < 1.8 || r > 2.2 {
		t.Errorf("the bars are %d and %d px high (ratio %.2f), want the second twice the first (4 requests to 2)", a.height, b.height, r)
	}
	if b.height > height*172/240 || b.height < height*60/240 {
		t.Errorf("the highest bar is %d px in a chart %d px high", b.height, height)
	}

	// Latency: the p50 dots (the same blue) in the two minutes with answers.
	lat, _ := chartColumns(t, screenshot("chart-latency", "latency"), blue)
	dots := runsOf(lat, 2)
	if len(dots) < 2 || dots[len(dots)-1].to < b.from-2 || dots[0].from > a.to+2 {
		t.Errorf("the latency chart's p50 is drawn at %+v, want from the first bar's minute (%d–%d) to the second's (%d–%d)",
			dots, a.from, a.to, b.from, b.to)
	}

	// Service 1, picked by its row: its one bar, in the first minute.
	if err := chromedp.Do(cctx,
		chromedp.Click(chromedp.CSS(`#service-1`)),
		loaded("chart-requests", "service=1"),
	); err != nil {
		t.Fatalf("pick service 1: %v", err)
	}
	cols, _ = chartColumns(t, screenshot("chart-requests", "service1"), blue)
	one := runsOf(cols, 3)
	if len(one) != 1 || one[0].from > a.to || one[0].to < a.from {
		t.Errorf("service 1's chart shows bars %+v, want one in the first minute (%d–%d)", one, a.from, a.to)
	}

	// The figures /metrics gives are those the charts drew.
	_, _, metrics := do(t, http.MethodGet, e.ops(t)+"/metrics", nil)
	for _, want := range []string{`siobroker_service_dispatches_total{service="1"} 2`, `siobroker_service_dispatches_total{service="5"} 4`} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The whole page, kept after the test, to be looked at.
	if b, err := chromedp.Run(cctx, chromedp.FullScreenshot(100)); err == nil { // 100: a PNG
		if f, err := os.CreateTemp("", "siobroker-dashboard-charts-*.png"); err == nil {
			_, werr := f.Write(b)
			if f.Close() == nil && werr == nil {
				t.Logf("screenshot of the page: %s", f.Name())
			}
		}
	}

	// All 93, with "Busy only" unticked.
	if err := chromedp.Do(cctx,
		chromedp.Click(chromedp.CSS(`#services-busy-only`)),
		chromedp.WaitVisible(chromedp.CSS(`#services-rows tr:nth-child(93)`)),
	); err != nil {
		t.Fatalf("show all the services: %v", err)
	}
}
