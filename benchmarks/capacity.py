"""Capacity at full size: parked polls one gateway holds with its whole
descriptor limit, then what three hold behind nginx (docker/nginx.conf).

Run by benchmarks/capacity.sh. Every process here may open 20,000
descriptors, so the clients are several processes, each with a loopback
address of its own (a source address has ~28,000 ephemeral ports towards
one port), and nginx runs enough workers for its two descriptors a poll.
Prints the figures and appends them as JSON to the report file."""

import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Scale"))
from proxy_tests import Cluster, metric, read_response, wait_until  # noqa: E402

PER_PROCESS = 15000  # client connections per process, under its 20,000 descriptors
TAGS = 3000          # the polls spread over this many tags, 20 or so a tag as in a busy site
CONNECTING = 256     # connects in flight per process, so the listen queues do not overflow
SETTLE = 300         # seconds for every poll to be parked or refused
ATTEMPTS = 3         # a refused client tries again a second later, twice, then gives up


async def connected(number, port):
    """A connection from 127.0.0.(number + 2) whose port is chosen at connect time: a port taken by
    bind() alone is barred from every other connect (nginx's to the gateways among them)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_IP, socket.IP_BIND_ADDRESS_NO_PORT, 1)
    sock.setblocking(False)
    try:
        sock.bind((f"127.0.0.{number + 2}", 0))
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def client(number, port, first, count, refused, opened, stop):
    """Holds polls first…first + count from 127.0.0.(number + 2), poll n on tag cap-(n % TAGS); counts refusals and opened connections."""

    async def main():
        gate = asyncio.Semaphore(CONNECTING)
        writers = []

        async def one(n):
            request = f"GET /poll?tags=cap-{n % TAGS}&timeout=60 HTTP/1.1\r\nHost: proxy\r\n\r\n".encode()
            for attempt in range(ATTEMPTS):
                if attempt > 0:
                    await asyncio.sleep(1)  # the Retry-After of a full gateway's 503
                try:
                    async with gate:
                        reader, writer = await asyncio.open_connection(sock=await connected(number, port))
                        writers.append(writer)
                        writer.write(request)
                        if attempt == 0:
                            with opened.get_lock():
                                opened.value += 1
                    # Held as a browser holds it: an answer (the poll's timeout) is followed at once by the next poll.
                    while (await read_response(reader))[0] == 200:
                        writer.write(request)
                    writer.close()
                except (OSError, asyncio.IncompleteReadError):
                    pass
            with refused.get_lock():
                refused.value += 1

        tasks = [asyncio.create_task(one(n)) for n in range(first, first + count)]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, stop.wait)
        for writer in writers:
            writer.close()
        for task in tasks:
            task.cancel()

    asyncio.run(main())


def hold(port, count, parked):
    """Opens `count` polls to `port` from enough processes; waits until each is parked or refused.
    Returns (parked per gateway, refused, seconds to settle, most parked at once)."""
    processes = (count + PER_PROCESS - 1) // PER_PROCESS
    refused = multiprocessing.Value("i", 0)
    opened = multiprocessing.Value("i", 0)
    stop = multiprocessing.Event()
    workers = []
    for number in range(processes):
        first = number * PER_PROCESS
        share = min(PER_PROCESS, count - first)
        worker = multiprocessing.Process(target=client, args=(number, port, first, share, refused, opened, stop))
        worker.start()
        workers.append(worker)
    started = time.monotonic()
    counts = []
    shown = [started]
    peak = [0]

    def settled():
        try:
            counts[:] = parked()
        except OSError:
            return False
        peak[0] = max(peak[0], sum(counts))
        if time.monotonic() - shown[0] >= 10:
            shown[0] = time.monotonic()
            print(f"  {shown[0] - started:5.0f} s: {opened.value:,} opened, {sum(counts):,} parked {counts}, {refused.value:,} refused",
                  file=sys.stderr, flush=True)
        return sum(counts) + refused.value == count

    try:
        wait_until(f"each of {count:,} polls is parked or refused", settled, timeout=SETTLE)
        return counts, refused.value, time.monotonic() - started, peak[0]
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()


def main():
    report = sys.argv[1]
    work = tempfile.mkdtemp(prefix="plexor-capacity-")
    os.chmod(work, 0o755)
    cluster = Cluster(work, nginx_workers=8)
    try:
        cluster.start()
        limit = metric(cluster.status_ports[0], "plexor_connections_limit")
        # One gateway, straight: 1,000 more polls than it may hold.
        alone, alone_refused, alone_seconds, _ = hold(
            cluster.ports[0], limit + 1000, lambda: [metric(cluster.status_ports[0], "plexor_polls_parked")])
        wait_until("the gateway is empty again", lambda: metric(cluster.status_ports[0], "plexor_polls_parked") == 0, timeout=120)
        # Three behind nginx: 3,000 more than three times that.
        count = 3 * limit + 3000
        three, three_refused, three_seconds, three_peak = hold(
            cluster.proxy_port, count, lambda: [metric(port, "plexor_polls_parked") for port in cluster.status_ports])
        figures = {
            "scenario": "capacity", "connections_limit": limit,
            "one_gateway_parked": alone[0], "one_gateway_refused": alone_refused, "one_gateway_seconds": round(alone_seconds, 1),
            "three_gateways_parked": three, "three_total": sum(three), "three_peak": three_peak, "three_refused": three_refused,
            "three_seconds": round(three_seconds, 1), "ratio": round(sum(three) / alone[0], 3),
        }
        print(json.dumps(figures))
        with open(report, "a") as file:
            file.write(json.dumps(figures) + "\n")
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
