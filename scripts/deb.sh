#!/usr/bin/env bash
# make deb: the Debian package of this checkout, built with dpkg-deb alone (no debhelper, no Go
# module beyond the broker's own): bin/siobroker_<version>_<arch>.deb, whose path it prints last.
#
#   /usr/bin/siobroker                             the binary (CGO off: no C library needed)
#   /lib/systemd/system/siobroker.service          deploy/systemd
#   /lib/systemd/system/siobroker-adapter@.service
#   /etc/siobroker/                                configs/, as conffiles, with the paths the
#                                                  files name made absolute: configs/X is
#                                                  /etc/siobroker/X, the data directory
#                                                  /var/lib/siobroker
#   /usr/share/doc/siobroker/                      README.md, copyright
#   maintainer scripts                             deploy/debian: the user siobroker, the data
#                                                  directory 0700, /etc/siobroker 0750 root:siobroker
#
# GOARCH chooses the architecture (GOARCH=arm64 make deb), DEB_VERSION overrides the version
# (default: scripts/version.sh deb), DEB_OUT the output directory (default bin).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
goarch=$($GO env GOARCH)
case "$goarch" in
386) arch=i386 ;;
arm) arch=armhf ;;
ppc64le) arch=ppc64el ;;
*) arch=$goarch ;;
esac
version=${DEB_VERSION:-$(scripts/version.sh deb)}
out=${DEB_OUT:-bin}
pkg=$out/siobroker_${version}_${arch}.deb

root=$(mktemp -d)
chmod 0755 "$root" # the package's /
trap 'rm -rf "$root"' EXIT
umask 022

install -d "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/siobroker/adapters" \
	"$root/usr/share/doc/siobroker" "$root/DEBIAN"
CGO_ENABLED=0 GOARCH=$goarch $GO build -trimpath -ldflags "-s -w $(scripts/version.sh ldflags)" \
	-o "$root/usr/bin/siobroker" ./cmd/siobroker
install -m 0644 deploy/systemd/siobroker.service deploy/systemd/siobroker-adapter@.service "$root/lib/systemd/system/"

# The configuration, with every path it names into the repository or the working directory made
# absolute: a service has no checkout to be run from.
for f in configs/broker.yaml configs/routes.yaml configs/rights.yaml configs/maintenance.yaml configs/consent.tmpl configs/adapters/*.yaml; do
	dest=$root/etc/siobroker/${f#configs/}
	sed -E -e 's#^([[:space:]]*[a-z_]+:[[:space:]]*)configs/#\1/etc/siobroker/#' \
		-e 's#^data_dir: \./data( |$)#data_dir: /var/lib/siobroker\1#' "$f" >"$dest"
	chmod 0644 "$dest"
done
if grep -nE '^[[:space:]]*[a-z_]+:[[:space:]]*"?(configs/|\./)' -r "$root/etc/siobroker"; then
	echo "deb: a configuration value above still names a path relative to the checkout" >&2
	exit 1
fi
grep -q '^data_dir: /var/lib/siobroker' "$root/etc/siobroker/broker.yaml" || {
	echo "deb: broker.yaml's data_dir was not set to /var/lib/siobroker" >&2
	exit 1
}

install -m 0644 README.md deploy/debian/copyright "$root/usr/share/doc/siobroker/"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
(cd "$root" && find etc -type f | sort | sed 's#^#/#') >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" deploy/debian/control >"$root/DEBIAN/control"

mkdir -p "$out"
dpkg-deb --root-owner-group --build "$root" "$pkg" >/dev/null
echo "$pkg"
