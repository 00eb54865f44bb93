package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode/utf8"
)

// runMainArgs runs siobroker with args and returns its exit code, stdout and stderr.
func runMainArgs(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// helpCase is one way of asking for a written usage, and what it must mention.
type helpCase struct {
	args     []string
	mentions string // the usage names the command or subcommand asked about
}

// helpCases are every way of asking every command and subcommand of the table for its usage.
func helpCases() []helpCase {
	var cases []helpCase
	for _, c := range commands {
		for _, ask := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {c.name, "-help"}, {c.name, "help"}, {"help", c.name}} {
			cases = append(cases, helpCase{ask, "siobroker " + c.name})
		}
		for _, s := range c.subs {
			path := c.name + " " + s.name
			for _, ask := range [][]string{{c.name, s.name, "-h"}, {c.name, s.name, "--help"}, {"help", c.name, s.name}} {
				cases = append(cases, helpCase{ask, "siobroker " + path})
			}
		}
	}
	return cases
}

// TestHelpOnStdout: -h, -help, --help and help print a written usage of every command and
// subcommand on stdout and exit 0, never the flag package's raw "Usage of X:" dump, and every
// usage states its exit codes. Nothing is done: no store, no network.
func TestHelpOnStdout(t *testing.T) {
	for _, tc := range helpCases() {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runMainArgs(tc.args...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing on stderr", code, errOut)
			}
			for _, want := range []string{"usage:", tc.mentions, "Exit status: 0"} {
				if !strings.Contains(out, want) {
					t.Errorf("the usage lacks %q:\n%s", want, out)
				}
			}
			if !strings.HasPrefix(out, "usage:") || strings.Contains(out, "Usage of") {
				t.Errorf("not a written usage:\n%s", out)
			}
		})
	}
}

// TestCommandList: siobroker help lists every command and subcommand of the table, in lines
// that fit 100 columns, on stdout with exit 0; siobroker alone prints it on stderr with exit 2.
func TestCommandList(t *testing.T) {
	for _, ask := range []string{"help", "-h", "--help"} {
		code, out, errOut := runMainArgs(ask)
		if code != 0 || errOut != "" {
			t.Fatalf("%s: exit %d, stderr %q", ask, code, errOut)
		}
		for i, line := range strings.Split(out, "\n") {
			if n := utf8.RuneCountInString(line); n > listWidth {
				t.Errorf("%s: line %d has %d characters: %q", ask, i+1, n, line)
			}
		}
		for _, c := range commands {
			names := []string{c.name}
			if c.run == nil {
				names = nil // only its subcommands are commands
			}
			for _, s := range c.subs {
				names = append(names, c.name+" "+s.name)
			}
			for _, name := range names {
				if !strings.Contains(out, "\n  "+name+" ") {
					t.Errorf("%s does not list %q:\n%s", ask, name, out)
				}
			}
		}
	}
	for _, want := range []string{"journal check", "users applications", "async stop", "users add-cert"} {
		if _, out, _ := runMainArgs("help"); !strings.Contains(out, "  "+want+" ") {
			t.Errorf("help does not list %q", want)
		}
	}
	if code, out, errOut := runMainArgs(); code != 2 || out != "" || !strings.Contains(errOut, "usage: siobroker COMMAND") {
		t.Errorf("siobroker alone: exit %d, stdout %q, stderr %q; want the list on stderr and exit 2", code, out, errOut)
	}
}

// TestUsageErrors: a mistake on the command line of every command and subcommand prints a
// one-line reason and a pointer to -h on stderr, nothing on stdout, and exits 2, before
// anything is done.
func TestUsageErrors(t *testing.T) {
	cases := [][]string{{"frobnicate"}, {"help", "frobnicate"}}
	for _, c := range commands {
		if c.run != nil {
			cases = append(cases, []string{c.name, "--no-such-flag"}, []string{c.name, "stray-argument"})
		} else {
			cases = append(cases, []string{c.name}, []string{c.name, "no-such-subcommand"})
		}
		for _, s := range c.subs {
			cases = append(cases, []string{c.name, s.name, "--no-such-flag"})
		}
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runMainArgs(args...)
			if code != 2 || out != "" {
				t.Fatalf("exit %d, stdout %q; want 2 and nothing on stdout\nstderr: %s", code, out, errOut)
			}
			if !strings.Contains(errOut, "-h") && !strings.HasPrefix(errOut, "usage:") {
				t.Errorf("stderr neither points to -h nor gives the usage:\n%s", errOut)
			}
			if strings.Contains(errOut, "Usage of") {
				t.Errorf("the flag package's raw usage:\n%s", errOut)
			}
		})
	}
	// The one-line reason names the command, in the commands' one voice.
	if _, _, errOut := runMainArgs("users", "list", "--no-such-flag"); !strings.HasPrefix(errOut,
		"siobroker users list: flag provided but not defined: -no-such-flag\nRun 'siobroker users list -h' for the usage.\n") {
		t.Errorf("users list --no-such-flag:\n%s", errOut)
	}
}
