#!/usr/bin/env bash
# Runs the benchmark scenarios against Plexor and, side by side with the same
# client and parameters, nginx with Nchan. Starts everything it needs on
# loopback (its own PostgreSQL, a release build of plexor, nginx), stops it
# all at the end, and writes benchmarks/results/<time>.{jsonl,md}.
#
# Environment: POLLS (parked and fan-out polls, default 10000), SAMPLES
# (latency samples, 300), SECONDS_EACH (load duration, 10), SCENARIOS
# (default "floor latency parked parked100k fanout stream cycle publish listened chat").
set -euo pipefail
cd "$(dirname "$0")/.."
polls=${POLLS:-10000}
samples=${SAMPLES:-300}
seconds=${SECONDS_EACH:-10}
scenarios=${SCENARIOS:-floor latency parked parked100k fanout stream cycle publish listened chat}

./scripts/install-dependencies.sh
./benchmarks/install-tools.sh
for product in plexor plexor-bench; do
    swift build -c release --product "$product" 2>&1 | tail -1
done
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/plexor-bench.XXXXXX)
chmod 755 "$work"  # PostgreSQL may run as the postgres user
stamp=$(date -u +%Y-%m-%dT%H-%M-%SZ)
mkdir -p benchmarks/results
json="benchmarks/results/$stamp.jsonl"
plexor_port=18089
nchan_port=18090

.build/release/plexor serve --data-dir "$work/pg" --port "$plexor_port" --log-level warning \
    --api-token bench --max-connections 20000 --retention-max-per-tag 0 --retention-max-age 0 > "$work/plexor.log" 2>&1 &
gateway=$!
sed "s|@PORT@|$nchan_port|; s|@DIR@|$work|g" benchmarks/nchan.conf > "$work/nginx.conf"
nginx -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log"
fresh=
cleanup() {
    # Also the servers a scenario started, if it stopped half-way.
    kill -TERM "$gateway" ${fresh:+"$fresh"} 2>/dev/null || true
    wait "$gateway" 2>/dev/null || true
    for pidfile in "$work/nginx.pid" "$work/nginx-fresh/nginx.pid"; do
        [ -f "$pidfile" ] && kill -QUIT "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

for attempt in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$plexor_port/readyz" > /dev/null 2>&1 && break
    if [ "$attempt" -eq 300 ] || ! kill -0 "$gateway" 2>/dev/null; then
        echo "the gateway did not become ready:" >&2
        cat "$work/plexor.log" >&2
        exit 1
    fi
    sleep 0.1
done
database="host=$work/pg port=5432 user=plexor dbname=postgres"
nchan_workers=$(pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' ')
plexor_args=(--server plexor --port "$plexor_port" --database-url "$database" --pid "$gateway" --source-addresses 4 --json-out "$json")
nchan_args=(--server nchan --port "$nchan_port" --pid $nchan_workers --source-addresses 4 --json-out "$json")

{
    echo "{\"scenario\":\"machine\",\"cores\":$(nproc),\"kernel\":\"$(uname -r)\",\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\",\"memory_kib\":$(grep MemTotal /proc/meminfo | awk '{print $2}'),\"postgresql\":\"$(/usr/lib/postgresql/*/bin/postgres --version | head -1)\",\"nginx\":\"$(nginx -v 2>&1 | cut -d/ -f2)\",\"nchan\":\"$(dpkg-query -W -f='${Version}' libnginx-mod-nchan)\",\"plexor\":\"$(git rev-parse --short HEAD)\",\"polls\":$polls,\"samples\":$samples,\"seconds\":$seconds}"
} > "$json"

bench=.build/release/plexor-bench
for scenario in $scenarios; do
    case $scenario in
        latency)
            $bench latency "${plexor_args[@]}" --samples "$samples"
            $bench latency "${nchan_args[@]}" --samples "$samples" ;;
        floor)
            # What the kernel alone charges the sender for one small write to a
            # loopback client waiting in epoll: the floor under any fan-out.
            gcc -O2 -o "$work/write-floor" benchmarks/write-floor.c
            floor_writes=$(( polls < 9000 ? polls : 9000 ))  # two descriptors per connection in one process
            "$work/write-floor" "$floor_writes" 300 | tee -a "$work/floor.txt"
            awk -v polls="$floor_writes" '/CPU per write/ {for (i = 1; i <= NF; i++) if ($i == "us") {sum += $(i - 1); n++}} END {printf "{\"scenario\":\"floor\",\"server\":\"kernel\",\"writes\":%d,\"cpu_us_per_write\":%.2f}\n", polls, sum / n}' "$work/floor.txt" >> "$json" ;;
        parked)
            # Each count on freshly started servers (memory freed by an earlier run
            # stays in a process's RSS); one process holds at most ~19,000 here.
            for count in "$polls" 19000; do
                fresh_port=18119
                .build/release/plexor serve --database-url "$database" --port "$fresh_port" --log-level warning \
                    --max-connections 20000 --retention-max-per-tag 0 --retention-max-age 0 > "$work/fresh.log" 2>&1 &
                fresh=$!
                for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$fresh_port/readyz" > /dev/null 2>&1 && break; sleep 0.1; done
                $bench parked --server plexor --port "$fresh_port" --pid "$fresh" --source-addresses 4 --json-out "$json" --count "$count"
                kill -TERM "$fresh"; wait "$fresh" 2>/dev/null || true; fresh=

                mkdir -p "$work/nginx-fresh"
                sed "s|@PORT@|$((fresh_port + 1))|; s|@DIR@|$work/nginx-fresh|g" benchmarks/nchan.conf > "$work/nginx-fresh/nginx.conf"
                nginx -c "$work/nginx-fresh/nginx.conf" -p "$work/nginx-fresh" -e "$work/nginx-fresh/nginx-error.log"
                sleep 0.5
                $bench parked --server nchan --port $((fresh_port + 1)) --pid $(pgrep -P "$(cat "$work/nginx-fresh/nginx.pid")" | tr '\n' ' ') \
                    --source-addresses 4 --json-out "$json" --count "$count"
                kill -QUIT "$(cat "$work/nginx-fresh/nginx.pid")"; sleep 1
            done ;;
        parked100k)
            # 100,000 polls over six gateway processes sharing one port (SO_REUSEPORT), from six client
            # processes. Opening them all takes longer than a minute here, so the polls ask for 10.
            shared_port=18110
            reuse_pids=()
            status_ports=()
            for index in 1 2 3 4 5 6; do
                .build/release/plexor serve --database-url "$database" --port "$shared_port" --reuse-port \
                    --status-port $((shared_port + index)) --log-level warning --max-connections 20000 --max-timeout 600 \
                    --retention-max-per-tag 0 --retention-max-age 0 > "$work/reuse-$index.log" 2>&1 &
                reuse_pids+=($!)
                status_ports+=($((shared_port + index)))
            done
            for port in "${status_ports[@]}"; do
                for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break; sleep 0.1; done
            done
            $bench parked --server plexor --port "$shared_port" --status-port "${status_ports[@]}" --pid "${reuse_pids[@]}" \
                --source-addresses 8 --count 100000 --client-processes 6 --poll-timeout 600 --json-out "$json"
            kill -TERM "${reuse_pids[@]}"
            wait "${reuse_pids[@]}" 2>/dev/null || true ;;
        fanout)
            $bench fanout "${plexor_args[@]}" --count "$polls"
            $bench fanout "${nchan_args[@]}" --count "$polls" ;;
        stream)
            # 10,000 clients over 1,000 tags re-polling with cursors; 1,000 msgs/s, then more until it saturates.
            $bench stream "${plexor_args[@]}" --clients "$polls" --tags $(( polls / 10 )) --rates 1000 2000 4000 8000 \
                --seconds "$seconds" --svg-out "benchmarks/results/$stamp-stream.svg" ;;
        cycle)
            # Polls answered at once from a backlog, keep-alive, same load generator for both.
            tag="bench-cycle-$RANDOM"
            psql "$database" -qc "INSERT INTO plexor.messages (tags, data) VALUES ('{$tag}', '{\"n\":1}')"
            curl -s -X POST -d '{"n":1}' "http://127.0.0.1:$nchan_port/pub/$tag" > /dev/null
            for server in plexor nchan; do
                if [ $server = plexor ]; then url="http://127.0.0.1:$plexor_port/poll?tags=$tag@0&timeout=0"; pids=$gateway
                else url="http://127.0.0.1:$nchan_port/backlog/$tag"; pids=$nchan_workers; fi
                rate=$(wrk -t2 -c64 -d"${seconds}s" "$url" | awk '/Requests\/sec/ {print $2}')
                echo "[cycle · $server] $rate completed polls/s (wrk, 64 keep-alive connections)"
                echo "{\"scenario\":\"cycle\",\"server\":\"$server\",\"polls_per_second\":$rate,\"connections\":64}" >> "$json"
            done ;;
        publish)
            $bench publish "${plexor_args[@]}" --seconds "$seconds" --token bench ;;
        chat)
            # 1,000 chatters (site-verified, each following its room and present in it) in 100 rooms,
            # 50 posts a second; then the same with one of them flooding.
            $bench chat "${plexor_args[@]}" --chatters 1000 --rooms 100 --rate 50 --seconds "$seconds" ;;
        listened)
            for tags in 1000 10000 50000; do
                $bench listened "${plexor_args[@]}" --tags "$tags" --samples "$samples"
            done ;;
        *) echo "unknown scenario $scenario" >&2; exit 1 ;;
    esac
done

python3 benchmarks/summarize.py "$json" > "benchmarks/results/$stamp.md"
echo
cat "benchmarks/results/$stamp.md"
