#!/usr/bin/env bash
# Before/after: runs the same Plexor scenarios against two plexor binaries
# (each with its own PostgreSQL), interleaved in one run so the noisy
# machine affects both alike. Usage: benchmarks/ab.sh BEFORE_BIN AFTER_BIN
# Environment: SAMPLES (300), SECONDS_EACH (10), POLLS (2000), ROUNDS (2),
# PUBLISH (seconds per publish configuration; unset skips the publish scenario),
# BEFORE_ARGS / AFTER_ARGS (extra `plexor serve` flags for each side, e.g. the
# same binary with BEFORE_ARGS="--presence off"), PRESENCE=1 (also, in the
# first round: GET /online over 10,000 online tags, and 10,000 clients
# re-polling over 1,000 tags at 1,000 messages/s, with presence writes/s).
set -euo pipefail
cd "$(dirname "$0")/.."
before=$1
after=$2
samples=${SAMPLES:-300}
seconds=${SECONDS_EACH:-10}
polls=${POLLS:-2000}
rounds=${ROUNDS:-2}

./benchmarks/install-tools.sh
swift build -c release --product plexor-bench 2>&1 | tail -1
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d /tmp/plexor-ab.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

start() {  # name binary port extra-flags
    # --publish-token, not --api-token: older builds compared here know only that name.
    # shellcheck disable=SC2086  # the extra flags are words
    "$2" serve --data-dir "$work/$1" --port "$3" --log-level warning --max-connections 30000 --publish-token ab \
        --retention-max-per-tag 0 --retention-max-age 0 ${4:-} > "$work/$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 300); do
        curl -sf "http://127.0.0.1:$3/readyz" > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$work/$1.log" >&2
    return 1
}
start before "$before" 18101 "${BEFORE_ARGS:-}"
start after "$after" 18102 "${AFTER_ARGS:-}"

bench=.build/release/plexor-bench
for round in $(seq 1 "$rounds"); do
    for side in before after; do
        if [ $side = before ]; then port=18101; pid=${pids[0]}; else port=18102; pid=${pids[1]}; fi
        database="host=$work/$side port=5432 user=plexor dbname=postgres"
        args=(--server plexor --port "$port" --database-url "$database" --pid "$pid" --source-addresses 4)
        echo "== round $round, $side"
        $bench latency "${args[@]}" --samples "$samples"
        # A process keeps memory an earlier round freed: only the first round's figure means anything.
        if [ "$round" -eq 1 ]; then $bench parked "${args[@]}" --count "$polls" --hold 1; fi
        $bench fanout "${args[@]}" --count "$polls"
        tag="ab-cycle-$RANDOM"
        psql "$database" -qc "INSERT INTO plexor.messages (tags, data) VALUES ('{$tag}', '{\"n\":1}')"
        backlog=$(wrk -t2 -c64 -d"${seconds}s" "http://127.0.0.1:$port/poll?tags=$tag@0&timeout=0" | awk '/Requests\/sec/ {print $2}')
        head=$(wrk -t2 -c64 -d"${seconds}s" "http://127.0.0.1:$port/poll?tags=$tag@1&timeout=0" | awk '/Requests\/sec/ {print $2}')
        echo "[cycle · plexor] backlog behind the cursor: $backlog polls/s; at the head with timeout=0: $head polls/s"
        if [ -n "${PUBLISH:-}" ]; then $bench publish "${args[@]}" --seconds "$PUBLISH" --token ab; fi
        if [ -n "${PRESENCE:-}" ] && [ "$round" -eq 1 ]; then
            # The stream first: the online scenario's 10,000 tags go offline a grace period after it.
            $bench stream "${args[@]}" --clients 10000 --tags 1000 --rates 1000 --seconds "$seconds"
            $bench online "${args[@]}" --count 10000 --token ab || echo "[online · plexor] not measured (presence off?)"
        fi
    done
done
