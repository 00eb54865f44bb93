// Package private keeps what the broker writes under its data directory to its own user: every
// directory 0700 and every file 0600, whatever the umask the process was started with. The
// journal holds raw requests and replies with citizens' data, and the development PKI holds
// keys; nobody else on the machine has a reason to read either.
//
// Three layers, because no one of them is enough alone: each writer creates its files and
// directories with these modes (MkdirAll, and 0600 in its own open calls); Tighten walks a tree
// at start and tightens what an earlier version left more open; and RestrictUmask makes the
// process umask 0077, so that files made by code that does not pass a mode of its own (SQLite's
// -wal and -shm, whatever comes later) are private too.
package private

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The modes of everything under the data directory.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// othersBits are the permissions of the group and of others.
const othersBits fs.FileMode = 0o077

// MkdirAll creates dir and its missing parents with DirMode, and sets DirMode on dir itself if it
// existed with another: os.MkdirAll leaves an existing directory as it is.
func MkdirAll(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	if err := chmodIfLoose(dir, DirMode); err != nil {
		return fmt.Errorf("make directory %s private: %w", dir, err)
	}
	return nil
}

// File sets FileMode on path if it exists with another mode; a missing file is no error. It is
// for files a library creates itself (SQLite's database, -wal and -shm).
func File(path string) error {
	err := chmodIfLoose(path, FileMode)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("make %s private: %w", path, err)
	}
	return nil
}

// chmodIfLoose sets mode on path unless it has it already, so that a file owned by another user
// but already private is not an error.
func chmodIfLoose(path string, mode fs.FileMode) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() == mode {
		return nil
	}
	return os.Chmod(path, mode)
}

// Tighten walks root, root included, and takes every permission of the group and of others off
// every directory and regular file that has one: what the broker wrote 0644 in 0755 directories
// becomes 0600 in 0700 ones. The owner's bits are left as they are, so that a data directory
// pointed by mistake at a tree with programs in it does not lose their execute bits. Symbolic
// links are neither followed nor changed: a link may point out of the tree, at something that is
// not the broker's. It returns the paths it changed, for the log, and every path it could not
// change; a missing root is no error.
func Tighten(root string) (changed []string, err error) {
	var errs []error
	walkErr := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			errs = append(errs, err)
			return nil
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil // symbolic links, sockets, devices
		}
		fi, err := d.Info()
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		perm := fi.Mode().Perm()
		if perm&othersBits == 0 {
			return nil
		}
		if err := os.Chmod(path, perm&^othersBits); err != nil {
			errs = append(errs, err)
			return nil
		}
		changed = append(changed, path)
		return nil
	})
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	if err := errors.Join(errs...); err != nil {
		return changed, fmt.Errorf("make %s private: %w", root, err)
	}
	return changed, nil
}

// Audit walks root, root included, and returns how many regular files it holds and every
// directory whose mode is not DirMode and every regular file whose mode is not FileMode, each
// with its mode: what an operator (or a test) checks the data directory against.
func Audit(root string) (files int, loose []string, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := FileMode
		if d.IsDir() {
			want = DirMode
		} else {
			files++
		}
		if got := fi.Mode().Perm(); got != want {
			loose = append(loose, fmt.Sprintf("%s: mode %o, want %o", path, got, want))
		}
		return nil
	})
	if err != nil {
		return files, loose, fmt.Errorf("audit the modes under %s: %w", root, err)
	}
	return files, loose, nil
}
