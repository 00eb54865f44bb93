package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/schemas"
)

// withHistory serves the fixture's dashboard again with a history and traffic, recording what
// the charts ask for.
func (f *fixture) withHistory(t *testing.T, asked *[]string) {
	t.Helper()
	f.cfg.History = func(service int, day bool) []dashboard.Bucket {
		*asked = append(*asked, fmt.Sprint(service, " ", map[bool]string{false: "1h", true: "24h"}[day]))
		n, step := 60, time.Minute
		if day {
			n, step = 144, 10*time.Minute
		}
		out := make([]dashboard.Bucket, n)
		start := f.clock.Now().Truncate(step).Add(-time.Duration(n-1) * step)
		for i := range out {
			out[i].Start = start.Add(time.Duration(i) * step)
		}
		out[n-1].Requests = 5
		return out
	}
	f.cfg.Traffic = func(day bool) map[int]uint64 {
		if day {
			return map[int]uint64{1: 9, 4: 1}
		}
		return map[int]uint64{1: 5}
	}
	f.cfg.Services = func(context.Context) ([]health.ServiceState, error) {
		var out []health.ServiceState
		for s := 1; s <= 7; s++ {
			st := health.ServiceState{Service: s, Queue: schemas.ServiceTopic(s), QueueDepth: -1, DeadLetters: -1}
			switch s {
			case 2:
				st.QueueDepth = 3
			case 3:
				st.InFlight = 1
			}
			out = append(out, st)
		}
		return out, nil
	}
	var err error
	if f.handler, err = dashboard.New(f.cfg); err != nil {
		t.Fatal(err)
	}
	f.server = httptest.NewServer(f.handler)
	t.Cleanup(f.server.Close)
}

func getChart(t *testing.T, c *http.Client, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestChartsEndpoint: the charts are SVG served to an operator's session only, for the total or
// one service, over the hour or the day; a wrong chart, service or window is refused.
func TestChartsEndpoint(t *testing.T) {
	f := newFixture(t)
	var asked []string
	f.withHistory(t, &asked)
	base := f.server.URL + dashboard.ChartsPath

	status, _, body := getChart(t, browser(t), base+"requests.svg")
	wantRefusal(t, status, body, http.StatusForbidden, siobroker.CodeDashboardDenied)

	c, _ := f.session(t, pki.operator)
	for _, q := range []string{"requests.svg", "latency.svg?service=0&window=1h", "errors.svg?service=7&window=24h"} {
		status, hdr, body := getChart(t, c, base+q)
		if status != http.StatusOK || hdr.Get("Content-Type") != "image/svg+xml; charset=utf-8" || !strings.HasPrefix(string(body), "<svg ") ||
			!strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Fatalf("GET %s: HTTP %d %q\n%.200s", q, status, hdr.Get("Content-Type"), body)
		}
	}
	if strings.Join(asked, ",") != "0 1h,0 1h,7 24h" {
		t.Errorf("the history was asked for %v", asked)
	}
	for _, tc := range []struct {
		q      string
		status int
		code   siobroker.Code
	}{
		{"pie.svg", http.StatusNotFound, siobroker.CodeDashboardNotFound},
		{"requests.svg?service=94", http.StatusBadRequest, siobroker.CodeSchema},
		{"requests.svg?service=x", http.StatusBadRequest, siobroker.CodeSchema},
		{"requests.svg?window=7d", http.StatusBadRequest, siobroker.CodeSchema},
	} {
		status, _, body := getChart(t, c, base+tc.q)
		wantRefusal(t, status, body, tc.status, tc.code)
	}

	// A session of the reports right alone sees no charts.
	f.withReports(t)
	f.grant(t, pki.judge)
	jc, _ := f.session(t, pki.judge)
	status, _, body = getChart(t, jc, f.server.URL+dashboard.ChartsPath+"requests.svg")
	wantRefusal(t, status, body, http.StatusForbidden, siobroker.CodeDashboardDenied)
}

// TestBusyServices: a service is busy in a window when it had traffic in it, or has messages in
// its queue or in flight, or an open incident; the table's default view shows those.
func TestBusyServices(t *testing.T) {
	f := newFixture(t)
	var asked []string
	f.withHistory(t, &asked)
	if _, _, err := f.db.OpenIncident(context.Background(), siobroker.Incident{
		Type: siobroker.IncidentDeliveryDelay, Cause: siobroker.IncidentCause{Service: 6, Queue: schemas.ServiceTopic(6)},
		StartedAt: f.clock.Now().Add(-2 * time.Hour), OpenedAt: f.clock.Now().Add(-time.Hour), Affected: 1,
	}, "siobroker"); err != nil {
		t.Fatal(err)
	}
	c, _ := f.session(t, pki.operator)
	var v struct {
		Services []struct {
			Service                         int
			BusyHour, BusyDay, OpenIncident bool
		}
	}
	if status := f.getJSON(t, c, "services", &v); status != http.StatusOK || len(v.Services) != 7 {
		t.Fatalf("services: HTTP %d, %d rows", status, len(v.Services))
	}
	var hour, day []int
	for _, s := range v.Services {
		if s.BusyHour {
			hour = append(hour, s.Service)
		}
		if s.BusyDay {
			day = append(day, s.Service)
		}
		if s.OpenIncident != (s.Service == 6) {
			t.Errorf("service %d: open incident %v", s.Service, s.OpenIncident)
		}
	}
	if got := itoas(hour); got != "1 2 3 6" {
		t.Errorf("busy in the hour: %s, want 1 (traffic) 2 (queue) 3 (in flight) 6 (incident)", got)
	}
	if got := itoas(day); got != "1 2 3 4 6" {
		t.Errorf("busy in the day: %s, want 4 too (traffic in the day)", got)
	}
}

func itoas(ns []int) string { return strings.Trim(fmt.Sprint(ns), "[]") }
