#!/usr/bin/env bash
# Installs the embedded ClickHouse engine (chDB's libchdb.so) into the cache
# that fleetscope looks in, outside the repository:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/fleetscope/chdb/<version>/libchdb.so
# It comes from the npm package @chdb/lib-linux-x64-gnu at a pinned version,
# and both the package and the library are checked against pinned SHA-256
# sums. A second run finds the cache and returns at once.
set -euo pipefail

VERSION=26.5.3
PKG_SHA256=b874e449710950da3abd7e20376f7bb3387d9e03adcc7082f022be18dfdf316a
LIB_SHA256=4330da79405733f7572f27c1442f46c03a08301f00859dce0368645731b1e1dc

cache="${XDG_CACHE_HOME:-$HOME/.cache}/fleetscope/chdb/$VERSION"
lib="$cache/libchdb.so"

if [ -f "$lib" ] && [ -f "$lib.sha256-ok" ]; then
	echo "engine: chDB $VERSION already installed at $lib"
	exit 0
fi

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
	echo "engine: the embedded engine package exists for Linux x86_64 only; on $(uname -s)-$(uname -m) run against a ClickHouse server (--clickhouse)" >&2
	exit 1
fi
command -v npm >/dev/null || { echo "engine: npm is needed to fetch the engine package (apt-get install npm)" >&2; exit 1; }

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
# Another run may have finished while we waited for the lock.
if [ -f "$lib" ] && [ -f "$lib.sha256-ok" ]; then
	echo "engine: chDB $VERSION already installed at $lib"
	exit 0
fi

work=$(mktemp -d "$cache/.install-XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "engine: fetching @chdb/lib-linux-x64-gnu@$VERSION from the npm registry (~167 MB)"
(cd "$work" && npm pack --silent "@chdb/lib-linux-x64-gnu@$VERSION" >/dev/null)
tgz="$work/chdb-lib-linux-x64-gnu-$VERSION.tgz"
echo "$PKG_SHA256  $tgz" | sha256sum --check --quiet - || { echo "engine: package checksum mismatch" >&2; exit 1; }
tar -xzf "$tgz" -C "$work" package/libchdb.so
echo "$LIB_SHA256  $work/package/libchdb.so" | sha256sum --check --quiet - || { echo "engine: library checksum mismatch" >&2; exit 1; }
mv "$work/package/libchdb.so" "$lib"
touch "$lib.sha256-ok"
echo "engine: installed chDB $VERSION at $lib"
