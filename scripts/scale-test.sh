#!/usr/bin/env bash
# Plexor behind a real nginx (docker/nginx.conf): three gateways on one
# PostgreSQL, thousands of looping clients (Tests/Scale). Installs nginx when
# missing. Usage: scripts/scale-test.sh [PLEXOR_BIN [TEST...]] (default .build/debug/plexor, every test).
# PLEXOR_SCALE_PROGRAM runs another program in that setting instead (benchmarks/capacity.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
export PLEXOR_BIN=${1:-.build/debug/plexor}
if ! command -v nginx >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
    # The package starts a system nginx on port 80; the tests run their own.
    $sudo service nginx stop >/dev/null 2>&1 || true
fi
# Thousands of connections: each client's, and nginx's two per proxied poll.
ulimit -n "$(ulimit -Hn)"
python3 "${PLEXOR_SCALE_PROGRAM:-Tests/Scale/proxy_tests.py}" "${@:2}"
