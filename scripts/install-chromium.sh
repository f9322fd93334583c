#!/usr/bin/env bash
# Installs Chromium for the dashboard's browser tests (api/web/webtest) when
# none is found: Debian's chromium package, through apt. The tests look for
# FLEETSCOPE_CHROMIUM, /usr/bin/chromium, then chromium, chromium-browser or
# google-chrome on PATH — as this script does.
set -euo pipefail

if [ -n "${FLEETSCOPE_CHROMIUM:-}" ] && [ -x "$FLEETSCOPE_CHROMIUM" ]; then
	echo "browser: $FLEETSCOPE_CHROMIUM"
	exit 0
fi
for b in /usr/bin/chromium chromium chromium-browser google-chrome; do
	if command -v "$b" >/dev/null 2>&1; then
		echo "browser: $(command -v "$b") already installed"
		exit 0
	fi
done
command -v apt-get >/dev/null || { echo "browser: no Chromium and no apt-get: install Chromium, or set FLEETSCOPE_CHROMIUM" >&2; exit 1; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "browser: installing Debian's chromium package for the browser tests"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
echo "browser: $(command -v chromium) installed"
