//go:build unix

package private

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// withUmask runs the test under umask, the usual 0022 of a login shell, and restores the old one.
func withUmask(t *testing.T, umask int) {
	t.Helper()
	old := syscall.Umask(umask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestMkdirAllTightensAnExistingDirectory(t *testing.T) {
	withUmask(t, 0o022)
	root := t.TempDir()
	loose := filepath.Join(root, "loose")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(root, "a", "b")
	for _, dir := range []string{loose, fresh} {
		if err := MkdirAll(dir); err != nil {
			t.Fatal(err)
		}
		if m := mode(t, dir); m != DirMode {
			t.Errorf("%s: mode %o, want %o", dir, m, DirMode)
		}
	}
	if m := mode(t, filepath.Join(root, "a")); m != DirMode {
		t.Errorf("a parent MkdirAll created: mode %o, want %o", m, DirMode)
	}
}

func TestFile(t *testing.T) {
	withUmask(t, 0o022)
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := File(path); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != FileMode {
		t.Errorf("mode %o, want %o", m, FileMode)
	}
	if err := File(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing file: %v", err)
	}
}

// TestTighten: what an earlier version left 0644 and 0755 is made private; a symbolic link is
// neither followed nor changed, nor what it points at outside the tree.
func TestTighten(t *testing.T) {
	withUmask(t, 0o022)
	root := filepath.Join(t.TempDir(), "data")
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "archive")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	db, seg := filepath.Join(root, "broker.db"), filepath.Join(sub, "journal-000001.jsonl.gz")
	for _, f := range []string{db, seg} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A program's owner bits are kept: only the group's and others' are taken off.
	program := filepath.Join(root, "program")
	if err := os.WriteFile(program, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	changed, err := Tighten(root)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(changed)
	if want := []string{root, sub, seg, db, program}; !slices.Equal(changed, slices.Sorted(slices.Values(want))) {
		t.Errorf("changed %v, want %v", changed, want)
	}
	for _, d := range []string{root, sub} {
		if m := mode(t, d); m != DirMode {
			t.Errorf("%s: mode %o, want %o", d, m, DirMode)
		}
	}
	for _, f := range []string{db, seg} {
		if m := mode(t, f); m != FileMode {
			t.Errorf("%s: mode %o, want %o", f, m, FileMode)
		}
	}
	if m := mode(t, program); m != 0o700 {
		t.Errorf("%s: mode %o, want 0700", program, m)
	}
	if m := mode(t, outside); m != 0o644 {
		t.Errorf("the file a link points at outside the tree: mode %o, want it left 0644", m)
	}
	if changed, err := Tighten(root); err != nil || len(changed) != 0 {
		t.Errorf("a second Tighten changed %v, %v; want nothing", changed, err)
	}
	if _, err := Tighten(filepath.Join(root, "missing")); err != nil {
		t.Errorf("a missing root: %v", err)
	}
}

// TestAudit: a loose file and a loose directory are reported with their modes, private ones
// are not, and regular files are counted.
func TestAudit(t *testing.T) {
	root := t.TempDir()
	if err := os.Chmod(root, DirMode); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "archive")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]fs.FileMode{"broker.db": 0o600, "archive/journal-000001.jsonl.gz": 0o644} {
		p := filepath.Join(root, name)
		if err := os.WriteFile(p, nil, m); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	files, loose, err := Audit(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{sub + ": mode 755, want 700", filepath.Join(sub, "journal-000001.jsonl.gz") + ": mode 644, want 600"}
	if files != 2 || !slices.Equal(loose, want) {
		t.Fatalf("Audit = %d files, %q; want 2, %q", files, loose, want)
	}
}
