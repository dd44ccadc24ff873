#!/usr/bin/env bash
# Builds release binaries, starts a gateway with its own PostgreSQL in a
# temporary directory (loopback only), runs the benchmarks, and stops
# everything. Usage: benchmarks/run.sh [samples] [parked-polls]
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-300}
parked=${2:-1000}

./scripts/install-dependencies.sh
for product in plexor plexor-bench; do
    swift build -c release --product "$product" 2>&1 | tail -1
done

work=$(mktemp -d /tmp/plexor-bench.XXXXXX)
chmod 755 "$work"  # PostgreSQL may run as the postgres user
port=18089
.build/release/plexor serve --data-dir "$work/pg" --port "$port" --log-level warning > "$work/serve.log" 2>&1 &
gateway=$!
cleanup() {
    kill -TERM "$gateway" 2>/dev/null || true
    wait "$gateway" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for attempt in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
    if [ "$attempt" -eq 300 ] || ! kill -0 "$gateway" 2>/dev/null; then
        echo "the gateway did not become ready:" >&2
        cat "$work/serve.log" >&2
        exit 1
    fi
    sleep 0.1
done
database="host=$work/pg port=5432 user=plexor dbname=postgres"

echo "# $(date -u +%FT%TZ) on $(nproc) cores, $(uname -r), $(/usr/lib/postgresql/*/bin/postgres --version | head -1)"
.build/release/plexor-bench latency --port "$port" --database-url "$database" --samples "$samples"
.build/release/plexor-bench parked --port "$port" --pid "$gateway" --count "$parked"
