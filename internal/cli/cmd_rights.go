package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/rights"
)

// Exit codes of the rights command. A rights file that cannot be loaded exits 1, like a denial:
// a script asking "may this role do this?" must never read a broken file as a yes.
const (
	rightsExitOK     = 0 // exported, or the check allowed the request
	rightsExitDenied = 1 // the check denied the request, or the rights file could not be used
	rightsExitUsage  = 2 // bad command line
)

const rightsUsage = `usage:
  siobroker rights export --format json [--rights FILE | --config FILE]
  siobroker rights check --role N --basis B --service S [--case-articles A,B] [--article A]
                         [--rights FILE | --config FILE]

export prints Appendices 1 and 2 as JSON.
check says whether role N may ask for service S under basis B (1 criminal, 2 administrative
(court), 3 administrative offence (КПСиСУ), 4 civil, 5 enforcement, 6 search), with the rules
applied. A is the Criminal Code article of the case, needed for the КГД services.
The rights file is --rights, by default the broker's: the rights_file of its configuration
(--config, default configs/broker.yaml, with the SIOBROKER_* environment over it, as serve reads
it; configs/rights.yaml unless set).
Exit status: 0 allowed (or exported), 1 denied (or the rights file is unusable), 2 usage error
or a configuration that does not load.
`

// rightsFlags are the flags both rights subcommands take: the rights file, by default the
// broker's.
type rightsFlags struct {
	*cmdFlags
	broker *brokerFlags
	file   *string
}

func newRightsFlags(sub string, stdout, stderr io.Writer) *rightsFlags {
	f := &rightsFlags{cmdFlags: newFlags("rights "+sub, rightsUsage, stdout, stderr)}
	f.broker = addBrokerFlags(f.cmdFlags, false)
	f.file = f.String("rights", "", "the rights file (default: the configuration's rights_file)")
	return f
}

// load loads the rights table; when t is nil the command returns code. A file that cannot be
// loaded exits 1, like a denial.
func (f *rightsFlags) load() (t *rights.Table, code int) {
	file := *f.file
	if file == "" {
		e, code, ok := f.broker.loadOrFail()
		if !ok {
			return nil, code
		}
		file = e.cfg.Rights
	}
	t, err := rights.Load(file)
	if err != nil {
		return nil, f.fail(rightsExitDenied, "%v", err)
	}
	return t, rightsExitOK
}

func rightsExport(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f := newRightsFlags("export", stdout, stderr)
	format := f.String("format", "", "output format: json")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *format != "json" {
		return f.usageError("--format must be json, got %q", *format)
	}
	t, code := f.load()
	if t == nil {
		return code
	}
	if err := t.ExportJSON(stdout); err != nil {
		return f.fail(rightsExitDenied, "%v", err)
	}
	return rightsExitOK
}

func rightsCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f := newRightsFlags("check", stdout, stderr)
	role := f.Int("role", 0, "role number of Appendix 1 (1..19)")
	basis := f.Int("basis", 0, "basis (1..6)")
	service := f.Int("service", 0, "service number of Appendix 2 (1..93)")
	caseArticles := f.String("case-articles", "", "the case's articles as its case registry gives them (§5), comma-separated, e.g. 190,216")
	article := f.String("article", "", "the article the request names, e.g. 216: a hint that must be one of --case-articles")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	// Required flags: a missing one would otherwise be checked as role/basis/service 0 and
	// reported as a denial instead of a mistake.
	set := f.set()
	for _, name := range []string{"role", "basis", "service"} {
		if !set[name] {
			return f.usageError("--%s is required", name)
		}
	}
	if !siobroker.Basis(*basis).Known() {
		return f.usageError("--basis must be 1..9 (7..9: the Law's bases of §1), got %d", *basis)
	}
	t, code := f.load()
	if t == nil {
		return code
	}
	q := siobroker.Qualification{Hint: *article}
	for a := range strings.SplitSeq(*caseArticles, ",") {
		if a = strings.TrimSpace(a); a != "" {
			q.Articles = append(q.Articles, a)
		}
	}
	d, trace := t.Explain(*role, siobroker.Basis(*basis), *service, q)
	fmt.Fprint(stdout, trace)
	fmt.Fprintln(stdout, d.Explanation)
	if !d.Allowed {
		return rightsExitDenied
	}
	return rightsExitOK
}
