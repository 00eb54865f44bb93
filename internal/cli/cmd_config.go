package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sio-pso/siobroker/config/check"
)

const configUsage = `usage:
  siobroker config check [--kind KIND] [--json] [FILE...]

check validates configuration files without starting anything (no network, no database, no
RabbitMQ): the broker file, the routing table, the rights, adapter configs and maintenance
windows. Each file's kind is told by its keys, or given with --kind (broker, routes, rights,
adapter, maintenance; it applies to every FILE). A broker file brings in the routes, rights and
maintenance files it names, unless a file of that kind is given; no FILE means ` + check.DefaultBrokerFile + `.
Environment overrides (SIOBROKER_*) are not applied: the files are checked as written.
Each finding is one line, FILE:LINE: error|warning: message (fix: ...), then a summary.
Exit status: 0 no errors (warnings allowed), 1 errors, 2 usage error.
`

// cmdConfig runs "siobroker config ...".
func cmdConfig(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	_ = ctx // nothing here blocks
	if len(args) == 0 {
		fmt.Fprint(stderr, configUsage)
		return 2
	}
	switch args[0] {
	case "check":
		return configCheck(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, configUsage)
		return 0
	}
	fmt.Fprintf(stderr, "config: unknown subcommand %q\n%s", args[0], configUsage)
	return 2
}

func configCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, configUsage) }
	kind := fs.String("kind", "", "the kind of every FILE: broker, routes, rights, adapter or maintenance (default: told by its keys)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	files := make([]check.File, 0, fs.NArg())
	for _, p := range fs.Args() {
		files = append(files, check.File{Path: p, Kind: check.Kind(*kind)})
	}
	if *kind != "" && len(files) == 0 {
		fmt.Fprintln(stderr, "config check: --kind needs the FILEs it applies to")
		return 2
	}
	report, err := check.Run(check.Options{}, files...)
	if err != nil {
		fmt.Fprintf(stderr, "config check: %v\n", err)
		return 2
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
			fmt.Fprintf(stderr, "config check: %v\n", err)
			return 1
		}
	} else {
		for _, f := range report.Findings {
			fmt.Fprintln(stdout, f)
		}
		fmt.Fprintln(stdout, summary(report))
	}
	if report.Errors() > 0 {
		return 1
	}
	return 0
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
