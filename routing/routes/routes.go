// Package routes reads the routing table (configs/routes.yaml): for every service of Appendix 2,
// the queue its requests go to, the adapter and backend kind that answer it, and its timeout.
// The table is checked as a whole when it is read, and every error names the file, the line and
// the fix; a broker reloads it on SIGHUP and when the file changes, and keeps the running table
// when the new one fails the check.
package routes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// The backend kinds a route may name (the kinds of adapters/adapterconfig).
var Backends = []string{"demo", "postgres", "http"}

// File is the routes file as written.
type File struct {
	DefaultTimeout time.Duration     `yaml:"default_timeout"`
	Queues         []string          `yaml:"queues"`
	Services       map[int]FileRoute `yaml:"services"`
	// Registries names, for each case registry (§5), the adapter that answers its checks on
	// topic sio.registry.<name>: the broker authenticates each check for that adapter, and takes
	// an answer only from it.
	Registries map[string]FileRegistry `yaml:"registries"`
}

// FileRegistry is one case registry's entry.
type FileRegistry struct {
	Adapter string `yaml:"adapter"`
}

// FileRoute is one service's entry.
type FileRoute struct {
	Queue   string        `yaml:"queue"`
	Adapter string        `yaml:"adapter"`
	Backend string        `yaml:"backend"`
	Timeout time.Duration `yaml:"timeout"`
}

// Route is one service's effective route.
type Route struct {
	Service int           `json:"service"`
	Queue   string        `json:"queue"`
	Adapter string        `json:"adapter"`
	Backend string        `json:"backend"`
	Timeout time.Duration `json:"timeout"`
	// TimeoutSet is true when the file gives the service its own timeout.
	TimeoutSet bool `json:"timeoutSet"`
	Line       int  `json:"-"` // the line of the service's entry in the file
}

// Table is a checked routing table. It is immutable: a reload builds a new one.
type Table struct {
	Path           string
	DefaultTimeout time.Duration
	routes         map[int]Route
	registries     map[string]string // case registry → the adapter that answers it
	declared       []string          // every queue a broker declares: the per-service ones and Queues
}

// RegistryAdapter returns the adapter the case registry name is routed to; "" when it has no
// route.
func (t *Table) RegistryAdapter(name string) string { return t.registries[name] }

// Registries returns the case registries the table routes, sorted.
func (t *Table) Registries() []string { return slices.Sorted(maps.Keys(t.registries)) }

// Route returns the route of service n.
func (t *Table) Route(n int) (Route, bool) {
	r, ok := t.routes[n]
	return r, ok
}

// Routes returns every route, by service.
func (t *Table) Routes() []Route {
	out := make([]Route, 0, len(t.routes))
	for _, r := range t.routes {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Route) int { return a.Service - b.Service })
	return out
}

// Timeout returns the timeout of service n: its own, or the default.
func (t *Table) Timeout(n int) time.Duration {
	if r, ok := t.routes[n]; ok {
		return r.Timeout
	}
	return t.DefaultTimeout
}

// Adapter returns the adapter service n is routed to; "" when it has no route.
func (t *Table) Adapter(n int) string { return t.routes[n].Adapter }

// Queue returns the queue of service n, or the service's own queue when it has no route.
func (t *Table) Queue(n int) string {
	if r, ok := t.routes[n]; ok {
		return r.Queue
	}
	return schemas.ServiceTopic(n)
}

// DeclaredQueues returns every work queue the table needs declared, sorted.
func (t *Table) DeclaredQueues() []string { return slices.Clone(t.declared) }

// MaxTimeout is the longest timeout of any route.
func (t *Table) MaxTimeout() time.Duration {
	m := t.DefaultTimeout
	for _, r := range t.routes {
		m = max(m, r.Timeout)
	}
	return m
}

// queueName is what a queue may be called: the topic names of the transport, which the AMQP
// prefix goes in front of.
var queueName = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,127}$`)

// adapterName names the adapter process (its config's name).
var adapterName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// Load reads and checks the routes file at path.
func Load(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	return Parse(path, b)
}

// Parse checks the routes file content b. path names the file in errors. Every problem is
// reported, each as "path:line: what is wrong; the fix".
func Parse(path string, b []byte) (*Table, error) {
	p := &parser{path: path}
	if err := yaml.Unmarshal(b, &p.root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p.f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w (keys: default_timeout, queues, services, registries; a service's keys: queue, adapter, backend, timeout; a registry's: adapter)", path, err)
	}
	if p.f.DefaultTimeout <= 0 {
		p.errorAt(topLine(&p.root, "default_timeout"), "default_timeout must be positive, e.g. default_timeout: 10s")
	}
	declared := p.declaredQueues()
	t := &Table{Path: path, DefaultTimeout: p.f.DefaultTimeout, routes: p.routes(declared), registries: p.registries()}
	p.checkAllRouted()
	slices.Sort(declared)
	t.declared = declared
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return t, nil
}

// parser is one run of Parse: the file, as a node tree for line numbers and as decoded, and the
// problems found so far.
type parser struct {
	path string
	root yaml.Node
	f    File
	errs []error
}

// errorAt records a problem at line of the file.
func (p *parser) errorAt(line int, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", p.path, line, fmt.Sprintf(format, args...)))
}

// declaredQueues returns every service's own queue followed by the valid, new names of queues.
func (p *parser) declaredQueues() []string {
	declared := make([]string, 0, siobroker.LastService+len(p.f.Queues))
	for n := siobroker.FirstService; n <= siobroker.LastService; n++ {
		declared = append(declared, schemas.ServiceTopic(n))
	}
	for _, q := range p.f.Queues {
		if !queueName.MatchString(q) {
			p.errorAt(topLine(&p.root, "queues"), "queue name %q: use 1 to 128 of a-z, 0-9, '.', '_' or '-', starting with a letter", q)
			continue
		}
		if slices.Contains(declared, q) {
			p.errorAt(topLine(&p.root, "queues"), "queue %q is declared twice (sio.service.NNN are declared for every service already); remove it", q)
			continue
		}
		declared = append(declared, q)
	}
	return declared
}

// routes checks the services' entries in service order and returns their routes, by service;
// services outside Appendix 2 are left out. Every service of a queue must have the adapter of
// the queue's first service.
func (p *parser) routes(declared []string) map[int]Route {
	lines := serviceLines(&p.root)
	routes := make(map[int]Route, len(p.f.Services))
	services := make([]int, 0, len(p.f.Services))
	for n := range p.f.Services {
		services = append(services, n)
	}
	slices.Sort(services)
	queueAdapter := map[string]Route{} // the first route of each queue: one adapter per queue
	for _, n := range services {
		r, ok := p.route(n, p.f.Services[n], lines[n], declared)
		if !ok {
			continue
		}
		if first, ok := queueAdapter[r.Queue]; ok && r.Queue != "" && first.Adapter != r.Adapter {
			p.errorAt(r.Line, "queue %s carries service %d (adapter %s, line %d) and service %d (adapter %s): every service of a queue must have one adapter, or a message would reach one that cannot answer it",
				r.Queue, first.Service, first.Adapter, first.Line, n, r.Adapter)
		} else if !ok {
			queueAdapter[r.Queue] = r
		}
		routes[n] = r
	}
	return routes
}

// route checks the entry fr of service n, at line, and returns its route with the default
// timeout filled in. It returns false for a service outside Appendix 2.
func (p *parser) route(n int, fr FileRoute, line int, declared []string) (Route, bool) {
	if n < siobroker.FirstService || n > siobroker.LastService {
		p.errorAt(line, "service %d is not in Appendix 2 (%d..%d); remove it", n, siobroker.FirstService, siobroker.LastService)
		return Route{}, false
	}
	r := Route{Service: n, Queue: fr.Queue, Adapter: fr.Adapter, Backend: fr.Backend, Timeout: fr.Timeout, TimeoutSet: fr.Timeout != 0, Line: line}
	if r.Queue == "" {
		p.errorAt(line, "service %d has no queue; its own is queue: %s", n, schemas.ServiceTopic(n))
	} else if !slices.Contains(declared, r.Queue) {
		p.errorAt(line, "service %d is routed to queue %q, which is not declared; use %s or add %q to queues", n, r.Queue, schemas.ServiceTopic(n), r.Queue)
	} else if strings.HasPrefix(r.Queue, "sio.service.") && r.Queue != schemas.ServiceTopic(n) {
		p.errorAt(line, "service %d is routed to %s, the queue of another service; use %s, or a shared queue listed in queues", n, r.Queue, schemas.ServiceTopic(n))
	}
	if !adapterName.MatchString(r.Adapter) {
		p.errorAt(line, "service %d: adapter %q must be the name of the adapter config that serves it (1 to 64 of a-z, 0-9, '_' or '-')", n, r.Adapter)
	}
	if !slices.Contains(Backends, r.Backend) {
		p.errorAt(line, "service %d: backend %q is not one of %s", n, r.Backend, strings.Join(Backends, ", "))
	}
	switch {
	case r.Timeout < 0:
		p.errorAt(line, "service %d: timeout %s must be positive; remove it to use default_timeout", n, r.Timeout)
	case r.Timeout == 0:
		r.Timeout = p.f.DefaultTimeout
	}
	return r, true
}

// registryName is what a case registry may be called (access/cases' rule for the names of
// cases.registries).
var registryName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// registries checks the case registries' entries and returns the adapter of each.
func (p *parser) registries() map[string]string {
	lines := keyLines(&p.root, "registries")
	out := make(map[string]string, len(p.f.Registries))
	for _, name := range slices.Sorted(maps.Keys(p.f.Registries)) {
		adapter := p.f.Registries[name].Adapter
		switch {
		case !registryName.MatchString(name):
			p.errorAt(lines[name], "registry %q: a case registry's name is 1 to 32 of a-z, 0-9, '_' or '-', starting with a letter, as in cases.registries", name)
		case !adapterName.MatchString(adapter):
			p.errorAt(lines[name], "registry %s: adapter %q must be the name of the adapter config that answers its case checks (1 to 64 of a-z, 0-9, '_' or '-')", name, adapter)
		default:
			out[name] = adapter
		}
	}
	return out
}

// checkAllRouted wants an entry for every service of Appendix 2.
func (p *parser) checkAllRouted() {
	var missing []string
	for n := siobroker.FirstService; n <= siobroker.LastService; n++ {
		if _, ok := p.f.Services[n]; !ok {
			missing = append(missing, strconv.Itoa(n))
		}
	}
	if len(missing) > 0 {
		p.errorAt(topLine(&p.root, "services"), "no route for service %s; add `N: {queue: sio.service.NNN, adapter: NAME, backend: KIND}` for each (every service of Appendix 2 needs one)",
			strings.Join(missing, ", "))
	}
}

// Diff describes what changed from old to t, one line per change, for the reload log.
func (t *Table) Diff(old *Table) []string {
	var out []string
	if old == nil {
		return []string{fmt.Sprintf("%d routes loaded", len(t.routes))}
	}
	for _, name := range slices.Sorted(maps.Keys(t.registries)) {
		if a := old.registries[name]; a != t.registries[name] {
			out = append(out, fmt.Sprintf("registry %s: adapter %q → %q", name, a, t.registries[name]))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(old.registries)) {
		if _, ok := t.registries[name]; !ok {
			out = append(out, fmt.Sprintf("registry %s: route removed", name))
		}
	}
	if old.DefaultTimeout != t.DefaultTimeout {
		out = append(out, fmt.Sprintf("default_timeout %s → %s", old.DefaultTimeout, t.DefaultTimeout))
	}
	for n := siobroker.FirstService; n <= siobroker.LastService; n++ {
		a, aok := old.routes[n]
		b, bok := t.routes[n]
		switch {
		case aok && !bok:
			out = append(out, fmt.Sprintf("service %d: route removed", n))
		case !aok && bok:
			out = append(out, fmt.Sprintf("service %d: route added to %s", n, b.Queue))
		case aok && bok:
			if a.Queue != b.Queue {
				out = append(out, fmt.Sprintf("service %d: queue %s → %s", n, a.Queue, b.Queue))
			}
			if a.Adapter != b.Adapter || a.Backend != b.Backend {
				out = append(out, fmt.Sprintf("service %d: adapter %s/%s → %s/%s", n, a.Adapter, a.Backend, b.Adapter, b.Backend))
			}
			if a.Timeout != b.Timeout {
				out = append(out, fmt.Sprintf("service %d: timeout %s → %s", n, a.Timeout, b.Timeout))
			}
		}
	}
	return out
}

// serviceLines maps each service number to the line of its entry.
func serviceLines(root *yaml.Node) map[int]int {
	out := map[int]int{}
	for k, line := range keyLines(root, "services") {
		if n, err := strconv.Atoi(k); err == nil {
			out[n] = line
		}
	}
	return out
}

// keyLines maps each key of the top-level mapping key to its line.
func keyLines(root *yaml.Node, key string) map[string]int {
	out := map[string]int{}
	if m := mapping(root, key); m != nil {
		for i := 0; i+1 < len(m.Content); i += 2 {
			out[m.Content[i].Value] = m.Content[i].Line
		}
	}
	return out
}

// topLine is the line of a top-level key, or 1 when it is absent.
func topLine(root *yaml.Node, key string) int {
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		m := root.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i].Line
			}
		}
	}
	return 1
}

func mapping(root *yaml.Node, key string) *yaml.Node {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.MappingNode {
			return m.Content[i+1]
		}
	}
	return nil
}

// Live is the table a running broker routes with; a reload swaps in a new one whole. It is safe
// for concurrent use.
type Live struct{ p atomic.Pointer[Table] }

// NewLive returns a Live holding t.
func NewLive(t *Table) *Live {
	l := &Live{}
	l.p.Store(t)
	return l
}

// Table returns the table in force.
func (l *Live) Table() *Table { return l.p.Load() }

// Swap puts t in force and returns the table it replaces.
func (l *Live) Swap(t *Table) *Table { return l.p.Swap(t) }

// Timeout is Table.Timeout on the table in force.
func (l *Live) Timeout(n int) time.Duration { return l.Table().Timeout(n) }

// Queue is Table.Queue on the table in force.
func (l *Live) Queue(n int) string { return l.Table().Queue(n) }

// Adapter is Table.Adapter on the table in force.
func (l *Live) Adapter(n int) string { return l.Table().Adapter(n) }

// RegistryAdapter is Table.RegistryAdapter on the table in force.
func (l *Live) RegistryAdapter(name string) string { return l.Table().RegistryAdapter(name) }
