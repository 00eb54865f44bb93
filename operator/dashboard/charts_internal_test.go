package dashboard

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// svgElement is an element of a chart, as encoding/xml reads it.
type svgElement struct {
	name  string
	attrs map[string]string
	text  string
}

// parseSVG reads a chart with encoding/xml: it must be well-formed XML with an svg root, and
// its elements are returned in document order.
func parseSVG(t *testing.T, b []byte) []svgElement {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	var out []svgElement
	var open []int
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the chart is not well-formed XML: %v\n%s", err, b)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := svgElement{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			if len(out) == 0 && (e.name != "svg" || tok.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("the root is %v, want svg of the SVG namespace", tok.Name)
			}
			out = append(out, e)
			open = append(open, len(out)-1)
		case xml.CharData:
			if len(open) > 0 {
				out[open[len(open)-1]].text += string(tok)
			}
		case xml.EndElement:
			open = open[:len(open)-1]
		}
	}
	return out
}

func num(t *testing.T, e svgElement, attr string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(e.attrs[attr], 64)
	if err != nil {
		t.Fatalf("%s %s=%q: %v", e.name, attr, e.attrs[attr], err)
	}
	return v
}

func ofClass(els []svgElement, name, class string) []svgElement {
	var out []svgElement
	for _, e := range els {
		if e.name == name && e.attrs["class"] == class {
			out = append(out, e)
		}
	}
	return out
}

func texts(els []svgElement) string {
	var b strings.Builder
	for _, e := range els {
		if e.name == "text" || e.name == "title" {
			b.WriteString(e.text + "|")
		}
	}
	return b.String()
}

// hourOf is an hour of empty per-minute buckets from 10:00 Astana time.
func hourOf() []Bucket {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)
	out := make([]Bucket, 60)
	for i := range out {
		out[i].Start = t0.Add(time.Duration(i) * time.Minute)
	}
	return out
}

var hourWindow, _ = windowOf("1h")

const baseline = plotTop + plotHeight

// slotIndex is the bucket a drawn x falls in.
func slotIndex(x float64, n int) int {
	return int(math.Floor((x - plotLeft) / (plotWidth / float64(n))))
}

// TestRequestsChart: a bar for each minute with requests, in that minute's place on the time
// axis, standing on the axis, its height proportional to the count (a minute with twice the
// requests is twice as high); none where there were none; the axis labelled every ten minutes
// in Astana time, 24-hour.
func TestRequestsChart(t *testing.T) {
	b := hourOf()
	b[10].Requests, b[20].Requests, b[59].Requests = 3, 6, 1
	els := parseSVG(t, requestsChart(b, hourWindow, `service 7 <Ф&"x">`))
	bars := ofClass(els, "rect", "requests")
	if len(bars) != 3 {
		t.Fatalf("%d bars, want 3 (the minutes with requests)", len(bars))
	}
	per := map[int]float64{}
	for _, bar := range bars {
		x, w, y, h := num(t, bar, "x"), num(t, bar, "width"), num(t, bar, "y"), num(t, bar, "height")
		i := slotIndex(x, 60)
		if slotIndex(x+w-0.01, 60) != i {
			t.Errorf("bar at %v..%v spans more than its minute", x, x+w)
		}
		if math.Abs(y+h-baseline) > 0.02 {
			t.Errorf("bar %d ends at %v, not on the axis at %d", i, y+h, baseline)
		}
		if bar.attrs["fill"] != colourRequests {
			t.Errorf("bar %d is %s", i, bar.attrs["fill"])
		}
		per[i] = h / float64(b[i].Requests)
	}
	if len(per) != 3 || per[10] == 0 || per[20] == 0 || per[59] == 0 {
		t.Fatalf("bars in minutes %v, want 10, 20 and 59", per)
	}
	for _, i := range []int{20, 59} {
		if math.Abs(per[i]-per[10]) > 0.01 {
			t.Errorf("heights per request: %v, want all equal", per)
		}
	}
	if h := per[20] * 6; h > plotHeight+0.01 || h < plotHeight/2 {
		t.Errorf("the highest bar is %v high in a plot of %d", h, plotHeight)
	}
	all := texts(els)
	for _, want := range []string{"10:00|", "10:10|", "10:50|", `Requests per minute: service 7 <Ф&"x">|`, "0|", "6|", "UTC+05:00"} {
		if !strings.Contains(all, want) {
			t.Errorf("the chart's text lacks %q: %s", want, all)
		}
	}
	if strings.Contains(all, "10:05|") {
		t.Errorf("a label between the ten-minute marks: %s", all)
	}
}

// TestErrorsChart: errors, timeouts and refusals stacked in their minute, each as high as its
// count.
func TestErrorsChart(t *testing.T) {
	b := hourOf()
	b[30].Errors, b[30].Timeouts, b[30].Denied, b[30].Maintenance = 2, 4, 1, 1
	b[31].Timeouts = 1
	els := parseSVG(t, errorsChart(b, hourWindow, "all services"))
	errs, tos, refused := ofClass(els, "rect", "errors"), ofClass(els, "rect", "timeouts"), ofClass(els, "rect", "refused")
	if len(errs) != 1 || len(tos) != 2 || len(refused) != 1 {
		t.Fatalf("%d error bars, %d timeout bars, %d refusal bars", len(errs), len(tos), len(refused))
	}
	e, to, r := errs[0], tos[0], refused[0]
	if slotIndex(num(t, e, "x"), 60) != 30 || slotIndex(num(t, to, "x"), 60) != 30 || slotIndex(num(t, tos[1], "x"), 60) != 31 {
		t.Errorf("bars in the wrong minutes")
	}
	he, ht, hr := num(t, e, "height"), num(t, to, "height"), num(t, r, "height")
	if math.Abs(ht-2*he) > 0.02 || math.Abs(hr-he) > 0.02 {
		t.Errorf("heights: errors %v, timeouts %v, refused %v; want 1:2:1", he, ht, hr)
	}
	if math.Abs(num(t, e, "y")+he-baseline) > 0.02 || math.Abs(num(t, to, "y")+ht-num(t, e, "y")) > 0.02 ||
		math.Abs(num(t, r, "y")+hr-num(t, to, "y")) > 0.02 {
		t.Errorf("the bars are not stacked errors, timeouts, refusals from the axis up")
	}
}

// TestLatencyChart: p50 and p99 as lines through the minutes with answers, broken where a
// minute had none, each point as high as its latency.
func TestLatencyChart(t *testing.T) {
	b := hourOf()
	for i, ms := range map[int]int{5: 10, 6: 20, 8: 40} {
		b[i].Latencies, b[i].P50, b[i].P99 = 5, time.Duration(ms)*time.Millisecond, time.Duration(2*ms)*time.Millisecond
	}
	els := parseSVG(t, latencyChart(b, hourWindow, "all services"))
	lines := ofClass(els, "polyline", "p50")
	if len(lines) != 1 {
		t.Fatalf("%d p50 lines, want one (minutes 5 and 6; 8 stands alone)", len(lines))
	}
	pts := strings.Fields(lines[0].attrs["points"])
	if len(pts) != 2 {
		t.Fatalf("p50 points %v", pts)
	}
	dots := ofClass(els, "circle", "p50")
	p99 := ofClass(els, "circle", "p99")
	if len(dots) != 3 || len(p99) != 3 {
		t.Fatalf("%d p50 dots, %d p99 dots, want 3 each", len(dots), len(p99))
	}
	height := func(e svgElement) float64 { return baseline - num(t, e, "cy") }
	for k, want := range []int{5, 6, 8} {
		if i := slotIndex(num(t, dots[k], "cx"), 60); i != want {
			t.Errorf("dot %d in minute %d, want %d", k, i, want)
		}
	}
	if r := height(dots[1]) / height(dots[0]); math.Abs(r-2) > 0.01 {
		t.Errorf("20 ms is drawn %.3f times as high as 10 ms", r)
	}
	if r := height(p99[2]) / height(dots[2]); math.Abs(r-2) > 0.01 {
		t.Errorf("p99 80 ms is drawn %.3f times as high as p50 40 ms", r)
	}
	if !strings.Contains(texts(els), " ms|") {
		t.Errorf("the latency axis has no unit: %s", texts(els))
	}
}

// TestChartsEmptyAndDay: a window without traffic says so; the day's window is labelled every
// three hours of Astana time.
func TestChartsEmptyAndDay(t *testing.T) {
	els := parseSVG(t, requestsChart(hourOf(), hourWindow, "all services"))
	if len(ofClass(els, "rect", "requests")) != 0 || !strings.Contains(texts(els), "no requests in the last hour") {
		t.Errorf("an empty hour: %s", texts(els))
	}
	day, err := windowOf("24h")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 10, 10, 0, 0, siobroker.Astana)
	b := make([]Bucket, 144)
	for i := range b {
		b[i].Start = t0.Add(time.Duration(i) * 10 * time.Minute)
	}
	b[143].Requests = 4
	els = parseSVG(t, requestsChart(b, day, "all services"))
	all := texts(els)
	for _, want := range []string{"12:00|", "15:00|", "00:00|", "09:00|", "Requests per 10 minutes", "last 24 hours"} {
		if !strings.Contains(all, want) {
			t.Errorf("the day's chart lacks %q: %s", want, all)
		}
	}
	if strings.Contains(all, "10:00|") || strings.Contains(all, "11:00|") {
		t.Errorf("labels off the three-hour marks: %s", all)
	}
	if bars := ofClass(els, "rect", "requests"); len(bars) != 1 || slotIndex(num(t, bars[0], "x"), 144) != 143 {
		t.Errorf("the day's bars: %+v", bars)
	}
	if _, err := windowOf("2h"); siobroker.ErrorCode(err) != siobroker.CodeSchema {
		t.Errorf("window 2h: %v", err)
	}
}

// TestNiceScale: the top of the axis holds the largest value, in steps of 1, 2 or 5 times a
// power of ten.
func TestNiceScale(t *testing.T) {
	for _, tc := range []struct{ max, min, top, step float64 }{
		{0, 1, 4, 1}, {1, 1, 1, 1}, {2, 1, 2, 1}, {6, 1, 6, 2}, {7, 1, 8, 2}, {37, 1, 40, 10}, {0.3, 0.001, 0.3, 0.1}, {950, 0.001, 1000, 500},
	} {
		top, step := niceScale(tc.max, tc.min)
		if math.Abs(top-tc.top) > 1e-9 || math.Abs(step-tc.step) > 1e-9 {
			t.Errorf("niceScale(%v, %v) = %v, %v; want %v, %v", tc.max, tc.min, top, step, tc.top, tc.step)
		}
	}
}

func TestShorten(t *testing.T) {
	if got := shorten("Государственная база", 10); got != "Государст…" {
		t.Errorf("shorten = %q", got)
	}
	if got := shorten("база", 10); got != "база" {
		t.Errorf("shorten = %q", got)
	}
}

// TestLatencyTicks: the ticks of a fractional axis are written as the step gives them.
func TestLatencyTicks(t *testing.T) {
	b := hourOf()
	b[3].Latencies, b[3].P50, b[3].P99 = 1, 600*time.Microsecond, 790*time.Microsecond
	all := texts(parseSVG(t, latencyChart(b, hourWindow, "all services")))
	for _, want := range []string{"|0 ms|", "|0.2 ms|", "|0.4 ms|", "|0.6 ms|", "|0.8 ms|"} {
		if !strings.Contains(all, want) {
			t.Errorf("ticks lack %q: %s", want, all)
		}
	}
	if strings.Contains(all, "00000") {
		t.Errorf("a tick written with float noise: %s", all)
	}
}
