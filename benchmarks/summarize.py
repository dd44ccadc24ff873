#!/usr/bin/env python3
"""Turns a results .jsonl written by benchmarks/run.sh into a Markdown report."""
import json
import sys


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    machine = next((r for r in rows if r["scenario"] == "machine"), {})
    by = {}
    for r in rows:
        by.setdefault((r["scenario"], r.get("server")), []).append(r)

    def get(scenario, server, key, digits=2):
        found = by.get((scenario, server))
        if not found or key not in found[0]:
            return "—"
        value = found[0][key]
        return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"

    out = [f"# Plexor beside Nchan — {path.split('/')[-1].removesuffix('.jsonl')}", ""]
    out.append(f"Machine: {machine.get('cores')} cores ({machine.get('cpu')}), {machine.get('memory_kib', 0) // 1024} MiB, "
               f"Linux {machine.get('kernel')}; {machine.get('postgresql')}; nginx {machine.get('nginx')} with Nchan "
               f"{machine.get('nchan')}; Plexor {machine.get('plexor')}. Polls: {machine.get('polls')}, latency samples: "
               f"{machine.get('samples')}, load runs: {machine.get('seconds')} s.")
    out += ["", "| scenario | figure | Plexor | Nchan |", "|---|---|---|---|"]
    table = [
        ("1. parked", "bytes of server RSS per parked poll", "parked", "bytes_per_poll", 0),
        ("1. parked", "polls still parked after the hold", "parked", "waiting_after_hold", 0),
        ("2. fan-out", "publish → answer, median (ms)", "fanout", "median_ms", 2),
        ("2. fan-out", "publish → answer, p99 (ms)", "fanout", "p99_ms", 2),
        ("2. fan-out", "publish → last answer (ms)", "fanout", "last_ms", 2),
        ("2. fan-out", "server CPU per delivered answer (µs)", "fanout", "server_cpu_us_per_response", 2),
        ("latency", "publish → answer of one parked poll, median (ms)", "latency", "median_ms", 3),
        ("latency", "… p99 (ms)", "latency", "p99_ms", 3),
        ("4. poll cycle", "completed polls per second", "cycle", "polls_per_second", 0),
    ]
    for label, figure, scenario, key, digits in table:
        if (scenario, "plexor") in by or (scenario, "nchan") in by:
            out.append(f"| {label} | {figure} | {get(scenario, 'plexor', key, digits)} | {get(scenario, 'nchan', key, digits)} |")
    publish = by.get(("publish", "plexor"), [])
    if publish:
        out += ["", "| 5. publish path | connections | messages/s |", "|---|---|---|"]
        for r in publish:
            out.append(f"| {r['path']} | {r['connections']} | {r['messages_per_second']:,.0f} |")
    listened = by.get(("listened", "plexor"), [])
    if listened:
        out += ["", "| 6. tags listened by one gateway | publish → answer median (ms) | p99 (ms) |", "|---|---|---|"]
        for r in listened:
            out.append(f"| {r['tags']:,} | {r['median_ms']:.3f} | {r['p99_ms']:.3f} |")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
