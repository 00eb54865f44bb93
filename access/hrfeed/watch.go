package hrfeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
)

// The folder of an HR feed: the HR system writes FEED.json, then FEED.json.hmac, one line
// "SYSTEM sha256=HEX" (the MAC of FEED.json's bytes under the system's key). The sidecar written
// last is what says the feed is complete, so a feed being written is never read half. Processed
// feeds are moved to done/ and, refused or with a record that failed, to failed/, each beside an
// .outcome.json of what became of it; every feed is journaled.
const (
	DoneDir   = "done"
	FailedDir = "failed"
	MACSuffix = ".hmac"
)

// DefaultPoll is how often the folder is read. §15's notice is to block a dismissed user within a
// second of the feed's arrival; a read of one directory five times a second costs nothing, works
// on the network shares HR exports are often dropped on (where inotify sees nothing), and needs no
// dependency (fsnotify is not in go.mod).
const DefaultPoll = 200 * time.Millisecond

// Watcher processes the feeds dropped in a folder.
type Watcher struct {
	dir  string
	p    *Processor
	poll time.Duration
}

// NewWatcher returns a watcher of dir, read every poll (0: DefaultPoll). dir must exist and be
// writable by nobody but its owner: anyone who may write it may drop a feed, and the MAC is then
// the only defence left.
func NewWatcher(dir string, p *Processor, poll time.Duration) (*Watcher, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("hrfeed: the folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("hrfeed: %s is not a folder", dir)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return nil, fmt.Errorf("hrfeed: %s is writable by everyone (%s): make it the HR system's and the broker's alone", dir, fi.Mode().Perm())
	}
	for _, sub := range []string{DoneDir, FailedDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("hrfeed: %w", err)
		}
	}
	if poll <= 0 {
		poll = DefaultPoll
	}
	return &Watcher{dir: dir, p: p, poll: poll}, nil
}

// Run reads the folder until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for {
		if err := w.Scan(ctx); err != nil {
			w.p.logger.ErrorContext(ctx, "HR feed folder", "dir", w.dir, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// macSettle is how long an empty MAC file is taken as still being written before its feed is
// processed (and refused for it).
const macSettle = time.Minute

// Scan processes every complete feed in the folder now, in name order.
func (w *Watcher) Scan(ctx context.Context) error {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("hrfeed: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, MACSuffix) || strings.HasPrefix(name, ".") {
			continue
		}
		mac, err := os.Stat(filepath.Join(w.dir, name+MACSuffix))
		if err != nil || (mac.Size() == 0 && w.p.clock.Now().Sub(mac.ModTime()) < macSettle) {
			// Not complete yet: no MAC, or one its writer has created but not yet written (a
			// writer that does not rename it into place shows it empty for a moment).
			continue
		}
		if err := w.processFile(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// processFile processes the feed name and moves it, its MAC and its outcome aside.
func (w *Watcher) processFile(ctx context.Context, name string) error {
	path := filepath.Join(w.dir, name)
	system, out, perr := w.read(ctx, path)
	dest := DoneDir
	if perr != nil {
		dest = FailedDir
	}
	for _, o := range out {
		if o.Status == "failed" {
			dest = FailedDir
		}
	}
	stamp := w.p.clock.Now().In(siobroker.Astana).Format("20060102T150405.000000000")
	target := filepath.Join(w.dir, dest, stamp+"-"+name)
	report := struct {
		System   string    `json:"system,omitempty"`
		Error    string    `json:"error,omitempty"`
		Outcomes []Outcome `json:"outcomes,omitempty"`
	}{System: system, Outcomes: out}
	if perr != nil {
		report.Error = perr.Error()
	}
	data, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(target+".outcome.json", data, 0o640); err != nil {
		return fmt.Errorf("hrfeed: %w", err)
	}
	if err := os.Rename(path+MACSuffix, target+MACSuffix); err != nil {
		return fmt.Errorf("hrfeed: move %s aside: %w", name+MACSuffix, err)
	}
	if err := os.Rename(path, target); err != nil {
		return fmt.Errorf("hrfeed: move %s aside: %w", name, err)
	}
	return nil
}

// read authenticates and processes the feed at path. Files that others than their owner may
// write, or that are not regular files, are refused unread.
func (w *Watcher) read(ctx context.Context, path string) (system string, out []Outcome, err error) {
	channel := "folder:" + filepath.Base(path)
	for _, p := range []string{path, path + MACSuffix} {
		fi, err := os.Lstat(p)
		if err != nil {
			return "", nil, fmt.Errorf("hrfeed: %w", err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0 {
			err := fmt.Errorf("hrfeed: %s is not a regular file writable by its owner alone (%s)", filepath.Base(p), fi.Mode())
			w.p.record(ctx, "", channel, nil, nil, err)
			return "", nil, err
		}
	}
	macLine, err := readLimited(path+MACSuffix, 1024)
	if err != nil {
		return "", nil, err
	}
	system, mac, ok := strings.Cut(strings.TrimSpace(string(macLine)), " ")
	if !ok {
		err := fmt.Errorf("hrfeed: %s: want one line \"SYSTEM sha256=HEX\"", filepath.Base(path)+MACSuffix)
		w.p.record(ctx, "", channel, nil, nil, err)
		return "", nil, err
	}
	body, err := readLimited(path, MaxFeedBytes)
	if err != nil {
		return system, nil, err
	}
	out, err = w.p.Process(ctx, system, body, mac, channel)
	return system, out, err
}

// readLimited reads at most limit bytes of path, and refuses a longer file.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hrfeed: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("hrfeed: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("hrfeed: %s is over %d bytes", filepath.Base(path), limit)
	}
	return b, nil
}
