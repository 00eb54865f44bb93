package check

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

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
	}
	if c.broker != nil {
		c.timeoutsAgainstBroker()
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
