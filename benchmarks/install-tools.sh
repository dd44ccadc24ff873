#!/usr/bin/env bash
# Installs what the benchmarks compare against and drive load with:
# nginx with the Nchan module, wrk, and a C compiler for the write floor.
set -euo pipefail
packages=(nginx-light libnginx-mod-nchan wrk curl gcc libc6-dev)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package starts a system nginx on port 80; the benchmarks run their own.
service nginx stop >/dev/null 2>&1 || true
