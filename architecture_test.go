package siobroker

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/sio-pso/siobroker"

// importRules are the arrows docs/architecture.md draws: for each package (a path relative to
// the module, "." for the root; a trailing "/..." covers the subtree), the packages of this
// module its non-test files may import. A package of the module that no rule names fails the
// test, so a new folder must be placed in the drawing before it can be built on.
//
// The rules point inward: the root is the domain and imports nothing of ours; the stores know
// only the root and the journal; nothing but the wiring (internal/app, internal/cli) knows the
// concrete stores or the transports it chooses between.
var importRules = map[string][]string{
	".": {},

	"schemas":          {"."},
	"schemas/soap":     {".", "schemas", "internal/xmlchild", "internal/xmltree"},
	"signing":          {".", "schemas", "internal/xmlchild", "internal/xmltree", "signing/gost", "signing/gostx509"},
	"signing/devpki":   {".", "internal/private", "signing/gost", "signing/gostx509"},
	"signing/gost":     {},
	"signing/gostx509": {"signing/gost"},
	"signing/intake":   {".", "schemas/soap", "signing"},
	// Network revocation (CRL fetching, OCSP) is apart from signing, which stays without I/O
	// but for the files it is given.
	"signing/revocation": {".", "signing", "signing/gost", "signing/gostx509", "internal/private"},

	"journal":             {"."},
	"journal/archive":     {".", "signing", "internal/pace", "internal/private"},
	"journal/journaltest": {".", "journal"},
	"sqlite/sqlitetest":   {"sqlite"},
	"sqlite":              {".", "journal", "internal/private"},
	"postgres":            {".", "journal"},

	"access/rights": {"."},
	"access/cases":  {"."},
	"access/users":  {".", "schemas", "signing"},
	"access/hrfeed": {".", "access/users"},

	"adapters":               {".", "schemas"},
	"adapters/adaptertest":   {".", "adapters", "schemas"},
	"adapters/demo":          {".", "adapters", "schemas", "signing/devpki"},
	"adapters/httpsource":    {".", "adapters", "schemas", "internal/xmlchild", "internal/tlspolicy", "internal/tracing"},
	"adapters/postgres":      {".", "adapters", "schemas"},
	"adapters/adapterconfig": {".", "adapters", "adapters/demo", "adapters/httpsource", "adapters/postgres", "internal/tracing"},

	"routing":                     {".", "adapters", "schemas", "internal/reqlog", "internal/tracing", "routing/middleware", "routing/msgauth"},
	"routing/middleware":          {".", "adapters", "schemas", "internal/reqlog", "internal/tracing", "routing/msgauth"},
	"routing/msgauth":             {"schemas"},
	"routing/msgauth/msgauthtest": {"routing/msgauth"},
	"routing/amqp":                {".", "routing", "schemas"},
	"routing/routes":              {".", "schemas"},

	"broker": {".", "schemas", "schemas/soap", "signing", "signing/intake", "routing", "internal/reqlog", "internal/ratelimit", "internal/tracing"},

	"operator/incidents":   {"."},
	"operator/maintenance": {"."},
	// The schedule published to participants: a feed by client certificate and a signed
	// operation, verified and answered as the reports are.
	"operator/maintenance/publish": {".", "operator/replayguard", "schemas/soap", "signing", "signing/intake"},
	"operator/health":              {".", "routing", "schemas", "signing"},
	"operator/metrics":             {".", "operator/health"},
	"operator/replayguard":         {"."},
	"operator/reports":             {".", "internal/pace", "operator/replayguard", "schemas/soap", "signing", "signing/intake"},
	"operator/dashboard":           {".", "journal", "operator/health", "operator/incidents", "operator/replayguard", "operator/reports", "schemas", "schemas/soap", "signing", "signing/intake"},

	"httpapi": {".", "broker", "schemas/soap", "internal/reqlog", "internal/tlspolicy", "internal/ratelimit", "internal/tracing"},
	"client":  {".", "schemas/soap", "signing"},

	"config":                     {"access/cases", "internal/tracing"},
	"operator/notify":            {"."},
	"operator/notify/notifytest": {},
	"config/check":               {".", "access/cases", "access/hrfeed", "access/rights", "adapters/adapterconfig", "config", "operator/incidents", "operator/maintenance", "operator/notify", "routing/msgauth", "routing/routes", "schemas", "signing"},

	"internal/reqlog":     {},
	"internal/ratelimit":  {},
	"internal/private":    {},
	"internal/pace":       {},
	"internal/tlspolicy":  {},
	"internal/xmlchild":   {},
	"internal/xmltree":    {},
	"internal/testclock":  {},
	"internal/repofiles":  {},
	"internal/testpki":    {},
	"internal/fuzzbound":  {},
	"internal/pgtest":     {},
	"internal/rabbitnode": {},
	"internal/faults":     {},
	// The OpenTelemetry API side (configuration, propagation, attribute keys) that the
	// instrumented packages share; the SDK and the exporter only in provider, for the wiring.
	"internal/tracing":          {},
	"internal/tracing/provider": {"internal/tracing"},
	"internal/app/...":          {"*"},
	"internal/cli/...":          {"*"},

	"cmd/siobroker": {"internal/cli"},
	"cmd/siobench":  {"broker", "config", "operator/metrics"},

	"interop/...": {"*"},
}

// ruleFor returns the rule that covers dir.
func ruleFor(dir string) ([]string, bool) {
	if allowed, ok := importRules[dir]; ok {
		return allowed, true
	}
	for p, allowed := range importRules {
		if prefix, ok := strings.CutSuffix(p, "/..."); ok && (dir == prefix || strings.HasPrefix(dir, prefix+"/")) {
			return allowed, true
		}
	}
	return nil, false
}

// TestImportRules reads the imports of every package of the module and holds them to
// importRules.
func TestImportRules(t *testing.T) {
	imports := moduleImports(t)
	if len(imports) < 40 {
		t.Fatalf("found %d packages; the walk has lost them", len(imports))
	}
	for dir, imported := range imports {
		allowed, ok := ruleFor(dir)
		if !ok {
			t.Errorf("package %s is not placed in importRules (and docs/architecture.md)", dir)
			continue
		}
		if slices.Contains(allowed, "*") {
			continue
		}
		for _, imp := range imported {
			if !slices.Contains(allowed, imp) {
				t.Errorf("%s imports %s, which docs/architecture.md does not allow it", dir, imp)
			}
		}
	}
	for p := range importRules {
		if _, ok := imports[strings.TrimSuffix(p, "/...")]; !ok {
			t.Errorf("importRules names %s, which is not a package any more", p)
		}
	}
}

// moduleImports maps each package directory (relative to the module root) to the packages of
// the module its non-test files import.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(p))
		if _, ok := out[dir]; !ok {
			out[dir] = nil
		}
		for _, spec := range f.Imports {
			imp, _ := strconv.Unquote(spec.Path.Value)
			if imp == module {
				imp = "."
			} else if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
				imp = rel
			} else {
				continue
			}
			if !slices.Contains(out[dir], imp) {
				out[dir] = append(out[dir], imp)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestArchitectureDocNamesEveryPackage holds docs/architecture.md to the tree: every package
// directory is named there.
func TestArchitectureDocNamesEveryPackage(t *testing.T) {
	doc, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	for dir := range moduleImports(t) {
		if dir == "." || strings.HasPrefix(dir, "interop/") {
			continue
		}
		if !strings.Contains(string(doc), path.Clean(dir)+"/") && !strings.Contains(string(doc), path.Base(dir)+"/") {
			t.Errorf("docs/architecture.md does not name %s/", dir)
		}
	}
}
