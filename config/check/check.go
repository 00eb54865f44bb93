// Package check checks the broker's configuration files without starting anything: no
// network, no database, no RabbitMQ. It reads the broker file (package config), the routing table
// (routes), the rights (rights), adapter configs (adapters/adapterconfig), maintenance windows
// (maintenance) and the emergency action plans (incidents), each with the package that reads it at
// run time, and reports every problem as a
// Finding that names the file, the line and the fix. It adds what no single package can see:
// unknown keys with the key they probably meant, certificates and CRLs that are unreadable, expired
// or about to expire, keys that do not match their certificate, and the files' agreement with each
// other (routes against rights, adapter configs and the broker's timeouts).
//
// `siobroker config check` prints the findings; a broker can run Check on new files before a
// reload puts them in force.
package check

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
)

// Severity says whether a finding stops the configuration from being used.
type Severity string

// Severities. An error is a configuration the broker (or adapter) would refuse, or one that would
// misroute or lose requests; a warning is one that works today but needs attention.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is one problem of one file.
type Finding struct {
	File     string   `json:"file"`
	Line     int      `json:"line,omitempty"` // 0 when the problem is the whole file (it cannot be read)
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix,omitempty"`
}

// String is the finding as one line: FILE:LINE: error|warning: message (fix: …).
func (f Finding) String() string {
	loc := f.File
	if f.Line > 0 {
		loc += ":" + strconv.Itoa(f.Line)
	}
	s := fmt.Sprintf("%s: %s: %s", loc, f.Severity, f.Message)
	if f.Fix != "" {
		s += " (fix: " + f.Fix + ")"
	}
	return s
}

// Kind is what a file configures.
type Kind string

// The kinds of file Check understands.
const (
	KindBroker      Kind = "broker"      // configs/broker.yaml
	KindRoutes      Kind = "routes"      // configs/routes.yaml
	KindRights      Kind = "rights"      // configs/rights.yaml
	KindAdapter     Kind = "adapter"     // an adapter process's config
	KindMaintenance Kind = "maintenance" // configs/maintenance.yaml
	KindEmergencies Kind = "emergencies" // configs/emergencies.yaml
)

// Kinds lists every kind, in the order files of them are checked.
func Kinds() []Kind {
	return []Kind{KindBroker, KindRoutes, KindRights, KindAdapter, KindMaintenance, KindEmergencies}
}

// DefaultBrokerFile is what Check checks when given no file.
const DefaultBrokerFile = "configs/broker.yaml"

// DefaultExpiryWarning is how long before a certificate or CRL runs out a warning is given.
const DefaultExpiryWarning = 30 * 24 * time.Hour

// File is one file to check. An empty Kind is detected from the file's top-level keys.
type File struct {
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// NamedBy is the broker file, line and key that named this file, e.g.
	// "configs/broker.yaml:9 (rights_file)"; empty for a file given to the check.
	NamedBy string `json:"namedBy,omitempty"`
}

// Options adjust a check.
type Options struct {
	// Clock tells the time certificates and CRLs are checked at; nil is the system clock.
	Clock siobroker.Clock
	// ExpiryWarning is how long before its end a certificate or CRL is warned about; 0 is
	// DefaultExpiryWarning.
	ExpiryWarning time.Duration
	// Broker is the broker configuration the other files are checked against (its
	// routing.async_timeout and http.write_timeout) when no broker file is among the files, e.g.
	// a running broker's before a reload. Nil: those checks need a broker file.
	Broker *config.Broker
}

// Report is the outcome of a check: the files checked, with their kinds, and the findings, by
// file in the order checked, then by line.
type Report struct {
	Files    []File    `json:"files"`
	Findings []Finding `json:"findings"`
}

// Errors counts the findings of severity Error.
func (r *Report) Errors() int { return r.count(Error) }

// Warnings counts the findings of severity Warning.
func (r *Report) Warnings() int { return r.count(Warning) }

func (r *Report) count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Check checks the files at paths, detecting each one's kind, with the default options. No path
// means DefaultBrokerFile. A broker file brings in the routes, rights, maintenance and emergency
// plans files it names, unless a file of that kind is among paths. The error is for a check that cannot be
// carried out at all; everything wrong with the files is a Finding.
func Check(paths ...string) ([]Finding, error) {
	files := make([]File, 0, len(paths))
	for _, p := range paths {
		files = append(files, File{Path: p})
	}
	r, err := Run(Options{}, files...)
	if err != nil {
		return nil, err
	}
	return r.Findings, nil
}

// Run is Check with options and given kinds.
func Run(opts Options, files ...File) (*Report, error) {
	for _, f := range files {
		if f.Kind != "" && !slices.Contains(Kinds(), f.Kind) {
			return nil, fmt.Errorf("configcheck: unknown kind %q of %s (kinds: %v)", f.Kind, f.Path, Kinds())
		}
		if f.Path == "" {
			return nil, errors.New("configcheck: a file without a path")
		}
	}
	if len(files) == 0 {
		files = []File{{Path: DefaultBrokerFile}}
	}
	c := &checker{opts: opts}
	if c.opts.Clock == nil {
		c.opts.Clock = siobroker.SystemClock{}
	}
	if c.opts.ExpiryWarning <= 0 {
		c.opts.ExpiryWarning = DefaultExpiryWarning
	}
	c.now = c.opts.Clock.Now()
	return c.run(files), nil
}

// checker holds one check's files and findings.
type checker struct {
	opts     Options
	now      time.Time
	findings []Finding
	docs     []*doc

	// What the cross-file checks need, from the first file of each kind that could be read.
	broker   *brokerInfo
	routes   *routesInfo
	rights   *rightsInfo
	adapters []*adapterInfo
}

// doc is one file as read.
type doc struct {
	File
	data []byte
	root *yaml.Node // the document's top mapping; nil when the file is empty or not YAML
}

func (c *checker) add(f Finding) { c.findings = append(c.findings, f) }

func (c *checker) errorf(file string, line int, fix, format string, args ...any) {
	c.add(Finding{File: file, Line: line, Severity: Error, Message: fmt.Sprintf(format, args...), Fix: fix})
}

func (c *checker) warnf(file string, line int, fix, format string, args ...any) {
	c.add(Finding{File: file, Line: line, Severity: Warning, Message: fmt.Sprintf(format, args...), Fix: fix})
}

func (c *checker) run(files []File) *Report {
	for _, f := range files {
		if d := c.read(f, nil); d != nil {
			c.docs = append(c.docs, d)
		}
	}
	// A broker file brings in the files it names, unless one of their kind was given.
	given := map[Kind]bool{}
	for _, d := range c.docs {
		given[d.Kind] = true
	}
	for _, d := range slices.Clone(c.docs) {
		if d.Kind == KindBroker {
			c.checkBroker(d)
			for _, named := range c.namedFiles(d, given) {
				if nd := c.read(named.File, &named.by); nd != nil {
					c.docs = append(c.docs, nd)
				}
			}
		}
	}
	if c.broker == nil && c.opts.Broker != nil {
		c.broker = &brokerInfo{cfg: *c.opts.Broker}
	}
	for _, d := range c.docs {
		switch d.Kind {
		case KindRoutes:
			c.checkRoutes(d)
		case KindRights:
			c.checkRights(d)
		case KindAdapter:
			c.checkAdapter(d)
		case KindMaintenance:
			c.checkMaintenance(d)
		case KindEmergencies:
			c.checkEmergencies(d)
		}
	}
	c.crossCheck()

	report := &Report{Files: []File{}, Findings: []Finding{}}
	order := map[string]int{}
	for _, d := range c.docs {
		report.Files = append(report.Files, d.File)
	}
	for _, f := range files {
		if _, ok := order[f.Path]; !ok {
			order[f.Path] = len(order)
		}
	}
	for _, f := range report.Files {
		if _, ok := order[f.Path]; !ok {
			order[f.Path] = len(order)
		}
	}
	report.Findings = append(report.Findings, c.findings...)
	slices.SortStableFunc(report.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(order[a.File], order[b.File]), cmp.Compare(a.Line, b.Line))
	})
	report.Findings = slices.CompactFunc(report.Findings, func(a, b Finding) bool { return a == b })
	return report
}

// namer is the key of a broker file that names another file.
type namer struct {
	file string
	line int
	key  string
}

// namedFile is a file a broker file names.
type namedFile struct {
	File
	by namer
}

// read reads and parses one file and settles its kind. A file that cannot be read or parsed, or
// whose kind cannot be told, is reported and gives nil. by is the key that named the file, if a
// broker file did: a file that cannot be read is reported there.
func (c *checker) read(f File, by *namer) *doc {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		fix := "correct the path (relative to the working directory) or create the file"
		switch {
		case by != nil && by.line == 0:
			c.errorf(by.file, 0, fmt.Sprintf("set %s to the file, or create %s", by.key, f.Path),
				"%s is not set, and its default, %s, cannot be read: %s", by.key, f.Path, describeReadError(err))
			return nil
		case by != nil:
			c.errorf(by.file, by.line, fix, "%s names %s, which cannot be read: %s", by.key, f.Path, describeReadError(err))
			return nil
		}
		c.errorf(f.Path, 0, fix, "cannot read the file: %s", describeReadError(err))
		return nil
	}
	d := &doc{File: f, data: data}
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err != nil {
		line, msg := yamlErrorLine(err.Error())
		c.errorf(f.Path, line, "correct the YAML syntax at that line (indentation, a missing ':' or an unclosed bracket or quote)", "not valid YAML: %s", msg)
		return nil
	}
	if node.Kind == yaml.DocumentNode && len(node.Content) > 0 {
		top := node.Content[0]
		if top.Kind == yaml.MappingNode {
			d.root = top
		} else {
			c.errorf(f.Path, top.Line, "write the file as a mapping of keys, as the shipped configs/ files are", "the file is a %s, not a mapping of keys", nodeKindName(top.Kind))
			return nil
		}
	}
	if d.Kind == "" {
		kind, problem := detectKind(d.root)
		if problem != "" {
			c.errorf(f.Path, 1, "give the kind with --kind "+kindList(), "cannot tell what the file configures: %s", problem)
			return nil
		}
		d.Kind = kind
	}
	return d
}

// namedFiles are the files broker file d names that no given file of their kind replaces. They
// are taken from the file itself, or the defaults, so that they are checked even when the broker
// file does not decode.
func (c *checker) namedFiles(d *doc, given map[Kind]bool) []namedFile {
	defaults := config.Defaults()
	var out []namedFile
	for _, n := range []struct {
		kind Kind
		key  string
		path string
	}{
		{KindRoutes, "routing.routes_file", defaults.Routing.RoutesFile},
		{KindRights, "rights_file", defaults.Rights},
		{KindMaintenance, "maintenance_file", defaults.Maintenance},
		{KindEmergencies, "incidents.emergency_plans_file", defaults.Incidents.EmergencyPlans},
	} {
		if v := valueAt(d.root, n.key); v != nil && v.Kind == yaml.ScalarNode {
			n.path = v.Value
		}
		if given[n.kind] || n.path == "" || c.have(n.path) {
			continue
		}
		given[n.kind] = true
		line := lineOf(d.root, n.key, true)
		if _, err := os.Stat(n.path); errors.Is(err, os.ErrNotExist) {
			switch n.kind {
			case KindMaintenance:
				// A missing maintenance file means no windows, as the broker reads it.
				continue
			case KindEmergencies:
				// The broker starts without it; only an emergency cannot be opened.
				c.warnf(d.Path, line, "write the plans (configs/emergencies.yaml is the example to start from) or correct the path",
					"%s names %s, which does not exist: no emergency can be opened by hand until it does", n.key, n.path)
				continue
			}
		}
		out = append(out, namedFile{
			File: File{Path: n.path, Kind: n.kind, NamedBy: fmt.Sprintf("%s:%d (%s)", d.Path, line, n.key)},
			by:   namer{file: d.Path, line: line, key: n.key},
		})
	}
	return out
}

// have reports whether path is among the files read already.
func (c *checker) have(path string) bool {
	clean := filepath.Clean(path)
	for _, d := range c.docs {
		if filepath.Clean(d.Path) == clean {
			return true
		}
	}
	return false
}
