// Package repofiles hands tests every file of the repository of one kind: the XML envelopes the
// tests of several packages hold, which a reader that must agree with another is checked on.
package repofiles

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each calls f with the path and the content of every file under root (the repository's root,
// as the test finds it from its package's directory) whose name ends with suffix. It fails tb
// when a file cannot be read, or when fewer than least were found: a walk that finds nothing
// (a wrong root) must not pass for a check.
func Each(tb testing.TB, root, suffix string, least int, f func(path string, raw []byte)) {
	tb.Helper()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, suffix) {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		f(path, raw)
		return nil
	})
	if err != nil || n < least {
		tb.Fatalf("read %d %s files under %s, want at least %d: %v", n, suffix, root, least, err)
	}
}
