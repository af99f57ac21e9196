#!/usr/bin/env bash
# Installs the Debian 12 packages shipper builds and tests with, if any is missing.
set -euo pipefail
PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev libuv1-dev librdkafka-dev
 libcurl4-openssl-dev libyaml-dev zlib1g-dev libdeflate-dev libssl-dev libjansson-dev libpcre2-dev
 libcmocka-dev libmsgpack-dev ninja-build docker.io docker-compose systemd busybox-static kcat curl openssl python3 procps
 iproute2 ca-certificates binutils time python3-yaml man-db groff-base dpkg-dev dpkg-repack
 gnuplot-nox valgrind"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js (for the second Forward client) may come from elsewhere than Debian: only ask apt for
# it when there is no npm at all.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
    echo "installing:$missing"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
# promtool (test_operator_kit.sh) comes with Debian's prometheus server package, which would
# also start a server on port 9090 of every address: installed without its recommends (the
# node exporter), and its service stopped and disabled again when this installed it.
if ! command -v promtool >/dev/null 2>&1; then
    echo "installing: prometheus (for promtool; its service is disabled)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    [ -n "$missing" ] || $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi
