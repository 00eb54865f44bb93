package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sio-pso/siobroker/config/check"
)

const configUsage = `usage:
  siobroker config check [--kind KIND] [--json] [FILE...]

check validates configuration files without starting anything (no network, no database, no
RabbitMQ): the broker file, the routing table, the rights, adapter configs, maintenance
windows and the emergency action plans. Each file's kind is told by its keys, or given with
--kind (broker, routes, rights, adapter, maintenance, emergencies; it applies to every FILE). A
broker file brings in the routes, rights, maintenance and emergency plans files it names, unless
a file of that kind is given; no FILE means ` + check.DefaultBrokerFile + `.
Environment overrides (SIOBROKER_*) are not applied: the files are checked as written.
Each finding is one line, FILE:LINE: error|warning: message (fix: ...), then a summary.
Exit status: 0 no errors (warnings allowed), 1 errors, 2 usage error.
`

func configCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("config check", configUsage, stdout, stderr)
	kind := f.String("kind", "", "the kind of every FILE: broker, routes, rights, adapter, maintenance or emergencies (default: told by its keys)")
	asJSON := f.Bool("json", false, "print the report as JSON")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	files := make([]check.File, 0, len(pos))
	for _, p := range pos {
		files = append(files, check.File{Path: p, Kind: check.Kind(*kind)})
	}
	if *kind != "" && len(files) == 0 {
		return f.usageError("--kind needs the FILEs it applies to")
	}
	report, err := check.Run(check.Options{}, files...)
	if err != nil {
		return f.usageError("%v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		out := struct {
			*check.Report
			Errors   int `json:"errors"`
			Warnings int `json:"warnings"`
		}{report, report.Errors(), report.Warnings()}
		if err := enc.Encode(out); err != nil {
			return f.fail(exitFailed, "%v", err)
		}
	} else {
		for _, finding := range report.Findings {
			fmt.Fprintln(stdout, finding)
		}
		fmt.Fprintln(stdout, summary(report))
	}
	if report.Errors() > 0 {
		return exitFailed
	}
	return exitOK
}

// summary is the last line of the report: what was checked and what was found.
func summary(r *check.Report) string {
	names := make([]string, 0, len(r.Files))
	for _, f := range r.Files {
		names = append(names, fmt.Sprintf("%s (%s)", f.Path, f.Kind))
	}
	checked := "no file could be read"
	if len(names) > 0 {
		checked = "checked " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s: %s, %s", checked, plural(r.Errors(), "error"), plural(r.Warnings(), "warning"))
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
