package cli

import (
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionText: the toolchain's stamp is printed when there is one; without it, what the build
// passed with -ldflags -X (scripts/version.sh); without either, (devel) and unknown.
func TestVersionText(t *testing.T) {
	stamped := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207074046-26d8ef85d223+dirty"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "26d8ef85d2236bb3f608035739d5d18b9e712aac"},
		{Key: "vcs.time", Value: "2026-12-07T07:40:46Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	unstamped := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
	platform := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	tests := []struct {
		name  string
		info  *debug.BuildInfo
		ok    bool
		flags [4]string // buildVersion, buildCommit, buildTime, buildModified
		want  string
	}{
		{"stamped by the toolchain", stamped, true, [4]string{"v9.9.9", "ffff", "", "false"},
			"siobroker v0.0.0-20261207074046-26d8ef85d223+dirty\ncommit 26d8ef85d2236bb3f608035739d5d18b9e712aac 2026-12-07T07:40:46Z (modified)\n"},
		{"passed by the build", unstamped, true, [4]string{"v1.2.3", "abc123", "2026-12-01T00:00:00Z", "false"},
			"siobroker v1.2.3\ncommit abc123 2026-12-01T00:00:00Z\n"},
		{"neither", nil, false, [4]string{},
			"siobroker (devel)\ncommit unknown\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := [4]string{buildVersion, buildCommit, buildTime, buildModified}
			t.Cleanup(func() { buildVersion, buildCommit, buildTime, buildModified = saved[0], saved[1], saved[2], saved[3] })
			buildVersion, buildCommit, buildTime, buildModified = tt.flags[0], tt.flags[1], tt.flags[2], tt.flags[3]
			if got := versionText(tt.info, tt.ok); got != tt.want+platform {
				t.Errorf("got\n%swant\n%s", got, tt.want+platform)
			}
		})
	}
}

// TestVersionCommand: siobroker --version and siobroker version print the same, on stdout, and
// exit 0; a stray argument is a usage error.
func TestVersionCommand(t *testing.T) {
	var outs []string
	for _, args := range [][]string{{"--version"}, {"version"}, {"-version"}} {
		var stdout, stderr strings.Builder
		if code := Main(context.Background(), args, &stdout, &stderr); code != exitOK || stderr.Len() > 0 {
			t.Fatalf("siobroker %v exited %d: %s", args, code, stderr.String())
		}
		if !strings.HasPrefix(stdout.String(), "siobroker ") || !strings.Contains(stdout.String(), runtime.Version()) {
			t.Errorf("siobroker %v printed %q", args, stdout.String())
		}
		outs = append(outs, stdout.String())
	}
	if outs[0] != outs[1] || outs[1] != outs[2] {
		t.Errorf("the spellings print differently: %q", outs)
	}
	var stdout, stderr strings.Builder
	if code := Main(context.Background(), []string{"version", "extra"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("siobroker version extra exited %d, want %d", code, exitUsage)
	}
}
