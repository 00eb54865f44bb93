package cli

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeListsEveryCommand holds the README's table of commands to the command table: every
// command and subcommand siobroker has is named in a row of it.
func TestReadmeListsEveryCommand(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Commands\n")
	if !ok {
		t.Fatal("README.md has no Commands section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var rows []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| `siobroker ") {
			rows = append(rows, line)
		}
	}
	for _, c := range commands {
		var row string
		for _, r := range rows {
			if strings.HasPrefix(r, "| `siobroker "+c.name+" ") || strings.HasPrefix(r, "| `siobroker "+c.name+"`") {
				row = r
				break
			}
		}
		if row == "" {
			t.Errorf("the README's Commands table has no row for siobroker %s", c.name)
			continue
		}
		for _, sub := range c.subs {
			found := false
			for _, r := range rows {
				head, _, _ := strings.Cut(r, "` |")
				if strings.HasPrefix(head, "| `siobroker "+c.name+" ") && strings.Contains(head, sub.name) {
					found = true
				}
			}
			if !found {
				t.Errorf("the README's Commands table does not name siobroker %s %s", c.name, sub.name)
			}
		}
	}
}
