#!/usr/bin/env bash
# Capacity at full size (benchmarks/capacity.py): the parked polls one release
# gateway holds with its whole descriptor limit, then what three hold behind
# nginx (docker/nginx.conf, 8 workers). Prints and appends to
# benchmarks/results/<time>-capacity.jsonl. Takes about two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product plexor 2>&1 | tail -1
mkdir -p benchmarks/results
report="benchmarks/results/$(date -u +%Y-%m-%dT%H-%M-%SZ)-capacity.jsonl"
PLEXOR_SCALE_PROGRAM=benchmarks/capacity.py ./scripts/scale-test.sh .build/release/plexor "$PWD/$report"
