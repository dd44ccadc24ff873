#!/usr/bin/env bash
# The browser tests: Debian's Chromium and chromedriver, selenium from PyPI
# (installed when missing), a real `plexor serve` with its own PostgreSQL.
# Usage: scripts/browser-test.sh [PLEXOR_BIN] (default .build/debug/plexor).
set -euo pipefail
cd "$(dirname "$0")/.."
export PLEXOR_BIN=${1:-.build/debug/plexor}
missing=()
for package in chromium chromium-driver; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -c "import selenium" 2>/dev/null || python3 -m pip install --quiet selenium
# selenium must not try to download a driver: Debian's is the one to use.
export SE_OFFLINE=true
python3 Tests/Browser/browser_tests.py
python3 Tests/Browser/widget_tests.py
python3 Tests/Browser/realplexor_tests.py
