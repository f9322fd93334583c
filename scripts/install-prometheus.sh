#!/usr/bin/env bash
# Installs promtool and prometheus for the operations tests (the alert rules'
# checks and unit tests, a real Prometheus scraping fleetscope) when either is
# missing: Debian's prometheus package, through apt, as root or with sudo.
# Fails loudly when it cannot: the tests need them.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
	echo "prometheus: $(command -v prometheus) and $(command -v promtool) already installed"
	exit 0
fi
command -v apt-get >/dev/null || { echo "prometheus: promtool/prometheus missing and no apt-get: install Prometheus 2.x (promtool and prometheus on PATH)" >&2; exit 1; }
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "prometheus: promtool/prometheus missing; run as root or install sudo (apt-get install prometheus)" >&2; exit 1; }
	sudo="sudo"
fi
echo "prometheus: installing Debian's prometheus package (promtool, prometheus) for the operations tests"
$sudo apt-get update -qq
# Without recommends: no node exporter. The package enables a prometheus
# service of its own (port 9090) where systemd runs; the tests start theirs.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null && command -v prometheus >/dev/null || { echo "prometheus: installed, but promtool/prometheus not on PATH" >&2; exit 1; }
echo "prometheus: $(command -v prometheus) installed"
