package maintenance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
	"go.yaml.in/yaml/v3"
)

// File is the maintenance file (configs/maintenance.yaml): windows planned in the configuration,
// reloaded with it. Windows announced by operators live in the store instead.
type File struct {
	Windows []FileWindow `yaml:"windows"`
}

// FileWindow is one window of the file. Times are RFC 3339 with an explicit offset.
type FileWindow struct {
	Services []int  `yaml:"services"` // empty: every service
	Start    string `yaml:"start"`
	End      string `yaml:"end"`
	Reason   string `yaml:"reason"`
	By       string `yaml:"announced_by"`
	// AnnouncedAt is when the window was published (§42), the time its notice is counted from.
	// It is required: counted from the file's loading instead, a window would be refused at the
	// first reload after it began, and the broker would not start during its own maintenance.
	AnnouncedAt string `yaml:"announced_at"`
	// Emergency marks a window with less than the minimum notice, or announced after it began;
	// the broker records it in the journal of emergencies when it loads the file.
	Emergency bool `yaml:"emergency"`
}

// FileRules are what the windows of a file are checked against.
type FileRules struct {
	// MinNotice is the least time between a window's announced_at and its start
	// (maintenance_min_notice); zero asks for none.
	MinNotice time.Duration
	// Now is the time of the check: a window may not be announced later than now.
	Now time.Time
}

// LoadFile reads and checks a maintenance file. Every error names the file and the line of the
// window it is about. A missing file is no windows.
func LoadFile(path string, rules FileRules) ([]siobroker.MaintenanceWindow, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("maintenance file: %w", err)
	}
	return ParseFile(path, b, rules)
}

// ParseFile parses the maintenance file content b and checks every window against rules; path
// names it in errors.
func ParseFile(path string, b []byte, rules FileRules) ([]siobroker.MaintenanceWindow, error) {
	var f File
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w (keys of a window: services, start, end, reason, announced_by, announced_at, emergency)", path, err)
	}
	lines := windowLines(&root)
	var errs []error
	out := make([]siobroker.MaintenanceWindow, 0, len(f.Windows))
	for i, fw := range f.Windows {
		line := 0
		if i < len(lines) {
			line = lines[i]
		}
		w := siobroker.MaintenanceWindow{Services: fw.Services, Reason: strings.TrimSpace(fw.Reason), AnnouncedBy: fw.By,
			Source: siobroker.WindowFromFile, Emergency: fw.Emergency}
		var perr []error
		var err error
		if w.Start, err = parseTime(fw.Start); err != nil {
			perr = append(perr, fmt.Errorf("start: %w", err))
		}
		if w.End, err = parseTime(fw.End); err != nil {
			perr = append(perr, fmt.Errorf("end: %w", err))
		}
		switch {
		case fw.AnnouncedAt == "":
			perr = append(perr, errors.New("announced_at is required: the time the window was published (§42), from which its notice is counted; write it in RFC 3339 with an offset, e.g. 2026-11-28T10:00:00+05:00"))
		default:
			if w.AnnouncedAt, err = parseTime(fw.AnnouncedAt); err != nil {
				perr = append(perr, fmt.Errorf("announced_at: %w", err))
			}
		}
		if len(perr) == 0 {
			if err := w.Validate(); err != nil {
				perr = append(perr, err)
			}
			perr = append(perr, rules.check(w)...)
		}
		for _, e := range perr {
			errs = append(errs, fmt.Errorf("%s:%d: window %d: %w", path, line, i+1, e))
		}
		out = append(out, w)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// check applies the notice rules to a window of the file.
func (r FileRules) check(w siobroker.MaintenanceWindow) []error {
	if !r.Now.IsZero() && w.AnnouncedAt.After(r.Now) {
		return []error{fmt.Errorf("announced_at %s is in the future: a window counts as announced once it is published (§42)",
			w.AnnouncedAt.In(siobroker.Astana).Format(time.RFC3339))}
	}
	if err := w.CheckNotice(r.MinNotice); err != nil {
		return []error{fmt.Errorf("%w; start it later, or set emergency: true, which records it in the journal of emergencies (§39–41)", err)}
	}
	return nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("required, RFC 3339 with an offset, e.g. 2026-12-01T22:00:00+05:00")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not RFC 3339 with an offset, e.g. 2026-12-01T22:00:00+05:00", s)
	}
	return t, nil
}

// windowLines returns the line of each item of the windows sequence.
func windowLines(root *yaml.Node) []int {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "windows" {
			var lines []int
			for _, item := range m.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines
		}
	}
	return nil
}
