package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/sqlite"
)

// operatorFlags are the flags every subcommand of an operator's command (users, incidents)
// shares: the data directory, and for changes, who makes them.
type operatorFlags struct {
	command string // "users", "incidents"
	fs      *flag.FlagSet
	data    *string
	by      *string // nil unless the subcommand changes something
}

func newOperatorFlags(command, name, usage string, stderr io.Writer, mutating bool, byHelp string) *operatorFlags {
	fs := flag.NewFlagSet(command+" "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintf(stderr, "\nflags of %s %s:\n", command, name)
		fs.PrintDefaults()
	}
	f := &operatorFlags{command: command, fs: fs, data: fs.String("data", "./data", "the broker's data directory")}
	if mutating {
		by := os.Getenv("USER")
		if by == "" {
			by = "operator"
		}
		f.by = fs.String("by", by, byHelp)
	}
	return f
}

// parse parses args, allowing flags after positional arguments, and returns the positional ones.
func (f *operatorFlags) parse(args []string) ([]string, bool) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, false
		}
		args = f.fs.Args()
		if len(args) == 0 {
			return pos, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// set reports which flags were given on the command line.
func (f *operatorFlags) set() map[string]bool {
	m := make(map[string]bool)
	f.fs.Visit(func(fl *flag.Flag) { m[fl.Name] = true })
	return m
}

// usageError reports a usage mistake and returns exit status 2.
func (f *operatorFlags) usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s\n", f.fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(stderr, "Run 'siobroker %s -h' for the usage.\n", f.command)
	return 2
}

// journal opens the journal that the broker's configuration file names, for recording an
// operator's action: the store's own (db's) for the sqlite driver, or PostgreSQL. A file not
// given with --config may be missing (the defaults apply). The returned func closes it.
func (f *operatorFlags) journal(ctx context.Context, configFile string, db *sqlite.DB) (siobroker.Journal, func(), error) {
	cfg, err := config.Load(configFile, f.set()["config"])
	if err != nil {
		return nil, nil, err
	}
	return app.OpenJournal(ctx, cfg, db)
}
