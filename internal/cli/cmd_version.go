package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

const versionUsage = `usage:
  siobroker version
  siobroker --version

Prints the broker's version (the module version the Go toolchain stamped: a release tag, or a
pseudo-version naming the commit's time and hash), the commit it was built from, with
"(modified)" when the tree had uncommitted changes, and the Go version and platform. A binary
built without version control information (go run, a copy of the source without .git) says
"(devel)" and "unknown".
Exit status: 0 printed, 2 usage error.
`

// What the build sets with -ldflags -X (make build, make deb), for when the Go toolchain stamped
// no version control information: GOFLAGS=-buildvcs=false, or a git worktree, whose .git the
// toolchain does not recognise. The toolchain's own, when there, is preferred.
var (
	buildVersion  string // a tag, or a pseudo-version: v0.0.0-YYYYMMDDHHMMSS-<12 hex>
	buildCommit   string // the full hash
	buildTime     string // the commit's time, RFC 3339, UTC
	buildModified string // "true" when the tree had uncommitted changes
)

// cmdVersion prints what the binary was built from, so that an operator can say which broker
// runs: the version the Debian package was made of, or the commit of a build from source.
func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("version", versionUsage, stdout, stderr)
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	fmt.Fprint(stdout, versionText(debug.ReadBuildInfo()))
	return exitOK
}

// versionText is what version prints of the build info (ok false: the binary has none).
func versionText(info *debug.BuildInfo, ok bool) string {
	version, revision, at, modified := "", "", "", false
	if ok {
		if info.Main.Version != "(devel)" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if revision == "" { // nothing stamped by the toolchain: what the build passed, if anything
		revision, at, modified = buildCommit, buildTime, buildModified == "true"
	}
	commit := cmp.Or(revision, "unknown")
	if at != "" {
		commit += " " + at
	}
	if modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("siobroker %s\ncommit %s\n%s %s/%s\n", cmp.Or(version, buildVersion, "(devel)"), commit,
		runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
