package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/sio-pso/siobroker/routing/msgauth"
)

const transportKeyUsage = `usage:
  siobroker transport-key new --out FILE
  siobroker transport-key derive --adapter NAME [--config FILE] [--data DIR] [--master FILE] [--out FILE]

The keys that authenticate the messages between the broker and its adapters (routing/msgauth).
new writes a fresh master key to FILE, readable by its owner only (0600): the broker's
amqp.message_key_file. It never replaces a file.
derive prints the key of adapter NAME, derived from the broker's master key, or writes it to
--out (0600; never replacing a file): give it to the adapter process as its
transport.message_key_file. NAME is the adapter the routing table routes the adapter's services
to (its config's name). The master key is --master, or else the broker's: amqp.message_key_file
of its configuration (--config, read as serve reads it), or DIR/transport.key, which a broker
without one makes on its first start. The key's id is printed on stderr, as every message names
the id of the key it was made with.
Exit status: 0 written, 1 failed (the master key cannot be read, the file exists), 2 usage error
or a configuration that does not load.
`

// transportKeyNew writes a new master key.
func transportKeyNew(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("transport-key new", transportKeyUsage, stdout, stderr)
	out := f.String("out", "", "the file to write (required); it must not exist")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *out == "" {
		return f.usageError("--out is required")
	}
	m, err := msgauth.NewMaster()
	if err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	if err := msgauth.WriteFile(*out, m.PEM()); err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	fmt.Fprintf(stdout, "wrote the master key %s to %s (0600); name it in the broker's amqp.message_key_file\n", m.ID(), *out)
	return exitOK
}

// transportKeyDerive prints or writes an adapter's key.
func transportKeyDerive(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("transport-key derive", transportKeyUsage, stdout, stderr)
	b := addBrokerFlags(f, true)
	adapter := f.String("adapter", "", "the adapter's name, as the routing table names it (required)")
	masterFile := f.String("master", "", "the master key file (default: the broker configuration's)")
	out := f.String("out", "", "write the key to this file (0600) instead of printing it")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *adapter == "" {
		return f.usageError("--adapter is required")
	}
	m, from, err := transportMaster(b, *masterFile)
	if err != nil {
		if errors.Is(err, errConfig) {
			return f.fail(exitUsage, "%v", err)
		}
		return f.fail(exitFailed, "%v", err)
	}
	return deriveTo(f, m, *adapter, *out, from, stdout, stderr)
}

// errConfig marks a configuration that does not load.
var errConfig = errors.New("the configuration does not load")

// transportMaster reads the master key: file, or the broker configuration's; from says where it
// was looked for, for the messages.
func transportMaster(b *brokerFlags, file string) (m msgauth.Master, from string, err error) {
	if file != "" {
		m, err = msgauth.ReadMaster(file)
		return m, file, err
	}
	e, err := b.load()
	if err != nil {
		return m, "", fmt.Errorf("%w: %w", errConfig, err)
	}
	path := e.cfg.MessageKeyPath()
	if e.cfg.AMQP.MessageKeyFile == "" {
		from = path + " (amqp.message_key_file is not set: the " + e.dataDir() + ")"
	} else {
		from = path + " (" + e.describe("amqp.message_key_file", e.cfg.AMQP.MessageKeyFile) + ")"
	}
	m, err = msgauth.ReadMaster(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && e.cfg.AMQP.MessageKeyFile == "":
		return m, from, fmt.Errorf("no master key at %s: a broker makes it on its first start, or give one with --master", from)
	case err != nil:
		return m, from, fmt.Errorf("%w; the master key was looked for at %s", err, from)
	}
	return m, from, nil
}

// deriveTo derives adapter's key from m, the master key read from from, and prints it on stdout or
// writes it to out.
func deriveTo(f *cmdFlags, m msgauth.Master, adapter, out, from string, stdout, stderr io.Writer) int {
	k, err := m.Derive(adapter)
	if err != nil {
		return f.usageError("--adapter: %v", err)
	}
	if out == "" {
		_, _ = stdout.Write(k.PEM())
	} else if err := msgauth.WriteFile(out, k.PEM()); err != nil {
		return f.fail(exitFailed, "%v", err)
	}
	fmt.Fprintf(stderr, "the key %s of adapter %s, from the master key %s of %s\n", k.ID(), adapter, m.ID(), from)
	return exitOK
}
