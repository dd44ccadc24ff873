#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite. The
# integration tests start their own PostgreSQL (or use DATABASE_URL); a few
# also start the plexor executable itself, built here beside them.
# With --release, the same suite runs against a release build (what ships:
# optimised, without exclusivity checks in the hot modules) in .build/release.
set -euo pipefail
cd "$(dirname "$0")/.."

build=(--build-path .build)
if [ "${1:-}" = "--release" ]; then
    shift
    build+=(-c release -Xswiftc -enable-testing)
fi
./scripts/install-dependencies.sh --tests
./scripts/check-js.sh
# The deployment files, statically (no container engine here).
./docker/check.sh
swift build "${build[@]}" --build-tests
swift build "${build[@]}" --product plexor
swift build "${build[@]}" --product plexor-fuzz
swift test "${build[@]}" --skip-build "$@"
# The browser client and the front page in headless Chromium, against the plexor just built.
./scripts/browser-test.sh "$(swift build "${build[@]}" --show-bin-path)/plexor"
# Three gateways behind a real nginx with docker/nginx.conf: tag affinity, a drain under parked polls, a minute of chaos.
./scripts/scale-test.sh "$(swift build "${build[@]}" --show-bin-path)/plexor"
