package check_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sio-pso/siobroker/config/check"
	"github.com/sio-pso/siobroker/routing/msgauth"
)

// masterKey writes a new master key in dir and returns its file.
func masterKey(t *testing.T, dir, name string) (string, msgauth.Master) {
	t.Helper()
	m, err := msgauth.NewMaster()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := msgauth.WriteFile(path, m.PEM()); err != nil {
		t.Fatal(err)
	}
	return path, m
}

// adapterKey writes adapter's key, from a master key of its own, in dir and returns its file.
func adapterKey(t *testing.T, dir, adapter string) string {
	t.Helper()
	_, m := masterKey(t, dir, adapter+".master")
	return deriveKey(t, dir, m, adapter)
}

func deriveKey(t *testing.T, dir string, m msgauth.Master, adapter string) string {
	t.Helper()
	k, err := m.Derive(adapter)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, adapter+"-"+k.ID()+".key")
	if err := msgauth.WriteFile(path, k.PEM()); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTransportKeys: the broker's master key and the adapters' keys are read as the processes
// read them; an adapter's key must be derived from the broker's master key, and be private.
func TestTransportKeys(t *testing.T) {
	t.Run("an adapter without a key", func(t *testing.T) {
		s := newSetup(t)
		s.adapter = edit(t, s.adapter, ",\n  # this adapter's key: siobroker transport-key derive --adapter kgd-adapter-1 --out data/kgd-adapter-1.key\n  message_key_file: "+
			s.adapterKey+"}", "}")
		r := s.check(t, "adapter.yaml")
		expect(t, r, want{s.path("adapter.yaml"), lineOf(t, s.adapter, "transport:"), check.Error,
			"transport.message_key_file is not set", "siobroker transport-key derive --adapter kgd-adapter-1 --out FILE"})
	})

	t.Run("a key derived from another master key", func(t *testing.T) {
		s := newSetup(t)
		masterFile, m := masterKey(t, s.dir, "transport.key")
		s.broker = edit(t, s.broker, `  message_key_file: ""`, "  message_key_file: "+masterFile)
		r := s.check(t, "adapter.yaml")
		expect(t, r, want{s.path("adapter.yaml"), lineOf(t, s.adapter, "message_key_file:"), check.Error,
			"but the broker's master key (" + masterFile + ") gives adapter kgd-adapter-1 the key", "derive it again"})
		only(t, r, 3+1) // the three services the shipped routes give to demo, and the key

		// Derived from the broker's: nothing to say about the keys.
		s.adapter = edit(t, s.adapter, s.adapterKey, deriveKey(t, s.dir, m, "kgd-adapter-1"))
		only(t, s.check(t, "adapter.yaml"), 3)
	})

	t.Run("a key others may read", func(t *testing.T) {
		s := newSetup(t)
		key := adapterKey(t, s.dir, "loose")
		if err := os.Chmod(key, 0o644); err != nil {
			t.Fatal(err)
		}
		s.adapter = edit(t, s.adapter, s.adapterKey, key)
		r := s.check(t, "adapter.yaml")
		expect(t, r, want{s.path("adapter.yaml"), lineOf(t, s.adapter, "message_key_file:"), check.Error,
			"may be read or written by others (mode 0644)", "chmod 600"})
	})

	t.Run("the broker's keys", func(t *testing.T) {
		s := newSetup(t)
		s.broker = edit(t, s.broker, "transport: gochannel", "transport: amqp")
		r := s.check(t)
		b := s.path("broker.yaml")
		expect(t, r, want{b, lineOf(t, s.broker, "message_key_file:"), check.Warning, "amqp.message_key_file is not set", "siobroker transport-key new"})

		s.broker = edit(t, s.broker, `  message_key_file: ""`, "  message_key_file: "+s.path("missing.key"))
		s.broker = edit(t, s.broker, `  previous_message_key_file: ""`, "  previous_message_key_file: "+adapterKey(t, s.dir, "an-adapter"))
		s.broker = edit(t, s.broker, `  previous_message_key_until: ""`, `  previous_message_key_until: "2026-01-01T00:00:00Z"`)
		r = s.check(t)
		expect(t, r, want{b, lineOf(t, s.broker, "  message_key_file:"), check.Error, "amqp.message_key_file: key file: stat", "transport-key new"})
		expect(t, r, want{b, lineOf(t, s.broker, "previous_message_key_file:"), check.Error, `holds the key of adapter "an-adapter", not the broker's master key`, "transport-key"})
		expect(t, r, want{b, lineOf(t, s.broker, "previous_message_key_until:"), check.Warning, "accepted until 2026-01-01", "remove"})
	})
}
