package incidents

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sio-pso/siobroker"
)

// PlansFile is the layout of the file of emergency action plans (configs/emergencies.yaml,
// incidents.emergency_plans_file): for each of the six kinds of Appendix 7, its actions in order.
// The Rules give only the form of the journal, not the plans: the operator writes them.
type PlansFile struct {
	// Example marks the shipped plans, which the operator is to adapt: the broker says so when it
	// starts and when an emergency is opened, until the key is removed.
	Example bool                    `yaml:"example"`
	Plans   map[string][]PlanAction `yaml:"plans"`
}

// PlanAction is one action of a plan.
type PlanAction struct {
	Action      string `yaml:"action"`      // what is to be done (Действия)
	Max         string `yaml:"max"`         // the time it may take at most, a Go duration: 15m, 2h, 1h30m
	Responsible string `yaml:"responsible"` // who is responsible (Ответственный): a post, not a person, so the plan outlives staff changes
}

// Plans are the action plans of the six kinds of emergency, checked.
type Plans struct {
	Path    string // the file they were read from
	Example bool   // PlansFile.Example
	byKind  map[siobroker.EmergencyKind][]siobroker.IncidentAction
}

// Plan returns a copy of the actions of kind's plan, numbered from 1, none started.
func (p *Plans) Plan(kind siobroker.EmergencyKind) []siobroker.IncidentAction {
	if p == nil {
		return nil
	}
	return slices.Clone(p.byKind[kind])
}

// LoadPlans reads and checks the plans file at path.
func LoadPlans(path string) (*Plans, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("emergency action plans: %w", err)
	}
	return ParsePlans(path, b)
}

// maxActionTime bounds a plan's maximum time: a longer one is a typing mistake (720h for 72h).
const maxActionTime = 30 * 24 * time.Hour

// ParsePlans parses the plans file content b; path names it in errors. Every error begins
// "path:line: ", the line of the kind or the action it is about. Every kind of Appendix 7 must
// have a plan of at least one action, each with its text, its maximum time and who is
// responsible.
func ParsePlans(path string, b []byte) (*Plans, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var f PlansFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w (the keys are example and plans; of an action: action, max, responsible)", path, err)
	}
	plansKey, plansNode := mappingEntry(&root, "plans")
	kindLine := func(kind string) int {
		if plansNode == nil {
			return 0
		}
		for i := 0; i+1 < len(plansNode.Content); i += 2 {
			if plansNode.Content[i].Value == kind {
				return plansNode.Content[i].Line
			}
		}
		return plansKey.Line
	}
	actionLine := func(kind string, i int) int {
		if plansNode != nil {
			for k := 0; k+1 < len(plansNode.Content); k += 2 {
				if list := plansNode.Content[k+1]; plansNode.Content[k].Value == kind && i < len(list.Content) {
					return list.Content[i].Line
				}
			}
		}
		return kindLine(kind)
	}

	p := &Plans{Path: path, Example: f.Example, byKind: make(map[siobroker.EmergencyKind][]siobroker.IncidentAction)}
	var errs []error
	fail := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...)))
	}
	names := make([]string, 0, len(f.Plans))
	for name := range f.Plans {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int { return kindLine(a) - kindLine(b) })
	for _, name := range names {
		kind, err := siobroker.ParseEmergencyKind(name)
		if err != nil {
			fail(kindLine(name), "plans: %v", err)
			continue
		}
		actions := f.Plans[name]
		if len(actions) == 0 {
			fail(kindLine(name), "plans.%s: no actions; give at least one (%s)", name, kind.Title())
		}
		for i, pa := range actions {
			a := siobroker.IncidentAction{No: i + 1, Action: strings.TrimSpace(pa.Action), Responsible: strings.TrimSpace(pa.Responsible)}
			line := actionLine(name, i)
			if a.Action == "" {
				fail(line, "plans.%s[%d]: action is required: what is to be done", name, i)
			}
			if a.Responsible == "" {
				fail(line, "plans.%s[%d]: responsible is required: the post responsible for the action", name, i)
			}
			switch d, err := time.ParseDuration(strings.TrimSpace(pa.Max)); {
			case pa.Max == "":
				fail(line, "plans.%s[%d]: max is required: the time the action may take at most, e.g. 15m or 2h", name, i)
			case err != nil:
				fail(line, "plans.%s[%d]: max %q is not a duration such as 15m, 2h or 1h30m", name, i, pa.Max)
			case d <= 0 || d > maxActionTime:
				fail(line, "plans.%s[%d]: max %s must be above 0 and at most %s", name, i, pa.Max, maxActionTime)
			default:
				a.Max = d
			}
			p.byKind[kind] = append(p.byKind[kind], a)
		}
	}
	for _, kind := range siobroker.EmergencyKinds() {
		if _, ok := f.Plans[string(kind)]; !ok {
			fail(kindLine(string(kind)), "plans: the plan of %s (%s) is missing; Appendix 7 has six kinds and each needs one",
				kind, kind.Title())
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// mappingEntry is the key and the value of key in the document's top mapping; nil, nil when there
// is none.
func mappingEntry(root *yaml.Node, key string) (k, v *yaml.Node) {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, nil
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}
