package adapterconfig_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker/adapters/adapterconfig"
)

// env is a lookup over a fixed environment.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// TestLoadEnv: SIOBROKER_AMQP_URL and SIOBROKER_AMQP_PREFIX replace the file's transport.amqp_url
// and transport.prefix, as they replace the broker's amqp.url and amqp.prefix; an empty variable
// does not; Load reads the file alone.
func TestLoadEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "adapter.yaml")
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("name: a1\ntransport: {amqp_url: \"amqp://file/\", prefix: \"file.\"}\nservices: {1: {backend: demo}}\n")

	cfg, applied, err := adapterconfig.LoadEnv(path, env(map[string]string{
		"SIOBROKER_AMQP_URL": "amqp://u:secret@env:5672/", "SIOBROKER_AMQP_PREFIX": "env.", "SIOBROKER_AMQP_PREFETCH": "99",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Transport.AMQPURL != "amqp://u:secret@env:5672/" || cfg.Transport.Prefix != "env." || cfg.Transport.Prefetch != 1 {
		t.Errorf("transport %+v: want the environment's URL and prefix, the file's (default) prefetch", cfg.Transport)
	}
	want := []adapterconfig.Override{{Env: "SIOBROKER_AMQP_URL", Key: "transport.amqp_url"}, {Env: "SIOBROKER_AMQP_PREFIX", Key: "transport.prefix"}}
	if len(applied) != 2 || applied[0] != want[0] || applied[1] != want[1] {
		t.Errorf("applied %+v, want %+v", applied, want)
	}

	// An empty variable does not override, as for the broker (viper).
	cfg, applied, err = adapterconfig.LoadEnv(path, env(map[string]string{"SIOBROKER_AMQP_PREFIX": ""}))
	if err != nil || cfg.Transport.Prefix != "file." || len(applied) != 0 {
		t.Errorf("an empty variable: %+v %+v %v", cfg.Transport, applied, err)
	}
	// Load and Parse never read the environment.
	t.Setenv("SIOBROKER_AMQP_PREFIX", "process.")
	if cfg, err := adapterconfig.Load(path); err != nil || cfg.Transport.Prefix != "file." {
		t.Errorf("Load read the environment: %+v %v", cfg, err)
	}

	// The URL may be given in the environment alone: it is applied before the validation.
	write("name: a1\nservices: {1: {backend: demo}}\n")
	if _, err := adapterconfig.Load(path); err == nil {
		t.Error("Load accepted a file without transport.amqp_url")
	}
	cfg, _, err = adapterconfig.LoadEnv(path, env(map[string]string{"SIOBROKER_AMQP_URL": "amqp://env/"}))
	if err != nil || cfg.Transport.AMQPURL != "amqp://env/" {
		t.Errorf("URL from the environment only: %+v %v", cfg, err)
	}
	// A bad value from the environment is refused, and the error says where it came from,
	// without the password.
	_, _, err = adapterconfig.LoadEnv(path, env(map[string]string{"SIOBROKER_AMQP_URL": "http://u:secret@env/"}))
	if err == nil || !strings.Contains(err.Error(), "SIOBROKER_AMQP_URL") || strings.Contains(err.Error(), "secret") {
		t.Errorf("a bad URL from the environment: %v", err)
	}
}
