package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// registryOf is the registry configs/broker.yaml's cases.registries sends each verified basis to
// (basis 3 is exempt, §23).
var registryOf = map[siobroker.Basis]string{
	siobroker.BasisCriminal: "erdr", siobroker.BasisSearch: "erdr",
	siobroker.BasisCourtCivil: "courts", siobroker.BasisCourtAdmin: "courts",
	siobroker.BasisEnforcement: "aisoip",
}

// registryCase is one case of the demo manifest as a real registry holds it.
type registryCase struct {
	registry string
	c        devpki.Case
	iin      string
}

// key is what a check finds the case by: the values the broker sends (adapters.CaseParams).
func (rc registryCase) key() string {
	return strings.Join([]string{rc.registry, fmt.Sprint(int(rc.c.Basis)), rc.c.Number, rc.c.InstructionNo, rc.c.Year, rc.c.Court}, "\x00")
}

// TestEveryBasisCheckedByRealRegistries: a request under each verified basis (1, 2, 4, 5, 6) has
// its case checked (§5) by a registry served from PostgreSQL, and then from an HTTP source, not by
// the demo registry: the three registries of configs/routes.yaml are routed to one adapter process
// on RabbitMQ answering them from tables (or a JSON endpoint) holding the demo users' cases. For
// each open case of each valid demo user (the prosecutor, the judge and the investigator, in their
// parts: every verified basis) the request passes; the same case closed in the source is refused;
// and taken out of it, it is no longer the user's.
func TestEveryBasisCheckedByRealRegistries(t *testing.T) {
	src := sharedBroker(t)
	var cases []registryCase
	for _, u := range src.manifest.Users {
		for _, c := range u.Cases {
			if reg, ok := registryOf[c.Basis]; ok {
				cases = append(cases, registryCase{reg, c, u.IIN})
			}
		}
	}
	for _, backend := range []string{"postgres", "http"} {
		t.Run(backend, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
			defer cancel()
			var source registrySource
			if backend == "postgres" {
				source = newPostgresRegistries(t, ctx, cases)
			} else {
				source = newHTTPRegistries(t, cases)
			}
			runEveryBasis(t, ctx, source, cases)
		})
	}
}

// registrySource is where the test's registries answer from.
type registrySource interface {
	// config is the registries section of the adapter's YAML for erdr, courts and aisoip.
	config() string
	// close marks a case closed in the source; remove takes it out.
	close(t *testing.T, ctx context.Context, rc registryCase)
	remove(t *testing.T, ctx context.Context, rc registryCase)
	// asked is how many checks of registry the source answered (-1: it cannot tell).
	asked(registry string) int
}

func runEveryBasis(t *testing.T, ctx context.Context, source registrySource, cases []registryCase) {
	prefix := amqpPrefix(t)
	w := &walkthrough{dir: t.TempDir()}
	w.routesFile = filepath.Join(w.dir, "routes.yaml")
	text, err := os.ReadFile("../../configs/routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes := string(text)
	for _, reg := range []string{"erdr", "courts", "aisoip"} {
		old := reg + ": {adapter: demo}"
		if !strings.Contains(routes, old) {
			t.Fatalf("configs/routes.yaml has no %q", old)
		}
		routes = strings.Replace(routes, old, reg+": {adapter: caseregs}", 1)
	}
	writeFile(t, w.routesFile, routes)
	w.masterFile = filepath.Join(w.dir, "transport.key")
	w.adapterText = fmt.Sprintf(`name: caseregs
routes_file: %s
transport:
  amqp_url: %q
  prefix: %q
  prefetch: 1
  concurrency: 4
  message_key_file: %s
registries:
%s`, w.routesFile, testAMQPURL, prefix, adapterKey(t, w.masterFile, "caseregs"), source.config())
	w.adapterFile = filepath.Join(w.dir, "caseregs.yaml")
	writeFile(t, w.adapterFile, w.adapterText)
	var out, errb strings.Builder
	if code := Main(ctx, []string{"config", "check", w.adapterFile}, &out, &errb); code != 0 {
		t.Fatalf("config check of the adapter's config: exit %d\n%s%s", code, out.String(), errb.String())
	}

	e := w.startBroker(t, ctx, prefix)
	stop := w.runAdapter(t, ctx)
	defer func() {
		if out := stop(); !strings.Contains(out, "serving services [] and case registries [aisoip courts erdr]") {
			t.Errorf("the adapter's start line: %q", out)
		}
	}()

	seen := map[siobroker.Basis]bool{}
	for _, rc := range cases {
		u, c := userOf(t, e.manifest, rc.iin), rc.c
		if u.Status != devpki.StatusValid || c.Status == "closed" {
			continue
		}
		seen[c.Basis] = true
		send := func() (int, string) {
			code, o, errs := runSend(t, e.sendArgs(u, append(caseFlags(c), "--timeout", "10s", "--services", "1")...)...)
			return code, o + errs
		}
		t.Run(fmt.Sprintf("basis %d, %s, role %d, %s", int(c.Basis), rc.registry, u.Role, c.Part), func(t *testing.T) {
			before := source.asked(rc.registry)
			// The first requests may come before the adapter consumes.
			deadline := time.Now().Add(30 * time.Second)
			for {
				code, o := send()
				if code == sendExitOK && !strings.Contains(o, "fault") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the user's open case was not passed: exit %d\n%s", code, o)
				}
				time.Sleep(300 * time.Millisecond)
			}
			if after := source.asked(rc.registry); before >= 0 && after <= before {
				t.Errorf("the %s source was not asked (%d checks before, %d after)", rc.registry, before, after)
			}
			source.close(t, ctx, rc)
			if _, o := send(); !strings.Contains(o, "fault SIO-CASE-UNKNOWN") || !strings.Contains(o, `is "closed" in the `+rc.registry+" registry") {
				t.Errorf("the case closed in the source:\n%s", o)
			}
			source.remove(t, ctx, rc)
			if _, o := send(); !strings.Contains(o, "fault SIO-CASE-UNKNOWN") ||
				!strings.Contains(o, "not among the proceedings of user "+u.IIN+" in the "+rc.registry+" registry") {
				t.Errorf("the case taken out of the source:\n%s", o)
			}
		})
	}
	if len(seen) != len(registryOf) {
		t.Errorf("bases checked: %v; want every basis of %v", seen, registryOf)
	}
}

// userOf returns the manifest's user of iin.
func userOf(t *testing.T, m *devpki.Manifest, iin string) devpki.User {
	t.Helper()
	for _, u := range m.Users {
		if u.IIN == iin {
			return u
		}
	}
	t.Fatalf("no user %s in the manifest", iin)
	return devpki.User{}
}

// postgresRegistries holds the cases in one table of a fresh schema, each registry's query
// reading its own rows.
type postgresRegistries struct {
	dsn  string
	exec func(t *testing.T, ctx context.Context, sql string, args ...any)
}

func newPostgresRegistries(t *testing.T, ctx context.Context, cases []registryCase) *postgresRegistries {
	dsn := sharedJournalDSN(t) // a fresh schema of the test database, in search_path
	conn := loadSQL(t, ctx, dsn)
	p := &postgresRegistries{dsn: dsn, exec: func(t *testing.T, ctx context.Context, sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}}
	p.exec(t, ctx, `CREATE TABLE registry_cases (
		registry text NOT NULL, basis smallint NOT NULL, number text NOT NULL,
		instruction_no text NOT NULL, year text NOT NULL, court text NOT NULL,
		status text NOT NULL, articles text[] NOT NULL, iin text NOT NULL, part text NOT NULL)`)
	for _, rc := range cases {
		c := rc.c
		p.exec(t, ctx, `INSERT INTO registry_cases VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			rc.registry, int(c.Basis), c.Number, c.InstructionNo, c.Year, c.Court, c.Status, append([]string{}, c.Articles...), rc.iin, c.Part)
	}
	return p
}

func (p *postgresRegistries) config() string {
	var b strings.Builder
	for _, reg := range []string{"erdr", "courts", "aisoip"} {
		// The check's empty values may come as NULL: coalesce compares them as ''.
		fmt.Fprintf(&b, `  %s:
    backend: postgres
    dsn: %q
    query: |
      SELECT status, articles, iin, part FROM registry_cases
      WHERE registry = '%s' AND basis = $1::smallint AND number = $2
        AND instruction_no = coalesce($3::text, '') AND year = coalesce($4::text, '') AND court = coalesce($5::text, '')
    params: [basis, case.number, case.instruction_no, case.year, case.court]
    timeout: 3s
`, reg, p.dsn, reg)
	}
	return b.String()
}

func (p *postgresRegistries) close(t *testing.T, ctx context.Context, rc registryCase) {
	p.exec(t, ctx, `UPDATE registry_cases SET status = 'closed' WHERE registry = $1 AND basis = $2 AND number = $3`, rc.registry, int(rc.c.Basis), rc.c.Number)
}

func (p *postgresRegistries) remove(t *testing.T, ctx context.Context, rc registryCase) {
	p.exec(t, ctx, `DELETE FROM registry_cases WHERE registry = $1 AND basis = $2 AND number = $3`, rc.registry, int(rc.c.Basis), rc.c.Number)
}

func (p *postgresRegistries) asked(string) int { return -1 }

// httpRegistries answers GET /REGISTRY?basis=…&number=… as a registry's JSON API would: the case
// with its participants, or 404.
type httpRegistries struct {
	url   string
	mu    sync.Mutex
	cases map[string]*httpCase
	calls map[string]int
}

type httpCase struct {
	Status       string            `json:"status"`
	Articles     []string          `json:"articles"`
	Participants []httpParticipant `json:"participants"`
}

type httpParticipant struct {
	IIN  string `json:"iin"`
	Part string `json:"part"`
}

func newHTTPRegistries(t *testing.T, cases []registryCase) *httpRegistries {
	h := &httpRegistries{cases: map[string]*httpCase{}, calls: map[string]int{}}
	for _, rc := range cases {
		hc := h.cases[rc.key()]
		if hc == nil {
			hc = &httpCase{Status: rc.c.Status, Articles: rc.c.Articles}
			h.cases[rc.key()] = hc
		}
		hc.Participants = append(hc.Participants, httpParticipant{rc.iin, rc.c.Part})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		registry := strings.TrimPrefix(r.URL.Path, "/")
		key := strings.Join([]string{registry, q.Get("basis"), q.Get("number"), q.Get("instruction_no"), q.Get("year"), q.Get("court")}, "\x00")
		h.mu.Lock()
		h.calls[registry]++
		hc, ok := h.cases[key]
		var body []byte
		if ok {
			body, _ = json.Marshal(hc)
		}
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

func (h *httpRegistries) config() string {
	var b strings.Builder
	for _, reg := range []string{"erdr", "courts", "aisoip"} {
		fmt.Fprintf(&b, "  %s: {backend: http, url: %q, method: GET, timeout: 3s}\n", reg, h.url+"/"+reg)
	}
	return b.String()
}

func (h *httpRegistries) close(t *testing.T, _ context.Context, rc registryCase) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cases[rc.key()].Status = "closed"
}

func (h *httpRegistries) remove(t *testing.T, _ context.Context, rc registryCase) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.cases, rc.key())
}

func (h *httpRegistries) asked(registry string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[registry]
}
