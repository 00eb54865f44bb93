package cli

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// TestParse: flags and arguments come in any order, "--" ends the flags, -h prints the usage on
// stdout, and a mistake is one line and a pointer to -h on stderr.
func TestParse(t *testing.T) {
	parse := func(args ...string) (pos []string, x string, code int, ok bool, out, errOut string) {
		var o, e bytes.Buffer
		f := newFlags("test sub", "usage:\n  siobroker test sub [-x V] ARG...\nExit status: 0.\n", &o, &e)
		xf := f.String("x", "", "a flag")
		pos, code, ok = f.parse(args)
		return pos, *xf, code, ok, o.String(), e.String()
	}
	pos, x, _, ok, _, _ := parse("a", "-x", "1", "b")
	if !ok || x != "1" || !slices.Equal(pos, []string{"a", "b"}) {
		t.Errorf("interspersed: %v %q %v", pos, x, ok)
	}
	pos, x, _, ok, _, _ = parse("-x", "1", "--", "-x", "2")
	if !ok || x != "1" || !slices.Equal(pos, []string{"-x", "2"}) {
		t.Errorf("after --: %v %q %v", pos, x, ok)
	}
	_, _, code, ok, out, errOut := parse("a", "-h")
	if ok || code != 0 || errOut != "" || !strings.HasPrefix(out, "usage:") || !strings.Contains(out, "Flags of test sub:\n  -x string") {
		t.Errorf("-h: %d %v\n%s\n%s", code, ok, out, errOut)
	}
	_, _, code, ok, out, errOut = parse("-y")
	if ok || code != 2 || out != "" || errOut != "siobroker test sub: flag provided but not defined: -y\nRun 'siobroker test sub -h' for the usage.\n" {
		t.Errorf("a mistake: %d %v\n%q\n%q", code, ok, out, errOut)
	}
}
