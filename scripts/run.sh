#!/usr/bin/env bash
# Installs what is missing, builds Plexor (release), and serves on port 8080
# with its own PostgreSQL in .plexor/postgres. Extra arguments go to
# `plexor serve` (see `plexor serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-dependencies.sh
swift build -c release --product plexor
exec .build/release/plexor serve "$@"
