package adapterconfig_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters/adapterconfig"
	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/adapters/httpsource"
	"github.com/sio-pso/siobroker/adapters/postgres"
)

const example = "../../testdata/adapters/config/adapter.yaml"

func TestLoadExample(t *testing.T) {
	cfg, err := adapterconfig.Load(example)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "kgd-adapter-1" || cfg.Transport.Prefetch != 16 || cfg.Transport.Concurrency != 4 || len(cfg.Services) != 3 {
		t.Errorf("got %+v", cfg)
	}
	s := cfg.Services[37]
	if s.Backend != "postgres" || s.Timeout != 5*time.Second || len(s.Params) != 1 || s.Fields["inspection_no"] != "inspection_no" {
		t.Errorf("service 37: %+v", s)
	}
	if cfg.Services[5].RecordsPath != "data.vehicles" || cfg.Services[1].Backend != "demo" || cfg.Demo.People != 200 {
		t.Errorf("got %+v", cfg)
	}
	if cfg.Retry.Attempts != 3 || cfg.Retry.Backoff != 200*time.Millisecond {
		t.Errorf("retry %+v", cfg.Retry)
	}
	if cfg.Ledger.DSN == "" || cfg.Ledger.AnswerRetention != 12*time.Hour {
		t.Errorf("ledger %+v, want the DSN", cfg.Ledger)
	}
	if _, err := adapterconfig.Parse([]byte("name: a1\ntransport: {amqp_url: \"amqp://h1/, amqp://h2:5673/\"}\nservices: {1: {backend: demo}}\n")); err != nil {
		t.Errorf("two RabbitMQ nodes: %v", err)
	}
	defaults, err := adapterconfig.Parse([]byte("name: a1\ntransport: {amqp_url: \"amqp://h/\"}\nservices: {1: {backend: demo}}\n"))
	if err != nil || defaults.Retry.Attempts != 4 || defaults.Retry.Backoff != 100*time.Millisecond {
		t.Errorf("default retry %+v, %v", defaults.Retry, err)
	}
	if defaults.Tracing.Enabled() || defaults.Tracing.ServiceName != "siobroker-adapter" || defaults.Tracing.SampleRatio != 1 {
		t.Errorf("default tracing %+v: want off, siobroker-adapter, every trace", defaults.Tracing)
	}
	if cfg.Tracing.Enabled() || cfg.Tracing.SampleRatio != 1 {
		t.Errorf("the example's tracing %+v", cfg.Tracing)
	}
	never, err := adapterconfig.Parse([]byte("name: a1\ntransport: {amqp_url: \"amqp://h/\"}\nservices: {1: {backend: demo}}\ntracing: {sample_ratio: 0}\n"))
	if err != nil || never.Tracing.SampleRatio != 0 || never.Tracing.ServiceName != "siobroker-adapter" {
		t.Errorf("sample_ratio 0 written: %+v, %v", never.Tracing, err)
	}
}

// TestSOAPExample: the shipped SOAP adapter example loads and builds an http backend.
func TestSOAPExample(t *testing.T) {
	cfg, err := adapterconfig.Load("../../configs/adapters/vehicles-soap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[5]
	if s.Method != "SOAP" || s.SOAPAction != "urn:tc:GetVehicles" || !strings.Contains(s.SOAPBody, "${subject.id}") || s.RecordsPath != "GetVehiclesResponse/vehicle" {
		t.Errorf("service 5: %+v", s)
	}
	set, err := adapterconfig.Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if _, ok := set.Backends[5].(*httpsource.Backend); !ok {
		t.Errorf("service 5: %T, want *httpsource.Backend", set.Backends[5])
	}
}

func TestBuild(t *testing.T) {
	cfg, err := adapterconfig.Load(example)
	if err != nil {
		t.Fatal(err)
	}
	set, err := adapterconfig.Open(cfg, nil) // pools connect lazily: no server needed
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if _, ok := set.Backends[37].(*postgres.Backend); !ok {
		t.Errorf("service 37: %T, want *postgres.Backend", set.Backends[37])
	}
	if _, ok := set.Backends[5].(*httpsource.Backend); !ok {
		t.Errorf("service 5: %T, want *httpsource.Backend", set.Backends[5])
	}
	world := demo.Generate(1, 20, 5)
	backends, err := adapterconfig.Build(&adapterconfig.Config{Name: "demo", Transport: cfg.Transport,
		Services: map[int]adapterconfig.Service{1: {Backend: "demo"}}}, world)
	if err != nil {
		t.Fatal(err)
	}
	res, err := backends[1].Query(context.Background(), adaptertest.Request(1, siobroker.Subject{IIN: world.People()[0].IIN}))
	if err != nil || res.Reason != siobroker.ReasonOK {
		t.Errorf("demo service 1 from the given world: %+v, %v", res, err)
	}
}

func load(t *testing.T, text string) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "adapter.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := adapterconfig.Load(path)
	return err
}

const head = "name: a1\ntransport: {amqp_url: \"amqp://guest:guest@127.0.0.1:5672/\"}\n"

func TestLoadRejects(t *testing.T) {
	for name, tc := range map[string]struct{ text, want string }{
		"unknown top key":     {head + "services: {1: {backend: demo}}\nprefech: 3\n", "line 4: field prefech not found"},
		"unknown service key": {head + "services:\n  1: {backend: demo, tiemout: 3s}\n", "line 4: field tiemout not found"},
		"service 0":           {head + "services: {0: {backend: demo}}\n", "services.0: no such service"},
		"service 94":          {head + "services: {94: {backend: demo}}\n", "services.94: no such service"},
		"unknown kind":        {head + "services: {1: {backend: oracle}}\n", `backend: "oracle"`},
		"no services":         {head, "at least one service"},
		"bad amqp":            {"name: a1\ntransport: {amqp_url: \"http://x:secret@h/\"}\nservices: {1: {backend: demo}}\n", "not an amqp"},
		"password hidden":     {"name: a1\ntransport: {amqp_url: \"http://x:secret@h/\"}\nservices: {1: {backend: demo}}\n", "x:xxxxx@h"},
		"bad second node": {"name: a1\ntransport: {amqp_url: \"amqp://x:secret@h1/, http://x:secret@h2/\"}\nservices: {1: {backend: demo}}\n",
			"transport.amqp_url (URL 2 of 2): \"http://x:xxxxx@h2/\" is not an amqp"},
		"bad name":         {"name: A 1\ntransport: {amqp_url: \"amqp://h/\"}\nservices: {1: {backend: demo}}\n", "name:"},
		"bad retry":        {"name: a1\ntransport: {amqp_url: \"amqp://h/\"}\nretry: {attempts: 50}\nservices: {1: {backend: demo}}\n", "retry.attempts"},
		"bad tracing":      {head + "services: {1: {backend: demo}}\ntracing: {otlp_endpoint: \"otel:4318\", sample_ratio: 3}\n", "tracing.sample_ratio: 3"},
		"tracing endpoint": {head + "services: {1: {backend: demo}}\ntracing: {otlp_endpoint: \"otel:4318\"}\n", "tracing.otlp_endpoint"},
		"demo with dsn":    {head + "services: {1: {backend: demo, dsn: \"postgres://h/db\"}}\n", "dsn: not a key of a demo backend"},
		"http with query":  {head + "services: {5: {backend: http, url: \"http://h/v\", record_type: v, fields: {a: a}, query: \"SELECT 1\"}}\n", "query: not a key of a http backend"},
		"unknown param": {head + "services: {37: {backend: postgres, dsn: \"postgres://h/db\", query: \"SELECT a FROM t WHERE b = $1\", params: [subject.name], record_type: c, fields: {a: a}}}\n",
			`"subject.name" is not one of`},
		"param count": {head + "services: {37: {backend: postgres, dsn: \"postgres://h/db\", query: \"SELECT a FROM t WHERE b = $1 AND c = $2\", params: [subject.bin], record_type: c, fields: {a: a}}}\n",
			"$2 has no entry in params"},
		"spliced query": {head + "services: {37: {backend: postgres, dsn: \"postgres://h/db\", query: \"SELECT a FROM t WHERE b = '%s'\", record_type: c, fields: {a: a}}}\n",
			"text substitution"},
		"no dsn": {head + "services: {37: {backend: postgres, query: \"SELECT a FROM t WHERE b = $1\", params: [subject.bin], record_type: c, fields: {a: a}}}\n",
			"dsn: a postgres backend needs one"},
		"bare timeout": {head + "services: {5: {backend: http, url: \"http://h/v\", record_type: v, fields: {a: a}, timeout: 3}}\n", "cannot unmarshal !!int `3` into time.Duration"},
		"http method":  {head + "services: {5: {backend: http, url: \"http://h/v\", method: PUT, record_type: v, fields: {a: a}}}\n", "use GET, POST or SOAP"},
		"soap body on postgres": {head + "services: {37: {backend: postgres, dsn: \"postgres://h/db\", query: \"SELECT a FROM t WHERE b = $1\", params: [subject.bin], record_type: c, fields: {a: a}, soap_body: \"<q/>\"}}\n",
			"soap_body: not a key of a postgres backend"},
		"soap without body": {head + "services: {5: {backend: http, url: \"http://h/v\", method: SOAP, records_path: r/v, record_type: v, fields: {a: a}}}\n",
			"soap_body: method SOAP needs"},
		"empty":         {"", "empty"},
		"two documents": {head + "services: {1: {backend: demo}}\n---\nname: b\n", "one YAML document"},
		"ledger dsn":    {head + "services: {1: {backend: demo}}\nledger: {dsn: \"postgres://x:secret@h:notaport/db\"}\n", "ledger.dsn: not a PostgreSQL connection string"},
		"ledger retention": {head + "services: {1: {backend: demo}}\nledger: {dsn: \"postgres://h/db\", answer_retention: 10s}\n",
			"ledger.answer_retention: 10s; use 1m to 720h"},
		"ledger key": {head + "services: {1: {backend: demo}}\nledger: {dsn: \"postgres://h/db\", max_claims: 50}\n", "field max_claims not found"},
		// case registries (§5)
		"registry demo kind": {head + "registries: {erdr: {backend: demo}}\n", `registries.erdr: backend: "demo"; a case registry uses postgres or http`},
		"registry unknown key": {head + "registries:\n  erdr: {backend: http, url: \"http://h/c\", record_type: c}\n",
			"line 4: field record_type not found"},
		"registry without dsn": {head + "registries: {erdr: {backend: postgres, query: \"SELECT 1 WHERE $1 <> ''\", params: [case.number]}}\n",
			"registries.erdr: dsn: a postgres backend needs one"},
		"registry without query": {head + "registries: {erdr: {backend: postgres, dsn: \"postgres://h/db\"}}\n", "registries.erdr: query: must not be empty"},
		"registry service param": {head + "registries: {erdr: {backend: postgres, dsn: \"postgres://h/db\", query: \"SELECT 1 WHERE $1 <> ''\", params: [subject.iin]}}\n",
			`registries.erdr: params[0]: "subject.iin" is not one of basis, case.court`},
		"registry url on postgres": {head + "registries: {erdr: {backend: postgres, dsn: \"postgres://h/db\", query: \"SELECT 1\", url: \"http://h/\"}}\n",
			"registries.erdr: url: not a key of a postgres backend"},
		"registry query on http": {head + "registries: {erdr: {backend: http, url: \"http://h/c\", query: \"SELECT 1\"}}\n",
			"registries.erdr: query: not a key of a http backend"},
		"registry SOAP without body": {head + "registries: {erdr: {backend: http, url: \"http://h/c\", method: SOAP, case_path: r/case}}\n",
			"registries.erdr: soap_body: method SOAP needs"},
		"registry case_path on GET": {head + "registries: {erdr: {backend: http, url: \"http://h/c\", case_path: r/case}}\n",
			"registries.erdr: soap_body, soap_action, case_path: only for method SOAP"},
		"registry case_path on postgres": {head + "registries: {erdr: {backend: postgres, dsn: \"postgres://h/db\", query: \"SELECT 1\", case_path: r/case}}\n",
			"registries.erdr: case_path: not a key of a postgres backend"},
		"registry field": {head + "registries: {erdr: {backend: http, url: \"http://h/c\", fields: {state: s}}}\n", `registries.erdr: fields: "state" is not one of`},
		"registry name":  {head + "registries: {ERDR: {backend: http, url: \"http://h/c\"}}\n", "registries.ERDR: the name must be"},
		"registry twice": {head + "case_registries: {names: [erdr], demo_pki: data/pki}\nregistries: {erdr: {backend: http, url: \"http://h/c\"}}\n",
			"registries.erdr: also in case_registries.names"},
		"registry dsn password": {head + "registries: {erdr: {backend: postgres, dsn: \"postgres://x:secret@h:notaport/db\", query: \"SELECT 1\"}}\n",
			"registries.erdr: dsn: not a PostgreSQL connection string"},
	} {
		err := load(t, tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows a password: %v", name, err)
		}
	}
}

// TestRegistries: the shipped ЕРДР example and an http registry load and build, and the registry
// names of a process are its demo and real ones.
func TestRegistries(t *testing.T) {
	cfg, err := adapterconfig.Load("../../configs/adapters/erdr-postgres.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Registries["erdr"]
	if cfg.Name != "erdr" || len(cfg.Services) != 0 || r.Backend != "postgres" || strings.Join(r.Params, ",") != "basis,case.number,case.instruction_no" ||
		r.Timeout != 3*time.Second || r.Fields["part"] != "part" {
		t.Errorf("got %+v", cfg)
	}
	set, err := adapterconfig.Open(cfg, nil) // the pool connects lazily
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if _, ok := set.Registries["erdr"].(*postgres.Registry); !ok || len(set.Backends) != 0 {
		t.Errorf("registries %v, backends %v", set.Registries, set.Backends)
	}

	t.Setenv("SIO_TEST_ERDR_KEY", "k-1")
	cfg, err = adapterconfig.Parse([]byte(head + "case_registries: {names: [courts, aisoip], demo_pki: data/pki}\n" +
		"registries:\n  erdr: {backend: http, url: \"http://erdr.example/cases\", method: POST, timeout: 2s,\n" +
		"    fields: {status: case.state, participants: case.people, iin: person.iin, part: role}, headers: {X-Api-Key: \"${env:SIO_TEST_ERDR_KEY}\"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.RegistryNames(), ","); got != "aisoip,courts,erdr" {
		t.Errorf("registry names %s", got)
	}
	set, err = adapterconfig.Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if _, ok := set.Registries["erdr"].(*httpsource.Registry); !ok || len(set.Registries) != 1 {
		t.Errorf("registries %v: the demo ones are built from a development PKI, not here", set.Registries)
	}
}
