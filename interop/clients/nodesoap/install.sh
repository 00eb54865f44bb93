#!/bin/sh
# Installs the node-soap interop client's pinned dependencies (package-lock.json) into a cache
# outside the repository and prints the node_modules directory to pass as NODE_PATH:
#
#   NODE_PATH="$(interop/clients/nodesoap/install.sh)" node interop/clients/nodesoap/client.js ...
#
# The cache is $SIO_INTEROP_CACHE/nodesoap (default $HOME/.cache/siobroker-interop/nodesoap).
# Idempotent: npm ci runs only when the lock file differs from the one last installed there.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${SIO_INTEROP_CACHE:-${HOME:?HOME is not set}/.cache/siobroker-interop}
dir=$cache/nodesoap

command -v npm >/dev/null 2>&1 || { echo "install.sh: npm not found (the node-soap interop client needs Node.js >= 20.19 and npm)" >&2; exit 2; }
# soap 1.13.0 declares engines.node >=20.19.0; npm would only warn.
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
	{ echo "install.sh: Node.js $(node --version 2>/dev/null || echo missing) is too old; soap 1.13.0 needs >= 20.19.0" >&2; exit 2; }

mkdir -p "$dir"
if [ -d "$dir/node_modules/soap" ] && [ -f "$dir/.installed.lock.json" ] &&
	cmp -s "$here/package-lock.json" "$dir/.installed.lock.json" &&
	cmp -s "$here/package.json" "$dir/package.json"; then
	echo "$dir/node_modules"
	exit 0
fi

cp "$here/package.json" "$here/package-lock.json" "$dir/"
rm -f "$dir/.installed.lock.json"
# npm's own output goes to stderr so that stdout is only the NODE_PATH.
npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >&2
cp "$here/package-lock.json" "$dir/.installed.lock.json"
echo "$dir/node_modules"
