#!/usr/bin/env bash
# The chaos scenario of Tests/Scale as a benchmark: release builds of three
# gateways behind a real nginx, one PostgreSQL, 8 publishers and 300 looping
# clients, gateways killed or drained every 4 s and PostgreSQL crashed once,
# for SECONDS (default 600). Prints and appends to benchmarks/results/<time>-chaos.jsonl:
# messages, lost, duplicates, out of order, and commit → client latency
# (median, p99) outside the faults and during them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
swift build -c release --product plexor 2>&1 | tail -1
mkdir -p benchmarks/results
report="benchmarks/results/$(date -u +%Y-%m-%dT%H-%M-%SZ)-chaos.jsonl"
PLEXOR_CHAOS_SECONDS=$seconds PLEXOR_CHAOS_REPORT=$report \
    ./scripts/scale-test.sh .build/release/plexor ProxyTests.test_chaos_gateways_killed_and_drained_and_postgresql_restarted_lose_nothing
cat "$report"
