package cli

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/internal/private"
	amqptransport "github.com/sio-pso/siobroker/routing/amqp"
	"github.com/sio-pso/siobroker/sqlite"
)

// brokerFlags are the flags of a command that acts on a broker's own resources (its store, its
// journal, its RabbitMQ queues, its files): --config, read exactly as serve reads it, and --data
// where the command uses the store. Every such command goes through them, so that an operator's
// command and the running broker agree on where things are.
type brokerFlags struct {
	f      *cmdFlags
	config *string
	data   *string // nil: the command does not use the store
}

func addBrokerFlags(f *cmdFlags, withData bool) *brokerFlags {
	b := &brokerFlags{f: f, config: f.String("config", app.DefaultConfigFile,
		"the broker's configuration (YAML); SIOBROKER_* environment variables override it, as for serve")}
	if withData {
		b.data = f.String("data", "", "the broker's data directory, where its store is (default: the configuration's data_dir)")
	}
	return b
}

// load reads the configuration as serve does (config.Load: the file over the defaults, then
// the SIOBROKER_* environment); --data, when given, replaces data_dir. A file not named with
// --config may be missing: the defaults apply, as for serve.
func (b *brokerFlags) load() (*brokerEnv, error) {
	set := b.f.set()
	cfg, err := config.Load(*b.config, set["config"])
	if err != nil {
		return nil, fmt.Errorf("%w; fix it, or give the broker's own configuration with --config", err)
	}
	e := &brokerEnv{cfg: cfg, file: *b.config, flags: map[string]string{}}
	e.keys, e.found = fileKeys(*b.config)
	if b.data != nil && set["data"] && *b.data != "" {
		e.cfg.DataDir = *b.data
		e.flags["data_dir"] = "--data"
	}
	return e, nil
}

// loadOrFail is load for a command: a configuration that does not load is a usage error (exit
// 2), as for serve: nothing was tried, and the command line or the file must be fixed.
func (b *brokerFlags) loadOrFail() (*brokerEnv, int, bool) {
	e, err := b.load()
	if err != nil {
		return nil, b.f.fail(exitUsage, "%v", err), false
	}
	return e, exitOK, true
}

// brokerEnv is the configuration of the broker a command acts on, and where each of its values
// came from, so that a failure can say what was tried and how to change it.
type brokerEnv struct {
	cfg   config.Broker
	file  string
	found bool              // the file exists; a missing default file means the defaults
	keys  map[string]bool   // the keys the file sets, dotted: "amqp.prefix"
	flags map[string]string // the keys a flag replaced: "data_dir" → "--data"
}

// envName is the environment variable that overrides key, as config.Load maps them.
func envName(key string) string {
	return "SIOBROKER_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// source says where the value in force of key (e.g. "amqp.prefix") came from, with config.Load's
// precedence: a flag, the environment (an empty variable does not override), the file, the
// default.
func (e *brokerEnv) source(key string) string {
	if fl, ok := e.flags[key]; ok {
		return "from " + fl
	}
	env := envName(key)
	if v, ok := os.LookupEnv(env); ok && v != "" {
		return "from " + env
	}
	switch {
	case e.keys[key]:
		return "from " + e.file
	case !e.found:
		return fmt.Sprintf("the default: %s does not exist and %s is not set", e.file, env)
	}
	return fmt.Sprintf("the default: neither %s nor %s sets it", e.file, env)
}

// describe is key's value and where it came from: `amqp.prefix "x." (from SIOBROKER_AMQP_PREFIX)`.
func (e *brokerEnv) describe(key, value string) string {
	return fmt.Sprintf("%s %q (%s)", key, value, e.source(key))
}

// dataDir names the data directory in force, for errors.
func (e *brokerEnv) dataDir() string {
	return fmt.Sprintf("data directory %s (%s)", e.cfg.DataDir, e.source("data_dir"))
}

// store opens the broker's embedded store in the data directory in force. As the broker itself
// does, it creates the store if there is none yet (users import may come before the first start).
func (e *brokerEnv) store(ctx context.Context) (*sqlite.DB, error) {
	// A command that opens the store writes the data directory, as serve does: the same umask.
	private.RestrictUmask()
	db, err := app.OpenStore(ctx, e.cfg)
	if err != nil {
		return nil, fmt.Errorf("the store in the %s: %w", e.dataDir(), err)
	}
	return db, nil
}

// existingStore opens the store only if the broker has made one: a command that reads the
// broker's journal, or records in it, must not create an empty store in a wrong directory.
func (e *brokerEnv) existingStore(ctx context.Context) (*sqlite.DB, error) {
	if _, err := os.Stat(filepath.Join(e.cfg.DataDir, sqlite.FileName)); err != nil {
		return nil, fmt.Errorf("no broker store in the %s: %w; give the broker's data directory with --data, or its configuration with --config",
			e.dataDir(), err)
	}
	return e.store(ctx)
}

// journal opens the journal the configuration names (app.OpenJournal): db's own for the sqlite
// driver, or PostgreSQL. The returned func closes it.
func (e *brokerEnv) journal(ctx context.Context, db *sqlite.DB) (siobroker.Journal, func(), error) {
	j, closeJournal, err := app.OpenJournal(ctx, e.cfg, db)
	if err != nil {
		return nil, nil, fmt.Errorf("the journal (%s): %w", e.describe("journal.driver", e.cfg.Journal.Driver), err)
	}
	return j, closeJournal, nil
}

// journalOnly opens the journal without a store to work on: the broker's existing store for the
// sqlite driver, none for PostgreSQL. The returned func closes both.
func (e *brokerEnv) journalOnly(ctx context.Context) (siobroker.Journal, func(), error) {
	var db *sqlite.DB
	if e.cfg.Journal.Driver != "postgres" {
		var err error
		if db, err = e.existingStore(ctx); err != nil {
			return nil, nil, err
		}
	}
	j, closeJournal, err := e.journal(ctx, db)
	if err != nil {
		if db != nil {
			db.Close()
		}
		return nil, nil, err
	}
	return j, func() {
		closeJournal()
		if db != nil {
			db.Close()
		}
	}, nil
}

// amqp is the broker's RabbitMQ transport configuration, as the broker builds it.
func (e *brokerEnv) amqp(instance string) amqptransport.Config {
	return app.AMQPConfig(e.cfg.AMQP, instance, nil)
}

// operatorURL is where the operator's listener (operator.listen: /metrics, /readyz) of the
// broker the configuration describes is, as seen from this machine: a wildcard address is asked
// on the loopback interface. It is always plain HTTP.
func (e *brokerEnv) operatorURL() string {
	const scheme = "http"
	host, port, err := net.SplitHostPort(e.cfg.Operator.Listen)
	if err != nil {
		return scheme + "://" + e.cfg.Operator.Listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// redactURL hides a URL's password: amqp://guest:xxxxx@host/; in a comma-separated list of
// URLs (amqp.url naming the nodes of a RabbitMQ cluster), each one's.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(an unparsable URL)"
			continue
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}

// fileKeys returns the keys a configuration file sets, dotted and lower-case as config.Load
// (viper) reads them, and whether the file exists. A file that cannot be read or parsed yields
// no keys: config.Load has refused it already, or it is missing.
func fileKeys(file string) (map[string]bool, bool) {
	keys := map[string]bool{}
	data, err := os.ReadFile(file)
	if err != nil {
		return keys, false
	}
	var doc map[string]any
	if yaml.Unmarshal(data, &doc) != nil {
		return keys, true
	}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := prefix + strings.ToLower(k)
			keys[key] = true
			if sub, ok := v.(map[string]any); ok {
				walk(key+".", sub)
			}
		}
	}
	walk("", doc)
	return keys, true
}
