package cli

import (
	"context"
	"io"

	"github.com/sio-pso/siobroker/sqlite"
)

// operatorFlags are the flags every subcommand of an operator's command (users, incidents,
// maintenance, async) shares: the broker's configuration and data directory, and for changes,
// who makes them.
type operatorFlags struct {
	*cmdFlags
	broker *brokerFlags
	by     *string // nil unless the subcommand changes something
}

// newOperatorFlags makes the flags of the subcommand path ("users import"); byHelp, when not
// empty, adds --by for a subcommand that changes something.
func newOperatorFlags(path, usage string, stdout, stderr io.Writer, byHelp string) *operatorFlags {
	f := &operatorFlags{cmdFlags: newFlags(path, usage, stdout, stderr)}
	f.broker = addBrokerFlags(f.cmdFlags, true)
	if byHelp != "" {
		f.by = f.byFlag(byHelp)
	}
	return f
}

// env loads the broker's configuration; when ok is false the command returns code.
func (f *operatorFlags) env() (e *brokerEnv, code int, ok bool) { return f.broker.loadOrFail() }

// openStore loads the broker's configuration and opens its store; when db is nil the command
// returns code: 2 for a configuration that does not load, 1 for a store that does not open.
func (f *operatorFlags) openStore(ctx context.Context) (db *sqlite.DB, e *brokerEnv, code int) {
	e, code, ok := f.env()
	if !ok {
		return nil, nil, code
	}
	db, err := e.store(ctx)
	if err != nil {
		return nil, nil, f.fail(exitFailed, "%v", err)
	}
	return db, e, exitOK
}
