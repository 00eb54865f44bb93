package check

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/cases"
	"github.com/sio-pso/siobroker/schemas"
)

// crossCheck compares the files with each other: the adapters' transport keys with the broker's
// master key, the rights with the routes, the routes with the adapter configs, and the routes'
// timeouts with the broker's.
func (c *checker) crossCheck() {
	if c.broker != nil && c.broker.keys != nil {
		for _, a := range c.adapters {
			c.adapterKeyAgainstBroker(a, c.broker.keys)
		}
	}
	if c.routes == nil {
		return
	}
	if c.rights != nil {
		c.rightsWithoutRoute()
	}
	for _, a := range c.adapters {
		c.routesAgainstAdapter(a)
		c.registriesAgainstAdapter(a)
	}
	if c.broker != nil {
		c.timeoutsAgainstBroker()
		c.registriesAgainstBroker()
	}
}

// registriesAgainstBroker wants a route for every case registry the broker's cases.registries
// names: the broker authenticates each check for the adapter its route names, and without one
// every request under the registry's bases would be refused as unverifiable.
func (c *checker) registriesAgainstBroker() {
	r, b := c.routes, c.broker
	byRegistry := map[string][]string{}
	for _, basis := range slices.Sorted(maps.Keys(b.cfg.Cases.Registries)) {
		if cases.Exempt(siobroker.Basis(basis)) {
			continue // the broker file's own check refuses it
		}
		name := b.cfg.Cases.Registries[basis]
		byRegistry[name] = append(byRegistry[name], strconv.Itoa(basis))
	}
	for _, name := range slices.Sorted(maps.Keys(byRegistry)) {
		if _, ok := r.file.Registries[name]; ok {
			continue
		}
		c.errorf(r.doc.Path, lineOf(r.doc.root, "registries", false),
			fmt.Sprintf("add `%s: {adapter: NAME}` under registries, NAME being the adapter that serves it", name),
			"case registry %s (cases.registries, basis %s, %s) has no route: its case checks could not be authenticated for any adapter, and every request under basis %s would be refused",
			name, strings.Join(byRegistry[name], ", "), b.where("cases.registries"), strings.Join(byRegistry[name], ", "))
	}
}

// registriesAgainstAdapter compares the registries' routes with one adapter config, as
// routesAgainstAdapter does the services': a registry routed to the adapter must be among those
// it serves, and one it serves that is routed elsewhere is a config out of step with the table.
func (c *checker) registriesAgainstAdapter(a *adapterInfo) {
	r := c.routes
	name := a.cfg.Name
	if name == "" {
		return
	}
	served := a.cfg.RegistryNames()
	for _, reg := range slices.Sorted(maps.Keys(r.file.Registries)) {
		if r.file.Registries[reg].Adapter == name && !slices.Contains(served, reg) {
			c.errorf(r.doc.Path, lineOf(r.doc.root, "registries."+reg, false),
				fmt.Sprintf("add %s to the registries (or the demo case_registries.names) of %s, or route it to the adapter that serves it", reg, a.doc.Path),
				"case registry %s is routed to adapter %s, but %s (the config named %s) does not serve it: its checks would wait out their timeout",
				reg, name, a.doc.Path, name)
		}
	}
	for _, reg := range served {
		route, ok := r.file.Registries[reg]
		if ok && route.Adapter == name {
			continue
		}
		to := "no adapter"
		if ok {
			to = "adapter " + route.Adapter
		}
		at := lineOf(a.doc.root, "registries."+reg, false)
		if _, real := a.cfg.Registries[reg]; !real {
			at = lineOf(a.doc.root, "case_registries.names", false)
		}
		c.warnf(a.doc.Path, at,
			fmt.Sprintf("route it to %s under registries in %s, or remove it from this config", name, r.doc.Path),
			"this adapter (%s) serves case registry %s, but %s routes it to %s: the broker authenticates its checks for that adapter, and this one would refuse every one",
			name, reg, r.doc.Path, to)
	}
}

// rightsWithoutRoute reports services the rights grant under some basis that have no route: a
// request for them would be allowed and then have nowhere to go.
func (c *checker) rightsWithoutRoute() {
	r := c.routes
	for _, s := range c.rights.layout.Services {
		if len(s.Access) == 0 {
			continue
		}
		if _, ok := r.file.Services[s.No]; ok {
			continue
		}
		bases := make([]string, 0, len(s.Access))
		for _, b := range slices.Sorted(maps.Keys(s.Access)) {
			bases = append(bases, strconv.Itoa(b))
		}
		c.errorf(c.rights.doc.Path, numberedItemLine(c.rights.doc.root, "services", strconv.Itoa(s.No)),
			fmt.Sprintf("add `%d: {queue: %s, adapter: NAME, backend: KIND}` under services in %s", s.No, schemas.ServiceTopic(s.No), r.doc.Path),
			"service %d is granted under basis %s, but %s has no route for it", s.No, strings.Join(bases, ", "), r.doc.Path)
	}
}

// routesAgainstAdapter compares the routes with one adapter config: every route to the adapter
// must be served by it with the route's backend, and a service it serves that is routed to
// another adapter is a config out of step with the table.
func (c *checker) routesAgainstAdapter(a *adapterInfo) {
	r := c.routes
	name := a.cfg.Name
	if name == "" {
		return
	}
	for _, n := range slices.Sorted(maps.Keys(r.file.Services)) {
		route := r.file.Services[n]
		if route.Adapter != name {
			continue
		}
		served, ok := a.cfg.Services[n]
		switch {
		case !ok:
			c.errorf(r.doc.Path, r.line(n),
				fmt.Sprintf("add service %d to %s, or route it to the adapter that serves it", n, a.doc.Path),
				"service %d is routed to adapter %s, but %s (the config named %s) does not serve it: its requests would wait out their timeout",
				n, name, a.doc.Path, name)
		case served.Backend != route.Backend:
			c.errorf(r.doc.Path, r.line(n),
				fmt.Sprintf("make the two agree: backend: %s in the route, or backend: %s in %s", served.Backend, route.Backend, a.doc.Path),
				"service %d is routed to adapter %s with backend %s, but %s:%d serves it with backend %s",
				n, name, route.Backend, a.doc.Path, a.line(n), served.Backend)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(a.cfg.Services)) {
		route, ok := r.file.Services[n]
		if !ok || route.Adapter == name {
			continue
		}
		c.warnf(a.doc.Path, a.line(n),
			fmt.Sprintf("remove service %d from this config, or route it to %s in %s", n, name, r.doc.Path),
			"this adapter (%s) serves service %d, but %s:%d routes it to adapter %s",
			name, n, r.doc.Path, r.line(n), route.Adapter)
	}
}

// timeoutsAgainstBroker reports route timeouts the broker's own timeouts cannot hold: a late
// service is waited for up to routing.async_timeout, and a synchronous reply is cut off at
// http.write_timeout.
func (c *checker) timeoutsAgainstBroker() {
	r, b := c.routes, c.broker
	check := func(line int, what string, d time.Duration) {
		if async := b.cfg.Routing.AsyncTimeout; async > 0 && d > async {
			c.errorf(r.doc.Path, line,
				fmt.Sprintf("shorten it to at most %s, or raise routing.async_timeout (%s)", async, b.where("routing.async_timeout")),
				"%s (%s) exceeds the broker's routing.async_timeout (%s): the broker stops waiting for the service before it times out", what, d, async)
		}
		if write := b.cfg.HTTP.WriteTimeout; write > 0 && d >= write {
			c.warnf(r.doc.Path, line,
				fmt.Sprintf("raise http.write_timeout (%s) above %s, or shorten the timeout", b.where("http.write_timeout"), d),
				"%s (%s) is not below the broker's http.write_timeout (%s): a synchronous reply that waits for it is cut off", what, d, write)
		}
	}
	if r.file.DefaultTimeout > 0 {
		check(lineOf(r.doc.root, "default_timeout", false), "default_timeout", r.file.DefaultTimeout)
	}
	for _, n := range slices.Sorted(maps.Keys(r.file.Services)) {
		if t := r.file.Services[n].Timeout; t > 0 {
			check(r.line(n), fmt.Sprintf("the timeout of service %d", n), t)
		}
	}
}
