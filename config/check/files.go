package check

import (
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/rights"
	"github.com/sio-pso/siobroker/adapters/adapterconfig"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/routing/routes"
)

// routesInfo is the routing table as the cross-file checks see it: as written, even when
// routes.Parse refuses it, so that the other files are still compared with it.
type routesInfo struct {
	doc  *doc
	file routes.File
}

func (r *routesInfo) line(service int) int {
	return lineOf(r.doc.root, "services."+strconv.Itoa(service), false)
}

// checkLined checks d, a file of kind, whose package's parse names "path:line: problem": its
// unknown keys, the values that do not decode into layout (a pointer), then parse of the content
// without the unknown keys. ok is false when the layout does not decode, and nothing was parsed.
func (c *checker) checkLined(d *doc, kind Kind, layout any, parse func(path string, data []byte) error) (ok bool) {
	unknown := unknownKeys(d.root, keySchemas[kind], "", true)
	c.reportUnknown(d.Path, unknown)
	if errs := typeErrors(d.data, layout); len(errs) > 0 {
		c.reportTypeErrors(d, errs)
		return false
	}
	content := clean(d, len(unknown) > 0)
	c.reportLined(d, content, parse(d.Path, content.data))
	return true
}

// checkRoutes checks a routing table with routes.Parse, which names the line of every problem.
func (c *checker) checkRoutes(d *doc) {
	var f routes.File
	if !c.checkLined(d, KindRoutes, &f, func(path string, data []byte) error {
		_, err := routes.Parse(path, data)
		return err
	}) {
		return
	}
	if c.routes == nil {
		c.routes = &routesInfo{doc: d, file: f}
	}
}

// reportLined reports the errors of a package that names "path:line: problem" (routes,
// maintenance, emergency plans), translating the lines of cleaned content back to the file's.
func (c *checker) reportLined(d *doc, content cleaned, err error) {
	for _, msg := range flatten(err) {
		line, text := 0, msg
		if rest, ok := strings.CutPrefix(msg, d.Path+":"); ok {
			text = strings.TrimPrefix(rest, " ")
			if n, after, ok := cutLineNumber(rest); ok {
				line, text = content.line(n), after
			}
		}
		text, fix := splitFix(text, "")
		c.errorf(d.Path, line, fix, "%s", text)
	}
}

// cutLineNumber splits "12: text" into 12 and "text".
func cutLineNumber(s string) (int, string, bool) {
	num, rest, ok := strings.Cut(s, ": ")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, "", false
	}
	return n, rest, true
}

// rightsLayout is the layout of the rights file as package rights decodes it (its own type is
// unexported); TestShippedConfigsPass keeps the two in step, since a key the rights package
// learns would be reported unknown here in the shipped file.
type rightsLayout struct {
	Edition     string `yaml:"edition"`
	EditionDate string `yaml:"edition_date"`
	Roles       []struct {
		No    int    `yaml:"no"`
		Name  string `yaml:"name"`
		Bases []int  `yaml:"bases"`
	} `yaml:"roles"`
	Services []struct {
		No     int            `yaml:"no"`
		Name   string         `yaml:"name"`
		Access map[int]string `yaml:"access"`
	} `yaml:"services"`
	Truncation       map[int][]string `yaml:"truncation"`
	EconomicArticles []string         `yaml:"economic_articles"`
	LawBases         []struct {
		No             int            `yaml:"no"`
		Name           string         `yaml:"name"`
		LegalReference string         `yaml:"legal_reference"`
		Roles          []int          `yaml:"roles"`
		Services       map[int]string `yaml:"services"`
	} `yaml:"law_bases"`
}

// rightsInfo is the rights file as the cross-file checks see it.
type rightsInfo struct {
	doc    *doc
	layout rightsLayout
}

// rightsItem finds the item a rights error is about.
var rightsItem = regexp.MustCompile(`^(roles|services|economic_articles)\[(\d+)\]: |^(role|service) (\d+): |^truncation of service (\d+): |^economic_articles: |^(edition|edition_date): `)

// checkRights checks a rights file with rights.Parse, and finds the line of each item it names.
func (c *checker) checkRights(d *doc) {
	unknown := unknownKeys(d.root, keySchemas[KindRights], "", true)
	c.reportUnknown(d.Path, unknown)
	var layout rightsLayout
	if errs := typeErrors(d.data, &layout); len(errs) > 0 {
		c.reportTypeErrors(d, errs)
		return
	}
	content := clean(d, len(unknown) > 0)
	_, err := rights.Parse(content.data, d.Path)
	for _, msg := range flatten(err) {
		text := strings.TrimPrefix(strings.TrimPrefix(msg, "rights: "), d.Path+": ")
		line := 0
		if m := rightsItem.FindStringSubmatch(text); m != nil {
			switch {
			case m[1] != "":
				line = lineOf(d.root, m[1]+"["+m[2]+"]", false)
			case m[3] != "":
				line = numberedItemLine(d.root, m[3]+"s", m[4])
			case m[5] != "":
				line = lineOf(d.root, "truncation."+m[5], false)
			case m[6] != "":
				line = lineOf(d.root, m[6], false)
			default:
				line = lineOf(d.root, "economic_articles", false)
			}
		}
		text, fix := splitFix(text, "")
		c.errorf(d.Path, line, fix, "%s", text)
	}
	if c.rights == nil {
		c.rights = &rightsInfo{doc: d, layout: layout}
	}
}

// numberedItemLine is the line of the item of list key whose "no" is no, or of the list when
// none is.
func numberedItemLine(root *yaml.Node, key, no string) int {
	list := value(root, key)
	if list != nil && list.Kind == yaml.SequenceNode {
		for _, item := range list.Content {
			if v := value(item, "no"); v != nil && v.Value == no {
				return item.Line
			}
		}
	}
	return lineOf(root, key, false)
}

// adapterInfo is an adapter config as the cross-file checks see it.
type adapterInfo struct {
	doc           *doc
	cfg           adapterconfig.Config
	key, previous msgauth.Key // its transport keys, as far as they could be read
}

func (a *adapterInfo) line(service int) int {
	return lineOf(a.doc.root, "services."+strconv.Itoa(service), false)
}

// checkAdapter checks an adapter config with adapterconfig.Parse; its errors name keys, which
// are found in the file.
func (c *checker) checkAdapter(d *doc) {
	unknown := unknownKeys(d.root, keySchemas[KindAdapter], "", true)
	c.reportUnknown(d.Path, unknown)
	var cfg adapterconfig.Config
	if errs := typeErrors(d.data, &cfg); len(errs) > 0 {
		c.reportTypeErrors(d, errs)
		return
	}
	content := clean(d, len(unknown) > 0)
	_, err := adapterconfig.Parse(content.data)
	c.reportKeyed(d, err)
	a := &adapterInfo{doc: d, cfg: cfg}
	a.key, a.previous = c.checkAdapterMessageKeys(d, cfg)
	c.adapters = append(c.adapters, a)
}

// reportKeyed reports the errors of a Validate that names keys ("services.37: dsn: ...").
func (c *checker) reportKeyed(d *doc, err error) {
	exists := func(key string) bool { return lineOf(d.root, key, false) > 0 }
	for _, msg := range flatten(err) {
		key := keyOf(msg, exists)
		text, fix := splitFix(msg, key)
		c.errorf(d.Path, lineOf(d.root, key, false), fix, "%s", text)
	}
}

// checkMaintenance checks a maintenance file with maintenance.ParseFile, and warns of windows
// that are over.
func (c *checker) checkMaintenance(d *doc) {
	var f maintenance.File
	var windows []siobroker.MaintenanceWindow
	c.checkLined(d, KindMaintenance, &f, func(path string, data []byte) (err error) {
		// The notice is the broker file's maintenance_min_notice, where one was checked or given;
		// else the default, as a broker file that does not set it has.
		rules := maintenance.FileRules{Now: c.now, MinNotice: siobroker.DefaultMaintenanceMinNotice}
		if c.broker != nil {
			rules.MinNotice = c.broker.cfg.MaintenanceMinNotice
		}
		windows, err = maintenance.ParseFile(path, data, rules)
		return err
	})
	for i, w := range windows {
		if !w.End.After(c.now) {
			c.warnf(d.Path, lineOf(d.root, "windows["+strconv.Itoa(i)+"]", false), "remove it",
				"window %d ended at %s and no longer applies", i+1, astana(w.End))
		}
	}
}

// checkEmergencies checks a file of emergency action plans with incidents.ParsePlans, which
// names the line of every problem.
func (c *checker) checkEmergencies(d *doc) {
	var f incidents.PlansFile
	c.checkLined(d, KindEmergencies, &f, func(path string, data []byte) error {
		_, err := incidents.ParsePlans(path, data)
		return err
	})
}
