#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite. The
# integration tests start their own PostgreSQL (or use DATABASE_URL); a few
# also start the plexor executable itself, built here beside them.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-dependencies.sh
swift build --build-tests
swift build --product plexor
swift build --product plexor-fuzz
swift test --skip-build "$@"
