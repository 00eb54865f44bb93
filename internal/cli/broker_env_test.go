package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker/sqlite"
)

// writeBrokerConfig writes a broker configuration file and returns its path.
func writeBrokerConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broker.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadEnv parses args as a command with brokerFlags would and loads the configuration.
func loadEnv(t *testing.T, args ...string) (*brokerEnv, error) {
	t.Helper()
	f := newFlags("test", "usage:\n", io.Discard, io.Discard)
	b := addBrokerFlags(f, true)
	if _, ok := f.parseNoArgs(args); !ok {
		t.Fatalf("parse %q", args)
	}
	return b.load()
}

// TestBrokerEnvSources: the configuration is read as serve reads it (the file, the SIOBROKER_*
// environment over it, --data over both), and each value says where it came from.
func TestBrokerEnvSources(t *testing.T) {
	fileData, envData, flagData := t.TempDir(), t.TempDir(), t.TempDir()
	file := writeBrokerConfig(t, fmt.Sprintf("data_dir: %s\namqp:\n  prefix: file.\n", fileData))

	e, err := loadEnv(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if e.cfg.DataDir != fileData || e.source("data_dir") != "from "+file || e.cfg.AMQP.Prefix != "file." {
		t.Errorf("from the file: data %s (%s), prefix %q", e.cfg.DataDir, e.source("data_dir"), e.cfg.AMQP.Prefix)
	}
	if got, want := e.source("amqp.url"), "the default: neither "+file+" nor SIOBROKER_AMQP_URL sets it"; got != want {
		t.Errorf("amqp.url source %q, want %q", got, want)
	}

	t.Setenv("SIOBROKER_DATA_DIR", envData)
	t.Setenv("SIOBROKER_AMQP_PREFIX", "env.")
	if e, err = loadEnv(t, "--config", file); err != nil {
		t.Fatal(err)
	}
	if e.cfg.DataDir != envData || e.dataDir() != "data directory "+envData+" (from SIOBROKER_DATA_DIR)" {
		t.Errorf("from the environment: %s", e.dataDir())
	}
	if got, want := e.describe("amqp.prefix", e.cfg.AMQP.Prefix), `amqp.prefix "env." (from SIOBROKER_AMQP_PREFIX)`; got != want {
		t.Errorf("prefix: %s, want %s", got, want)
	}
	if e, err = loadEnv(t, "--config", file, "--data", flagData); err != nil || e.dataDir() != "data directory "+flagData+" (from --data)" {
		t.Errorf("from --data: %v %v", e, err)
	}

	// The default file may be missing (the defaults apply, as for serve); a named one may not.
	if e, err = loadEnv(t); err != nil || !strings.Contains(e.source("amqp.url"), "configs/broker.yaml does not exist") {
		t.Errorf("the missing default file: %v, %v", e, err)
	}
	missing := filepath.Join(t.TempDir(), "none.yaml")
	if _, err = loadEnv(t, "--config", missing); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "--config") {
		t.Errorf("a missing named file: %v", err)
	}
	code, _, errOut := runMainArgs("users", "list", "--config", missing)
	if code != 2 || !strings.Contains(errOut, missing) {
		t.Errorf("users list with a missing configuration: exit %d, %s", code, errOut)
	}
}

// TestStoreFromConfiguration: the operator's commands open the store of the data directory the
// configuration names (with the environment over it), as the broker does, and a store that
// cannot be opened is reported with the directory and where it came from.
func TestStoreFromConfiguration(t *testing.T) {
	data := t.TempDir()
	file := writeBrokerConfig(t, fmt.Sprintf("data_dir: %s\n", data))
	code, out, errOut := runMainArgs(append([]string{"users", "register", "--config", file, "--iin", "750312300458", "--name", "ИВАНОВ ИВАН",
		"--org", "Прокуратура", "--role", "1", "--reason", "заявка № 1"}, app5Flags...)...)
	if code != 0 {
		t.Fatalf("register: exit %d\n%s%s", code, out, errOut)
	}
	db, err := sqlite.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	_, found, err := db.User(context.Background(), "750312300458")
	db.Close()
	if err != nil || !found {
		t.Fatalf("the user is not in the configuration's data_dir %s: %v", data, err)
	}
	for _, args := range [][]string{{"users", "list"}, {"incidents", "list"}, {"maintenance", "list"}} {
		if code, out, errOut := runMainArgs(append(args, "--config", file)...); code != 0 {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if _, out, _ := runMainArgs("users", "list", "--config", file); !strings.Contains(out, "1 users") {
		t.Errorf("users list:\n%s", out)
	}

	// SIOBROKER_DATA_DIR overrides the file, as for serve.
	other := t.TempDir()
	t.Setenv("SIOBROKER_DATA_DIR", other)
	if _, out, _ := runMainArgs("users", "list", "--config", file); !strings.Contains(out, "0 users") {
		t.Errorf("users list with SIOBROKER_DATA_DIR: the file's store was read:\n%s", out)
	}

	// A data directory that cannot be made is named, with where it came from.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIOBROKER_DATA_DIR", filepath.Join(notDir, "data"))
	code, _, errOut = runMainArgs("users", "list", "--config", file)
	if code != 1 || !strings.Contains(errOut, "siobroker users list: the store in the data directory "+filepath.Join(notDir, "data")+" (from SIOBROKER_DATA_DIR)") {
		t.Errorf("an unusable data directory: exit %d\n%s", code, errOut)
	}

	// A command that only reads the broker's journal never makes an empty store elsewhere.
	empty := t.TempDir()
	code, _, errOut = runMainArgs("journal", "check", "--config", file, "--data", empty)
	if code != 1 || !strings.Contains(errOut, "no broker store in the data directory "+empty+" (from --data)") {
		t.Errorf("journal check of an empty directory: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(empty, sqlite.FileName)); err == nil {
		t.Error("journal check created a store")
	}
}

// TestStoreOptionsFromConfiguration: the commands open the store with the configuration's
// durability (store.synchronous), as the broker does.
func TestStoreOptionsFromConfiguration(t *testing.T) {
	for _, c := range []struct {
		text string
		want int // PRAGMA synchronous: 1 normal, 2 full
	}{
		{"", 2},
		{"store:\n  synchronous: normal\n  write_timeout: 2s\n", 1},
	} {
		file := writeBrokerConfig(t, fmt.Sprintf("data_dir: %s\n%s", t.TempDir(), c.text))
		e, err := loadEnv(t, "--config", file)
		if err != nil {
			t.Fatal(err)
		}
		db, err := e.store(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n, err := db.Synchronous(context.Background())
		db.Close()
		if err != nil || n != c.want {
			t.Errorf("%q: the store runs synchronous=%d (%v), want %d", c.text, n, err, c.want)
		}
	}
}

// TestRedactURL: every node's password is hidden when amqp.url names a cluster's nodes.
func TestRedactURL(t *testing.T) {
	got := redactURL("amqp://sio:secret1@rabbit1:5672/sio, amqp://sio:secret2@rabbit2:5672/sio")
	if strings.Contains(got, "secret") || strings.Count(got, "sio:xxxxx@") != 2 {
		t.Errorf("redactURL = %q", got)
	}
	if got := redactURL("amqp://u:p@[::1/"); got != "(an unparsable URL)" {
		t.Errorf("unparsable: %q", got)
	}
}
