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
    floor = by.get(("floor", "kernel"), [])
    if floor:
        out += ["", f"Kernel floor (benchmarks/write-floor.c): one 300-byte write to a loopback client waiting in epoll costs "
                    f"the sender {floor[0]['cpu_us_per_write']:.2f} µs of CPU ({floor[0]['writes']:,} connections)."]
    out += ["", "| scenario | figure | Plexor | Nchan |", "|---|---|---|---|"]
    parked = {}
    for r in by.get(("parked", "plexor"), []) + by.get(("parked", "nchan"), []):
        parked.setdefault(r["polls"], {})[r["server"]] = r
    for polls, servers in sorted(parked.items()):
        def cell(server, key, digits=0):
            r = servers.get(server)
            return "—" if r is None else f"{r[key]:,.{digits}f}"
        processes = servers.get("plexor", {}).get("server_processes", 1)
        label = f"1. parked {polls:,}" + (f" ({processes} gateway processes)" if processes > 1 else "")
        out.append(f"| {label} | bytes of server RSS per parked poll | {cell('plexor', 'bytes_per_poll')} | {cell('nchan', 'bytes_per_poll')} |")
        out.append(f"| {label} | polls still parked after the hold | {cell('plexor', 'waiting_after_hold')} | {cell('nchan', 'waiting_after_hold')} |")
    table = [
        ("2. fan-out", "publish → answer, median (ms)", "fanout", "median_ms", 2),
        ("2. fan-out", "publish → answer, p99 (ms)", "fanout", "p99_ms", 2),
        ("2. fan-out", "publish → last answer (ms)", "fanout", "last_ms", 2),
        ("2. fan-out", "server CPU per delivered answer (µs)", "fanout", "server_cpu_us_per_response", 2),
        ("2. fan-out", "benchmark clients' CPU per delivered answer (µs)", "fanout", "client_cpu_us_per_response", 2),
        ("latency", "publish → answer of one parked poll, median (ms)", "latency", "median_ms", 3),
        ("latency", "… p99 (ms)", "latency", "p99_ms", 3),
        ("4. poll cycle", "completed polls per second", "cycle", "polls_per_second", 0),
    ]
    for label, figure, scenario, key, digits in table:
        if (scenario, "plexor") in by or (scenario, "nchan") in by:
            out.append(f"| {label} | {figure} | {get(scenario, 'plexor', key, digits)} | {get(scenario, 'nchan', key, digits)} |")
    stream = by.get(("stream", "plexor"), [])
    if stream:
        out += ["", f"| 3. stream ({stream[0]['clients']:,} clients, {stream[0]['tags']:,} tags): msgs/s asked | committed | deliveries | lost "
                    "| commit → client median (ms) | p99 | p99.9 | gateway CPU | bench CPU |", "|---|---|---|---|---|---|---|---|---|"]
        for r in stream:
            out.append(f"| {r['rate']:,} | {r['achieved_rate']:,.0f} | {r['deliveries']:,} | {r['lost']} | {r['median_ms']:.3f} "
                       f"| {r['p99_ms']:.3f} | {r['p999_ms']:.3f} | {r['gateway_cpu_percent']:.0f}% | {r['client_cpu_percent']:.0f}% |")
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
    chat = by.get(("chat", "plexor"), [])
    if chat:
        out += ["", f"| 8. chat ({chat[0]['chatters']:,} chatters, {chat[0]['rooms']} rooms, {chat[0]['rate']} posts/s) | posts | deliveries | lost "
                    "| post → member median (ms) | p99 | POST → 201 median (ms) | p99 |", "|---|---|---|---|---|---|---|---|"]
        for r in chat:
            for key, label in (("calm", "calm"), ("flood", "one member flooding")):
                out.append(f"| {label} | {r[key + '_posts']:,} | {r[key + '_deliveries']:,} | {r[key + '_lost']} | {r[key + '_median_ms']:.2f} "
                           f"| {r[key + '_p99_ms']:.2f} | {r[key + '_post_median_ms']:.2f} | {r[key + '_post_p99_ms']:.2f} |")
            out.append(f"| the flooder | {r['flood_accepted']} accepted, {r['flood_refused']:,} refused (429) | | duplicates {r['duplicates']}, "
                       f"out of order {r['out_of_order_members']} | | | | |")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
