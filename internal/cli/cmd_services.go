package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sio-pso/siobroker/operator/metrics"
)

// serviceRow is one service as `siobroker services` shows it: the figures of the broker's
// operations snapshot, the same the dashboard shows, read from its /metrics.
type serviceRow struct {
	Service     int     `json:"service"`
	QueueDepth  float64 `json:"queueDepth"`  // -1: the transport cannot tell
	DeadLetters float64 `json:"deadLetters"` // -1: the transport has none
	InFlight    float64 `json:"inFlight"`
	OldestAge   float64 `json:"oldestAgeSeconds"`
	ErrorRatio  float64 `json:"recentErrorRatio"`
	Dispatched  float64 `json:"dispatched"`
	Timeouts    float64 `json:"timeouts"`
}

const servicesUsage = `usage:
  siobroker services [--config FILE | --url URL] [--busy] [--json]

Prints the state of every service of a running broker, read from its /metrics (the figures the
dashboard shows): messages queued, dead letters, in flight, the age of the oldest undelivered
message, the recent error rate, dispatches and timeouts. /metrics is on the broker's operator
listener: --url is its base URL, by default the configuration's operator.listen (plain HTTP; a
wildcard address is asked on the loopback): --config (default configs/broker.yaml) with the
SIOBROKER_* environment over it, as serve reads it.
Exit status: 0 printed, 1 the metrics could not be read, 2 usage error or a configuration that
does not load.
`

// cmdServices prints the state of every service of a running broker: queue depth, dead letters,
// messages in flight, the age of the oldest undelivered message and the recent error rate.
func cmdServices(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("services", servicesUsage, stdout, stderr)
	b := addBrokerFlags(f, false)
	base := f.String("url", "", "the base URL of the broker's operator listener; its /metrics is read (default: the configuration's operator.listen)")
	busy := f.Bool("busy", false, "only services with something queued, in flight, waiting or failing")
	asJSON := f.Bool("json", false, "print JSON")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	where := "the broker's operator listener from --url"
	if *base == "" {
		e, code, ok := b.loadOrFail()
		if !ok {
			return code
		}
		*base = e.operatorURL()
		where = "the broker's operator listener: " + e.describe("operator.listen", e.cfg.Operator.Listen) + "; give another with --url or --config"
	}
	url := strings.TrimSuffix(*base, "/") + "/metrics"
	rows, err := readServiceRows(ctx, url)
	if err != nil {
		return f.fail(exitFailed, "%v (%s)", err, where)
	}
	if *busy {
		rows = slices.DeleteFunc(rows, func(r serviceRow) bool {
			return r.QueueDepth <= 0 && r.DeadLetters <= 0 && r.InFlight == 0 && r.OldestAge == 0 && r.ErrorRatio == 0
		})
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return f.fail(exitFailed, "%v", err)
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SERVICE\tQUEUED\tDEAD\tIN FLIGHT\tOLDEST\tERRORS 5m\tDISPATCHED\tTIMEOUTS\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.0f\t%s\t%.0f%%\t%.0f\t%.0f\t\n", r.Service, count(r.QueueDepth), count(r.DeadLetters),
			r.InFlight, age(r.OldestAge), 100*r.ErrorRatio, r.Dispatched, r.Timeouts)
	}
	if err := tw.Flush(); err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	return exitOK
}

func count(v float64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func age(seconds float64) string {
	if seconds == 0 {
		return "-"
	}
	return (time.Duration(seconds * float64(time.Second))).Round(time.Second).String()
}

// readServiceRows reads the per-service series of the broker's /metrics.
func readServiceRows(ctx context.Context, url string) ([]serviceRow, error) {
	families, err := metrics.Scrape(ctx, url)
	if err != nil {
		return nil, err
	}
	bySvc := map[int]*serviceRow{}
	row := func(m *dto.Metric) *serviceRow {
		for _, l := range m.GetLabel() {
			if l.GetName() == "service" {
				n, err := strconv.Atoi(l.GetValue())
				if err != nil {
					return nil
				}
				if bySvc[n] == nil {
					bySvc[n] = &serviceRow{Service: n, QueueDepth: -1, DeadLetters: -1}
				}
				return bySvc[n]
			}
		}
		return nil
	}
	fields := map[string]func(*serviceRow, float64){
		"service_queue_depth":                func(r *serviceRow, v float64) { r.QueueDepth = v },
		"service_dead_letters":               func(r *serviceRow, v float64) { r.DeadLetters = v },
		"service_in_flight":                  func(r *serviceRow, v float64) { r.InFlight = v },
		"service_oldest_undelivered_seconds": func(r *serviceRow, v float64) { r.OldestAge = v },
		"service_recent_error_ratio":         func(r *serviceRow, v float64) { r.ErrorRatio = v },
		"service_dispatches_total":           func(r *serviceRow, v float64) { r.Dispatched = v },
		"service_timeouts_total":             func(r *serviceRow, v float64) { r.Timeouts = v },
	}
	for name, set := range fields {
		fam, ok := families[metrics.Prefix+name]
		if !ok {
			continue
		}
		for _, m := range fam.GetMetric() {
			r := row(m)
			if r == nil {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				set(r, m.GetGauge().GetValue())
			case m.GetCounter() != nil:
				set(r, m.GetCounter().GetValue())
			}
		}
	}
	if len(bySvc) == 0 {
		return nil, fmt.Errorf("%s has no siobroker_service_* series: is it a siobroker?", url)
	}
	rows := make([]serviceRow, 0, len(bySvc))
	for _, r := range bySvc {
		rows = append(rows, *r)
	}
	slices.SortFunc(rows, func(a, b serviceRow) int { return a.Service - b.Service })
	return rows, nil
}
