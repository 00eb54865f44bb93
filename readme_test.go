package siobroker

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// repoPath matches what reads as a path into the repository: a top-level folder of the repo,
// then a file or folder name. Runtime paths (data/, bin/) are not the repository's.
var repoPath = regexp.MustCompile("(?:^|[\\s`\"'(=/])((?:configs|deploy|testdata|docs|scripts|schemas|interop|cmd|internal|adapters|routing|signing|journal|operator|access|broker|httpapi|client|config|sqlite|postgres)/[A-Za-z0-9_./-]*[A-Za-z0-9_])")

// TestReadmeNamesOnlyFilesInTheRepo: every path into the repository the README names exists, so
// that a reader who follows it on a clean clone finds it.
func TestReadmeNamesOnlyFilesInTheRepo(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, line := range strings.Split(string(readme), "\n") {
		for _, m := range repoPath.FindAllStringSubmatchIndex(line, -1) {
			p := line[m[2]:m[3]]
			// Placeholders and patterns name a family of files, not one.
			if rest := line[m[3]:]; strings.HasPrefix(rest, "*") || strings.HasPrefix(rest, "<") || strings.Contains(p, "NNN") {
				continue
			}
			// A path of a URL (https://adilet.zan.kz/rus/docs/...) is another site's.
			if start := strings.LastIndexAny(line[:m[2]], " \t(`\"'") + 1; strings.Contains(line[start:m[2]], "://") {
				continue
			}
			checked++
			if _, err := os.Stat(p); err != nil {
				t.Errorf("README.md names %s, which is not in the repository", p)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d paths; the pattern has lost them", checked)
	}
}
