package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/rights"
)

// defaultRightsFile is where the reviewed copy of Appendices 1 and 2 lives in the repository.
const defaultRightsFile = "configs/rights.yaml"

// Exit codes of the rights command. A rights file that cannot be loaded exits 1, like a denial:
// a script asking "may this role do this?" must never read a broken file as a yes.
const (
	rightsExitOK     = 0 // exported, or the check allowed the request
	rightsExitDenied = 1 // the check denied the request, or the rights file could not be used
	rightsExitUsage  = 2 // bad command line
)

const rightsUsage = `usage:
  siobroker rights export --format json [--rights FILE]
  siobroker rights check --role N --basis B --service S [--article A] [--rights FILE]

export prints Appendices 1 and 2 as JSON.
check says whether role N may ask for service S under basis B (1 criminal, 2 administrative
(court), 3 administrative offence (КПСиСУ), 4 civil, 5 enforcement, 6 search), with the rules
applied. A is the Criminal Code article of the case, needed for the КГД services.
Exit status: 0 allowed (or exported), 1 denied (or the rights file is unusable), 2 usage error.
FILE defaults to ` + defaultRightsFile + `.
`

// cmdRights runs "siobroker rights ...". args are the words after "rights".
func cmdRights(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	_ = ctx // nothing here blocks; ctx keeps the signature of the other commands
	if len(args) == 0 {
		fmt.Fprint(stderr, rightsUsage)
		return rightsExitUsage
	}
	switch args[0] {
	case "export":
		return rightsExport(args[1:], stdout, stderr)
	case "check":
		return rightsCheck(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, rightsUsage)
		return rightsExitOK
	}
	fmt.Fprintf(stderr, "rights: unknown subcommand %q\n%s", args[0], rightsUsage)
	return rightsExitUsage
}

func rightsExport(args []string, stdout, stderr io.Writer) int {
	fs := newRightsFlagSet("rights export", stderr)
	format := fs.String("format", "", "output format: json")
	file := fs.String("rights", defaultRightsFile, "rights file")
	if code, ok := parseRightsFlags(fs, args, stderr); !ok {
		return code
	}
	if *format != "json" {
		fmt.Fprintf(stderr, "rights export: --format must be json, got %q\n", *format)
		return rightsExitUsage
	}
	t, err := rights.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return rightsExitDenied
	}
	if err := t.ExportJSON(stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return rightsExitDenied
	}
	return rightsExitOK
}

func rightsCheck(args []string, stdout, stderr io.Writer) int {
	fs := newRightsFlagSet("rights check", stderr)
	role := fs.Int("role", 0, "role number of Appendix 1 (1..19)")
	basis := fs.Int("basis", 0, "basis (1..6)")
	service := fs.Int("service", 0, "service number of Appendix 2 (1..93)")
	article := fs.String("article", "", "Criminal Code article of the case, e.g. 216 or 217-1")
	file := fs.String("rights", defaultRightsFile, "rights file")
	if code, ok := parseRightsFlags(fs, args, stderr); !ok {
		return code
	}
	// Required flags: a missing one would otherwise be checked as role/basis/service 0 and
	// reported as a denial instead of a mistake.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range []string{"role", "basis", "service"} {
		if !set[name] {
			fmt.Fprintf(stderr, "rights check: --%s is required\n", name)
			return rightsExitUsage
		}
	}
	if !siobroker.Basis(*basis).Valid() {
		fmt.Fprintf(stderr, "rights check: --basis must be 1..6, got %d\n", *basis)
		return rightsExitUsage
	}
	t, err := rights.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return rightsExitDenied
	}
	d, trace := t.Explain(*role, siobroker.Basis(*basis), *service, *article)
	fmt.Fprint(stdout, trace)
	fmt.Fprintln(stdout, d.Explanation)
	if !d.Allowed {
		return rightsExitDenied
	}
	return rightsExitOK
}

func newRightsFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rightsUsage) }
	return fs
}

// parseRightsFlags parses args; ok is false when the caller must return code.
func parseRightsFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return rightsExitOK, false
		}
		return rightsExitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return rightsExitUsage, false
	}
	return 0, true
}
