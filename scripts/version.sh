#!/usr/bin/env bash
# Prints what `siobroker version` reports of this checkout, for make build and make deb:
#   scripts/version.sh ldflags   the -X flags of internal/cli's build variables
#   scripts/version.sh go        the Go module version: the tag vX.Y.Z on HEAD, or the
#                                pseudo-version v0.0.0-YYYYMMDDHHMMSS-<12 hex> of the commit;
#                                "+dirty" when the tree has uncommitted changes
#   scripts/version.sh deb       the Debian version of it: X.Y.Z, or 0.0.0~gitYYYYMMDDHHMMSS.<12 hex>
# Outside a git checkout: (devel), and 0.0.0~unknown for Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=github.com/sio-pso/siobroker/internal/cli
if ! commit=$(git rev-parse HEAD 2>/dev/null); then
	case "${1:-}" in
	ldflags) echo "" ;;
	go) echo "(devel)" ;;
	deb) echo "0.0.0~unknown" ;;
	*) echo "usage: $0 ldflags|go|deb" >&2; exit 2 ;;
	esac
	exit 0
fi
stamp=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S HEAD)
at=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ HEAD)
short=${commit:0:12}
dirty=false
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && dirty=true
tag=$(git describe --tags --exact-match --match 'v[0-9]*.[0-9]*.[0-9]*' HEAD 2>/dev/null || true)

if [ -n "$tag" ]; then
	goversion=$tag
	debversion=${tag#v}
else
	goversion=v0.0.0-$stamp-$short
	debversion=0.0.0~git$stamp.$short
fi
if [ "$dirty" = true ]; then
	goversion=$goversion+dirty
	debversion=$debversion+dirty
fi

case "${1:-}" in
ldflags) echo "-X $pkg.buildVersion=$goversion -X $pkg.buildCommit=$commit -X $pkg.buildTime=$at -X $pkg.buildModified=$dirty" ;;
go) echo "$goversion" ;;
deb) echo "$debversion" ;;
*) echo "usage: $0 ldflags|go|deb" >&2; exit 2 ;;
esac
