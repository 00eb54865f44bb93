package check

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/sio-pso/siobroker/adapters/adapterconfig"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/routing/msgauth"
)

// masterKeys are the broker's master keys of its transport messages, as far as they could be
// read, for the adapters' keys to be checked against: the current one and a rotation's previous.
type masterKeys struct {
	where    string // names the file of the current key, for messages about adapters' keys
	current  msgauth.Master
	previous msgauth.Master
}

// checkBrokerMessageKeys checks the master key files of the broker file (amqp.message_key_file,
// and a rotation's previous key with its end), and returns the keys it could read.
func (c *checker) checkBrokerMessageKeys(d *doc, cfg config.Broker) *masterKeys {
	at := func(key string) int { return lineOf(d.root, key, true) }
	keys := &masterKeys{where: cfg.MessageKeyPath()}
	if cfg.AMQP.MessageKeyFile == "" {
		if cfg.Transport == "amqp" {
			c.warnf(d.Path, at("amqp.message_key_file"), "write one with `siobroker transport-key new --out FILE` and name it in amqp.message_key_file",
				"amqp.message_key_file is not set: serve refuses to start unless --dev, which makes %s on its first start, "+
					"a development key each data directory has its own of, and the adapters' keys must be derived from it", cfg.MessageKeyPath())
		}
		if _, err := os.Stat(cfg.MessageKeyPath()); err != nil {
			return keys // made on the first start
		}
	}
	m, err := msgauth.ReadMaster(cfg.MessageKeyPath())
	if err != nil {
		c.keyFileProblem(d.Path, at("amqp.message_key_file"), "amqp.message_key_file", err, "siobroker transport-key new --out FILE")
	} else {
		keys.current = m
	}
	if cfg.AMQP.PreviousMessageKeyFile == "" {
		return keys
	}
	if m, err = msgauth.ReadMaster(cfg.AMQP.PreviousMessageKeyFile); err != nil {
		c.keyFileProblem(d.Path, at("amqp.previous_message_key_file"), "amqp.previous_message_key_file", err, "")
	} else {
		keys.previous = m
	}
	if until, err := cfg.AMQP.PreviousKeyUntil(); err == nil && !until.IsZero() && !until.After(c.now) {
		c.warnf(d.Path, at("amqp.previous_message_key_until"), "remove amqp.previous_message_key_file and amqp.previous_message_key_until",
			"the previous master key was accepted until %s only", astana(until))
	}
	return keys
}

// checkAdapterMessageKeys checks an adapter config's key files (transport.message_key_file, and a
// rotation's previous key): the adapter does not start without its key. A key file that does not
// exist here is a warning only, as it is installed on the adapter's machine.
func (c *checker) checkAdapterMessageKeys(d *doc, cfg adapterconfig.Config) (key, previous msgauth.Key) {
	at := func(k string) int { return lineOf(d.root, k, false) }
	t := cfg.Transport
	if t.MessageKeyFile == "" {
		name := cfg.Name
		if name == "" {
			name = "NAME"
		}
		c.errorf(d.Path, at("transport.message_key_file"),
			fmt.Sprintf("derive it on the broker's machine (siobroker transport-key derive --adapter %s --out FILE) and name it in transport.message_key_file", name),
			"transport.message_key_file is not set: the adapter checks every service message with its key, and does not start without one")
		return key, previous
	}
	read := func(k, path string) (msgauth.Key, bool) {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			c.warnf(d.Path, at(k), "install the key there, or correct the path (relative to the adapter's working directory)",
				"%s: %s does not exist here; the adapter does not start until it does", k, path)
			return msgauth.Key{}, false
		}
		got, err := msgauth.ReadKey(path)
		if err != nil {
			c.keyFileProblem(d.Path, at(k), k, err, "siobroker transport-key derive --adapter "+cfg.Name+" --out FILE")
			return msgauth.Key{}, false
		}
		return got, true
	}
	key, ok := read("transport.message_key_file", t.MessageKeyFile)
	if ok && cfg.RoutesFile != "" && key.Adapter() != cfg.Name {
		c.errorf(d.Path, at("transport.message_key_file"), "derive this adapter's own key: siobroker transport-key derive --adapter "+cfg.Name,
			"transport.message_key_file is adapter %s's key, but this adapter is %s (the routing table routes its services to it): "+
				"every service message would be refused", key.Adapter(), cfg.Name)
	}
	if t.PreviousMessageKeyFile == "" {
		return key, previous
	}
	previous, ok = read("transport.previous_message_key_file", t.PreviousMessageKeyFile)
	if ok && !key.IsZero() && previous.Adapter() != key.Adapter() {
		c.errorf(d.Path, at("transport.previous_message_key_file"), "give the previous key of the same adapter",
			"transport.previous_message_key_file is adapter %s's key, and transport.message_key_file adapter %s's", previous.Adapter(), key.Adapter())
	}
	if until, err := t.PreviousKeyUntil(); err == nil && !until.IsZero() && !until.After(c.now) {
		c.warnf(d.Path, at("transport.previous_message_key_until"), "remove transport.previous_message_key_file and transport.previous_message_key_until",
			"the previous key was accepted until %s only", astana(until))
	}
	return key, previous
}

// adapterKeyAgainstBroker reports an adapter's key that is not derived from the broker's master
// key: every service message would be refused as made with a key it does not hold.
func (c *checker) adapterKeyAgainstBroker(a *adapterInfo, m *masterKeys) {
	if a.key.IsZero() || m.current.IsZero() {
		return
	}
	want, err := m.current.Derive(a.key.Adapter())
	if err != nil || want.ID() == a.key.ID() {
		return
	}
	if !m.previous.IsZero() {
		if old, err := m.previous.Derive(a.key.Adapter()); err == nil && old.ID() == a.key.ID() {
			if a.previous.IsZero() || a.previous.ID() != want.ID() {
				c.warnf(a.doc.Path, lineOf(a.doc.root, "transport.message_key_file", false),
					"derive the new key (siobroker transport-key derive), make it transport.message_key_file and this one the previous",
					"transport.message_key_file is adapter %s's key of the broker's previous master key: once the previous key is dropped, "+
						"every service message is refused", a.key.Adapter())
			}
			return
		}
	}
	c.errorf(a.doc.Path, lineOf(a.doc.root, "transport.message_key_file", false),
		"derive it again from the broker's master key: siobroker transport-key derive --adapter "+a.key.Adapter(),
		"transport.message_key_file holds key %s, but the broker's master key (%s) gives adapter %s the key %s: every service message would be refused",
		a.key.ID(), m.where, a.key.Adapter(), want.ID())
}

// keyFileProblem reports a key file that cannot be used, with how to make it right.
func (c *checker) keyFileProblem(file string, line int, key string, err error, make string) {
	text := strings.TrimPrefix(err.Error(), "msgauth: ")
	var fix string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fix = "correct the path (relative to the working directory)"
		if make != "" {
			fix += ", or write the key: " + make
		}
	case strings.Contains(text, "chmod 600"):
		fix = "make the file readable by its owner only: chmod 600"
	default:
		fix = "give a key file written by siobroker transport-key"
	}
	c.errorf(file, line, fix, "%s: %s", key, text)
}
