package dashboard

import (
	"encoding/xml"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
)

// ChartsPath serves the charts of the page as SVG drawn by the broker (nothing runs in the
// browser, and the page's CSP holds): ChartsPath+"{requests|latency|errors}.svg", with
// ?service=N (absent or 0: every service together) and ?window=1h (per minute, the default) or
// 24h (per ten minutes).
const ChartsPath = "/dashboard/charts/"

// Bucket is what the broker counted in one step of a chart's window, from Start: the messages
// sent to the service (Requests), the answers with a result within the limit, the errors (error
// answers and messages that could not be sent or read), the timeouts, the results given without
// a message (Denied by the access rights, Maintenance), and p50 and p99 of the latencies of the
// answers within their limit (zero when there were none: Latencies). It is routing.HistoryBucket.
type Bucket struct {
	Start       time.Time
	Requests    uint64
	Answered    uint64
	Errors      uint64
	Timeouts    uint64
	Denied      uint64
	Maintenance uint64
	Latencies   uint64
	P50, P99    time.Duration
}

// The charts' colours. The page's legend and the tests read them.
const (
	colourRequests = "#1565c0"
	colourP50      = "#1565c0"
	colourP99      = "#c62828"
	colourErrors   = "#c62828"
	colourTimeouts = "#ef8f00"
	colourRefused  = "#757575"
)

// The geometry of a chart: the plot is the rectangle [plotLeft, plotLeft+plotWidth] ×
// [plotTop, plotTop+plotHeight], the time running left to right, one slot per bucket.
const (
	chartWidth  = 720
	chartHeight = 240
	plotLeft    = 60
	plotTop     = 36
	plotWidth   = 644
	plotHeight  = 170
)

// chartKinds are the charts served, by name.
var chartKinds = map[string]bool{"requests.svg": true, "latency.svg": true, "errors.svg": true}

// chartWindow is a window of the charts: its buckets' step, how often an axis label, and how
// it is named.
type chartWindow struct {
	day        bool
	step       time.Duration
	labelEvery time.Duration
	per, name  string
}

func windowOf(v string) (chartWindow, error) {
	switch v {
	case "", "1h":
		return chartWindow{step: time.Minute, labelEvery: 10 * time.Minute, per: "per minute", name: "last hour"}, nil
	case "24h":
		return chartWindow{day: true, step: 10 * time.Minute, labelEvery: 3 * time.Hour, per: "per 10 minutes", name: "last 24 hours"}, nil
	}
	return chartWindow{}, siobroker.FieldError("window", "must be 1h or 24h, not %q", v)
}

// chart serves one chart to an operator: behind the session (or client certificate) check of
// every read of the dashboard.
func (h *handler) chart(w http.ResponseWriter, r *http.Request) {
	op, iin, err := h.identify(r)
	if err == nil {
		err = op.needOperator()
	}
	if err != nil {
		h.log.InfoContext(r.Context(), "dashboard read refused", "signer_iin", iin, "path", r.URL.Path, "code", string(siobroker.ErrorCode(err)))
		writeError(w, err)
		return
	}
	svg, err := h.chartSVG(r)
	if err != nil {
		h.logFailure(r.Context(), "dashboard chart", err)
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml; charset=utf-8")
	_, _ = w.Write(svg)
}

func (h *handler) chartSVG(r *http.Request) ([]byte, error) {
	name := r.PathValue("name")
	if !chartKinds[name] {
		return nil, siobroker.Errorf(siobroker.CodeDashboardNotFound, "%s is not a chart: requests.svg, latency.svg or errors.svg", name)
	}
	q := r.URL.Query()
	win, err := windowOf(q.Get("window"))
	if err != nil {
		return nil, err
	}
	service := 0
	if v := q.Get("service"); v != "" && v != "0" {
		if service, err = strconv.Atoi(v); err != nil || service < siobroker.FirstService || service > siobroker.LastService {
			return nil, siobroker.FieldError("service", "must be a service of Appendix 2, %d to %d, or 0 for all, not %q",
				siobroker.FirstService, siobroker.LastService, v)
		}
	}
	if h.cfg.History == nil {
		return nil, siobroker.Errorf(siobroker.CodeDashboardUnsupported, "this broker keeps no history of its services for charts")
	}
	who := "all services"
	if service > 0 {
		who = fmt.Sprintf("service %d", service)
		if h.cfg.ServiceInfo != nil {
			if n, _ := h.cfg.ServiceInfo(service); n != "" {
				who += " " + shorten(n, 60)
			}
		}
	}
	buckets := h.cfg.History(service, win.day)
	if len(buckets) == 0 {
		return nil, siobroker.Errorf(siobroker.CodeInternal, "the history of service %d is empty", service)
	}
	switch strings.TrimSuffix(name, ".svg") {
	case "requests":
		return requestsChart(buckets, win, who), nil
	case "latency":
		return latencyChart(buckets, win, who), nil
	default:
		return errorsChart(buckets, win, who), nil
	}
}

// series is one coloured series of a chart, for its legend.
type series struct{ name, colour string }

// svgChart builds one chart: the frame, the axes and the legend around what draw adds.
type svgChart struct {
	b       strings.Builder
	buckets []Bucket
	win     chartWindow
	yMax    float64 // the value at the top of the plot
}

// shorten cuts s to at most n characters, marking the cut, so that a long name of Appendix 2
// stays within the chart.
func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}

// slot is the width of one bucket's slot.
func (c *svgChart) slot() float64 { return plotWidth / float64(len(c.buckets)) }

// y is the vertical position of v.
func (c *svgChart) y(v float64) float64 { return plotTop + plotHeight - v/c.yMax*plotHeight }

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// niceScale returns the top of an axis holding largest, and its tick step: four or five ticks of
// 1, 2 or 5 times a power of ten, at least minStep apart.
func niceScale(largest, minStep float64) (top, step float64) {
	if largest <= 0 {
		return minStep * 4, minStep
	}
	raw := largest / 4
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * pow; step >= raw {
			break
		}
	}
	step = math.Max(step, minStep)
	return math.Ceil(largest/step-1e-9) * step, step
}

// begin writes the frame: title, legend, the y axis with its ticks formatted by label, and the
// time axis in Astana time, 24-hour.
func (c *svgChart) begin(title string, legend []series, largest, minStep float64, label func(float64) string) {
	var step float64
	c.yMax, step = niceScale(largest, minStep)
	fmt.Fprintf(&c.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`,
		chartWidth, chartHeight, chartWidth, chartHeight)
	fmt.Fprintf(&c.b, `<title>%s</title>`, esc(title))
	fmt.Fprintf(&c.b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`, chartWidth, chartHeight)
	fmt.Fprintf(&c.b, `<text x="%d" y="14" font-size="13" font-weight="bold" fill="#1b1f23">%s</text>`, plotLeft, esc(title))
	x := float64(plotLeft)
	for _, s := range legend {
		fmt.Fprintf(&c.b, `<rect class="legend" x="%s" y="21" width="10" height="10" fill="%s"/>`, f1(x), s.colour)
		fmt.Fprintf(&c.b, `<text x="%s" y="30" fill="#1b1f23">%s</text>`, f1(x+14), esc(s.name))
		x += 24 + 6.5*float64(len([]rune(s.name)))
	}
	// The y axis: grid lines and their values.
	// Each tick computed, not summed, and written to the step's decimals: 0.6, not 0.6000000001.
	decimals := max(0, -int(math.Floor(math.Log10(step))))
	for k := 0; float64(k)*step <= c.yMax+step/2; k++ {
		v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(k)*step, 'f', decimals, 64), 64)
		y := c.y(v)
		fmt.Fprintf(&c.b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e3e7eb"/>`, plotLeft, f1(y), plotLeft+plotWidth, f1(y))
		fmt.Fprintf(&c.b, `<text x="%d" y="%s" text-anchor="end" fill="#5a6470">%s</text>`, plotLeft-4, f1(y+4), esc(label(v)))
	}
	// The time axis: a label at every labelEvery of Astana time.
	for i, bk := range c.buckets {
		t := bk.Start.In(siobroker.Astana)
		if (t.Hour()*60+t.Minute())%int(c.win.labelEvery/time.Minute) != 0 {
			continue
		}
		x := plotLeft + float64(i)*c.slot()
		fmt.Fprintf(&c.b, `<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#e3e7eb"/>`, f1(x), plotTop, f1(x), plotTop+plotHeight+4)
		fmt.Fprintf(&c.b, `<text x="%s" y="%d" text-anchor="middle" fill="#5a6470">%s</text>`, f1(x), plotTop+plotHeight+16, t.Format("15:04"))
	}
	fmt.Fprintf(&c.b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#5a6470"/>`, plotLeft, plotTop+plotHeight, plotLeft+plotWidth, plotTop+plotHeight)
	end := c.buckets[len(c.buckets)-1].Start.Add(c.win.step).In(siobroker.Astana)
	fmt.Fprintf(&c.b, `<text x="%d" y="%d" text-anchor="end" fill="#5a6470">%s</text>`, plotLeft+plotWidth, chartHeight-4,
		esc(fmt.Sprintf("Astana time (UTC+05:00), %s to %s", c.win.name, end.Format("2006-01-02 15:04"))))
}

// empty writes the note of a chart with nothing to draw.
func (c *svgChart) empty(what string) {
	fmt.Fprintf(&c.b, `<text x="%d" y="%d" text-anchor="middle" fill="#5a6470">%s</text>`, plotLeft+plotWidth/2, plotTop+plotHeight/2,
		esc("no "+what+" in the "+c.win.name))
}

// bar draws one segment of bucket i's bar, from value below to below+v.
func (c *svgChart) bar(class, colour string, i int, below, v uint64) {
	if v == 0 {
		return
	}
	w := math.Max(c.slot()*0.8, 1)
	x := plotLeft + float64(i)*c.slot() + (c.slot()-w)/2
	top, bottom := c.y(float64(below+v)), c.y(float64(below))
	fmt.Fprintf(&c.b, `<rect class="%s" x="%s" y="%s" width="%s" height="%s" fill="%s"/>`, class, f1(x), f1(top), f1(w), f1(bottom-top), colour)
}

func (c *svgChart) done() []byte {
	c.b.WriteString(`</svg>`)
	return []byte(c.b.String())
}

func countLabel(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// requestsChart draws the messages sent to the service(s) in each bucket as bars.
func requestsChart(buckets []Bucket, win chartWindow, who string) []byte {
	c := &svgChart{buckets: buckets, win: win}
	var max uint64
	for _, b := range buckets {
		max = maxU(max, b.Requests)
	}
	c.begin("Requests "+win.per+": "+who, []series{{"requests to the service" + plural(who), colourRequests}}, float64(max), 1, countLabel)
	if max == 0 {
		c.empty("requests")
	}
	for i, b := range buckets {
		c.bar("requests", colourRequests, i, 0, b.Requests)
	}
	return c.done()
}

func plural(who string) string {
	if who == "all services" {
		return "s"
	}
	return ""
}

// errorsChart draws the errors, timeouts and refusals (denied, maintenance) of each bucket as
// stacked bars.
func errorsChart(buckets []Bucket, win chartWindow, who string) []byte {
	c := &svgChart{buckets: buckets, win: win}
	var max uint64
	for _, b := range buckets {
		max = maxU(max, b.Errors+b.Timeouts+b.Denied+b.Maintenance)
	}
	c.begin("Errors and timeouts "+win.per+": "+who, []series{{"errors", colourErrors}, {"timeouts", colourTimeouts},
		{"refused: denied or maintenance", colourRefused}}, float64(max), 1, countLabel)
	if max == 0 {
		c.empty("errors, timeouts or refusals")
	}
	for i, b := range buckets {
		c.bar("errors", colourErrors, i, 0, b.Errors)
		c.bar("timeouts", colourTimeouts, i, b.Errors, b.Timeouts)
		c.bar("refused", colourRefused, i, b.Errors+b.Timeouts, b.Denied+b.Maintenance)
	}
	return c.done()
}

func maxU(a, b uint64) uint64 {
	if b > a {
		return b
	}
	return a
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func msLabel(v float64) string {
	if v >= 1000 && math.Mod(v, 1000) == 0 {
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + " s"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " ms"
}

// latencyChart draws p50 and p99 of the answers' latencies in each bucket as lines, broken
// where a bucket had no answer, with a dot at every bucket that had.
func latencyChart(buckets []Bucket, win chartWindow, who string) []byte {
	c := &svgChart{buckets: buckets, win: win}
	var max time.Duration
	for _, b := range buckets {
		max = maxD(max, b.P99)
	}
	c.begin("Answer latency "+win.per+": "+who, []series{{"p50", colourP50}, {"p99", colourP99}}, ms(max), 0.001, msLabel)
	if max == 0 {
		c.empty("answers")
	}
	for _, s := range []struct {
		class, colour string
		of            func(Bucket) time.Duration
	}{
		{"p99", colourP99, func(b Bucket) time.Duration { return b.P99 }},
		{"p50", colourP50, func(b Bucket) time.Duration { return b.P50 }},
	} {
		var run []string
		flush := func() {
			if len(run) > 1 {
				fmt.Fprintf(&c.b, `<polyline class="%s" points="%s" fill="none" stroke="%s" stroke-width="2"/>`, s.class, strings.Join(run, " "), s.colour)
			}
			run = run[:0]
		}
		for i, b := range buckets {
			if b.Latencies == 0 {
				flush()
				continue
			}
			x, y := plotLeft+(float64(i)+0.5)*c.slot(), c.y(ms(s.of(b)))
			run = append(run, f1(x)+","+f1(y))
			fmt.Fprintf(&c.b, `<circle class="%s" cx="%s" cy="%s" r="3" fill="%s"/>`, s.class, f1(x), f1(y), s.colour)
		}
		flush()
	}
	return c.done()
}

func maxD(a, b time.Duration) time.Duration {
	if b > a {
		return b
	}
	return a
}
