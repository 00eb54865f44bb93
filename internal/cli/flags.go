package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit codes every command shares. A command may give 1 and 3 narrower meanings (send: 1 a SOAP
// fault, 3 no valid reply); its written usage says which.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// cmdFlags is the flag set of one command or subcommand, with the written usage that -h prints.
// Every command speaks through it, so that they all behave alike: -h, -help and --help print the
// usage and the flags on stdout and exit 0; a flag mistake prints the flag package's one line
// and a pointer to -h on stderr and exits 2.
type cmdFlags struct {
	*flag.FlagSet
	path   string // the words after siobroker: "users import"
	usage  string // the command's written usage, which ends with its exit codes
	stdout io.Writer
	stderr io.Writer
}

func newFlags(path, usage string, stdout, stderr io.Writer) *cmdFlags {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	// The flag package's own output is silenced: parse prints its error in the commands' voice,
	// and decides where the usage goes.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &cmdFlags{FlagSet: fs, path: path, usage: usage, stdout: stdout, stderr: stderr}
}

// parse parses args, flags and positional arguments in any order, and returns the positional
// ones. When ok is false the command returns code: 0 after -h, 2 after a mistake.
func (f *cmdFlags) parse(args []string) (pos []string, code int, ok bool) {
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage(f.stdout)
				return nil, exitOK, false
			}
			return nil, f.usageError("%v", err), false
		}
		rest := f.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), exitOK, true // "--" ends the flags
		}
		if len(rest) == 0 {
			return pos, exitOK, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseNoArgs is parse for a command that takes no positional argument.
func (f *cmdFlags) parseNoArgs(args []string) (code int, ok bool) {
	pos, code, ok := f.parse(args)
	if ok && len(pos) > 0 {
		return f.usageError("unexpected argument %q", pos[0]), false
	}
	return code, ok
}

// printUsage writes the written usage, then the flags with their defaults.
func (f *cmdFlags) printUsage(w io.Writer) {
	fmt.Fprint(w, f.usage)
	n := 0
	f.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nFlags of %s:\n", f.path)
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// hint points a user who made a mistake to the usage, and returns the usage error's code.
func (f *cmdFlags) hint() int {
	fmt.Fprintf(f.stderr, "Run 'siobroker %s -h' for the usage.\n", f.path)
	return exitUsage
}

// usageError reports a mistake on the command line and returns exit status 2.
func (f *cmdFlags) usageError(format string, args ...any) int {
	fmt.Fprintf(f.stderr, "siobroker %s: %s\n", f.path, fmt.Sprintf(format, args...))
	return f.hint()
}

// fail reports a failure that is not the command line's and returns code.
func (f *cmdFlags) fail(code int, format string, args ...any) int {
	fmt.Fprintf(f.stderr, "siobroker %s: %s\n", f.path, fmt.Sprintf(format, args...))
	return code
}

// set reports which flags were given on the command line.
func (f *cmdFlags) set() map[string]bool {
	m := make(map[string]bool)
	f.Visit(func(fl *flag.Flag) { m[fl.Name] = true })
	return m
}

// byFlag adds --by, who acts, for the records an operator's action leaves: $USER by default.
func (f *cmdFlags) byFlag(help string) *string {
	by := os.Getenv("USER")
	if by == "" {
		by = "operator"
	}
	return f.String("by", by, help)
}
