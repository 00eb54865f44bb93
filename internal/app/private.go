package app

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/private"
)

// privateDataDir makes the data directory, and the archive directory if it is elsewhere, private
// to the broker's user before anything is opened: directories 0700, files 0600. Each writer
// creates its own files so; this tightens what an earlier version left 0644 in a 0755 directory
// (the journal with its raw requests and replies, the development PKI's keys). A file the broker
// cannot tighten (another user's) fails the start: the data would be readable by others.
func privateDataDir(cfg config.Broker, logger *slog.Logger) error {
	if err := private.MkdirAll(cfg.DataDir); err != nil {
		return err
	}
	roots := []string{cfg.DataDir}
	if dir := archiveDirOf(cfg); !inside(dir, cfg.DataDir) {
		roots = append(roots, dir)
	}
	for _, root := range roots {
		changed, err := private.Tighten(root)
		if len(changed) > 0 {
			logger.Warn("made files and directories private to the broker's user (0600 and 0700); they were readable by others",
				"dir", root, "changed", len(changed), "first", changed[0])
		}
		if err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	}
	return nil
}

// inside reports whether path is dir or lies under it.
func inside(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && filepath.IsLocal(rel)
}
