"""Three `plexor serve` processes on one PostgreSQL behind a real nginx with
the repository's docker/nginx.conf: tag affinity, and a gateway drained
(SIGTERM) under parked polls without an error or a lost message reaching
any client. Everything on loopback, every wait bounded.

Run by scripts/scale-test.sh (PLEXOR_BIN names the plexor executable)."""

import asyncio
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

PLEXOR = os.environ.get("PLEXOR_BIN", ".build/debug/plexor")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WAIT = 60  # seconds any one awaited event may take
CHAOS_SECONDS = int(os.environ.get("PLEXOR_CHAOS_SECONDS", "60"))
# Each gateway's flags behind the proxy: docker/compose.yaml gives its gateways the same (docker/check.py checks).
GATEWAY_FLAGS = ["--log-level", "warning", "--max-connections", "20000"]
# Where nginx connects from, here; compose names its network's ranges instead.
TRUSTED_PROXIES = "127.0.0.1"


_handed_out = set()


def free_port():
    """A free port below the kernel's ephemeral range, which tens of thousands of client connections fill,
    and not one this process handed out before (a cluster picks nine at once)."""
    while True:
        port = random.randint(20000, 32000)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port


def metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
    raise KeyError(name)


def wait_until(what, condition, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


class Cluster:
    """One PostgreSQL, three gateways on it, nginx in front. The PostgreSQL is
    the embedded one of a fourth `plexor serve` outside the proxy (it owns the
    cluster), so any of the three may be stopped."""

    def __init__(self, work, nginx_workers=2):
        self.work = work
        self.nginx_workers = nginx_workers
        self.ports = [free_port() for _ in range(3)]
        self.status_ports = [free_port() for _ in range(3)]
        self.proxy_port = free_port()
        self.processes = [None, None, None]
        self.keeper = None
        self.database = f"host={work}/pg port=5432 user=plexor dbname=postgres"

    def spawn(self, port, status_port, arguments, log):
        with open(f"{self.work}/{log}.log", "a") as errors:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen([PLEXOR, "serve", "--port", str(port), "--status-port", str(status_port)] + GATEWAY_FLAGS + arguments,
                                       stdout=subprocess.DEVNULL, stderr=errors)
        wait_until(f"{log} is ready", lambda: self.ready(status_port))
        return process

    def start_gateway(self, index, extra=()):
        arguments = ["--database-url", self.database, "--trusted-proxies", TRUSTED_PROXIES] + list(extra)
        self.processes[index] = self.spawn(self.ports[index], self.status_ports[index], arguments, f"gateway-{index + 1}")

    @staticmethod
    def ready(port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def start(self):
        self.keeper = self.spawn(free_port(), free_port(), ["--data-dir", f"{self.work}/pg", "--presence", "off"], "keeper")
        for index in range(3):
            self.start_gateway(index)
        with open(os.path.join(ROOT, "docker", "nginx.conf")) as template:
            config = template.read()
        values = {"PLEXOR_PROXY_PORT": str(self.proxy_port), "PLEXOR_RUN_DIR": f"{self.work}/nginx",
                  "PLEXOR_NGINX_WORKERS": str(self.nginx_workers)}
        values.update({f"PLEXOR_GATEWAY_{n + 1}": f"127.0.0.1:{port}" for n, port in enumerate(self.ports)})
        values.update({f"PLEXOR_STATUS_{n + 1}": f"127.0.0.1:{port}" for n, port in enumerate(self.status_ports)})
        config = re.sub(r"\$\{(PLEXOR_[A-Z0-9_]+)\}", lambda match: values[match.group(1)], config)
        os.makedirs(f"{self.work}/nginx", exist_ok=True)
        with open(f"{self.work}/nginx/nginx.conf", "w") as file:
            file.write(config)
        started = subprocess.run(["nginx", "-c", f"{self.work}/nginx/nginx.conf", "-p", f"{self.work}/nginx",
                                  "-e", f"{self.work}/nginx/nginx-error.log"], capture_output=True, text=True)
        if started.returncode != 0:
            log = f"{self.work}/nginx/nginx-error.log"
            details = open(log).read()[-2000:] if os.path.exists(log) else ""
            raise RuntimeError(f"nginx did not start: {started.stderr} {details}")

    def stop(self):
        pid_file = f"{self.work}/nginx/nginx.pid"
        if os.path.exists(pid_file):
            with open(pid_file) as file:
                os.kill(int(file.read()), signal.SIGTERM)  # at once: long-polls would hold a graceful stop
        # The keeper stops the PostgreSQL: it goes last.
        for process in self.processes + [self.keeper]:
            if process and process.poll() is None:
                process.terminate()
                process.wait(timeout=WAIT)

    def restart_postgres(self):
        """An immediate stop (a crash, as far as PostgreSQL is concerned), then a start."""
        pg_ctl = max(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        command = [pg_ctl, "-D", f"{self.work}/pg", "-m", "immediate", "-w", "restart"]
        if os.geteuid() == 0:
            command = ["/usr/sbin/runuser", "-u", "postgres", "--"] + command
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    def committed(self, tags):
        """Each tag's messages as the database holds them: seq → data."""
        output = subprocess.run(["psql", self.database, "-AtF", "\t", "-c",
                                 "SELECT l.tag, l.seq, m.data FROM plexor.log l JOIN plexor.messages m ON m.id = l.message_id "
                                 f"WHERE l.tag = ANY ('{{{','.join(tags)}}}') ORDER BY l.tag, l.seq"],
                                check=True, capture_output=True, text=True).stdout
        held = {tag: [] for tag in tags}
        for line in output.splitlines():
            tag, seq, data = line.split("\t", 2)
            held[tag].append((int(seq), json.loads(data)))
        return held

    def publish(self, rows):
        """One INSERT of many rows, as an application would."""
        values = ",".join(f"('{{{tag}}}', '{json.dumps(data)}')" for tag, data in rows)
        subprocess.run(["psql", self.database, "-qc", f"INSERT INTO plexor.messages (tags, data) VALUES {values}"],
                       check=True, stdout=subprocess.DEVNULL)


class Client:
    """A browser's poll loop, as plexor.js does it: cursors, re-poll at once, back off on failure."""

    def __init__(self, port, tags):
        self.port = port
        self.tags = tags
        self.cursors = {tag: None for tag in tags}
        self.received = {tag: [] for tag in tags}
        self.errors = []
        self.answers = 0
        self.data = {}
        self.arrivals = []  # (tag, data, when): for latency

    async def run(self, stop):
        reader = writer = None
        failures = 0
        while not stop.is_set():
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                items = ",".join(tag if self.cursors[tag] is None else f"{tag}@{self.cursors[tag]}" for tag in self.tags)
                writer.write(f"GET /poll?tags={items}&timeout=20 HTTP/1.1\r\nHost: proxy\r\n\r\n".encode())
                status, body = await read_response(reader)
                if status != 200:
                    self.errors.append(f"{status} {body[:120]}")
                    raise ConnectionError(status)
                answer = json.loads(body)
                self.answers += 1
                arrived = time.monotonic()
                for message in answer["messages"]:
                    for tag, seq in message["tags"].items():
                        self.received[tag].append(seq)
                        self.data.setdefault(tag, []).append(message["data"])
                        self.arrivals.append((tag, json.dumps(message["data"], sort_keys=True), arrived))
                self.cursors.update(answer["cursors"])
                failures = 0
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                if writer is not None:
                    writer.close()
                reader = writer = None
                failures += 1
                await asyncio.sleep(random.random() * min(2.0, 0.05 * 2 ** failures))
        if writer is not None:
            writer.close()


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    body = await reader.readexactly(length)
    return status, body.decode()


class ProxyTests(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="plexor-scale-")
        os.chmod(self.work, 0o755)
        self.cluster = Cluster(self.work)
        self.cluster.start()

    def tearDown(self):
        self.cluster.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def parked(self):
        return [metric(port, "plexor_polls_parked") for port in self.cluster.status_ports]

    def test_tag_affinity_gives_each_gateway_a_share_of_the_tags(self):
        tags = [f"aff-{n}" for n in range(3000)]
        clients = [Client(self.cluster.proxy_port, tags[n * 3:(n + 1) * 3]) for n in range(1000)]

        async def scenario():
            stop = asyncio.Event()
            tasks = [asyncio.create_task(client.run(stop)) for client in clients]
            await asyncio.get_running_loop().run_in_executor(None, lambda: wait_until(
                "every client's poll is parked", lambda: sum(self.parked()) == 1000))
            listened = [metric(port, "plexor_listener_tags") for port in self.cluster.status_ports]
            stop.set()
            await asyncio.gather(*tasks)
            return listened

        listened = asyncio.run(scenario())
        print(f"\n  tags LISTENed per gateway, of 3,000: {listened}")
        self.assertEqual(sum(listened), 3000, "each tag is listened by exactly one gateway")
        for count in listened:
            self.assertLessEqual(count, 1200, f"a gateway listens on {count} of 3,000 tags (over 40 %)")
        self.assertTrue(all(not client.errors for client in clients))

    def test_capacity_adds_up_three_gateways_hold_three_times_what_one_holds(self):
        """Each gateway limited to 2,500 connections (standing in, within the test's time, for the 20,000
        descriptors a process gets here): what one holds alone, and what three hold behind nginx."""
        limit = 2500
        for index in range(3):
            self.cluster.processes[index].terminate()
            self.cluster.processes[index].wait(timeout=WAIT)
            self.cluster.start_gateway(index, ["--max-connections", str(limit)])

        async def hold(port, count):
            """Opens `count` polls on distinct tags; returns their tasks and connections, and how many have been refused so far."""
            refused = 0
            connections = []

            async def one(n):
                nonlocal refused
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    connections.append(writer)
                    writer.write(f"GET /poll?tags=cap-{n}&timeout=60 HTTP/1.1\r\nHost: proxy\r\n\r\n".encode())
                    status, _ = await read_response(reader)
                    if status != 200:
                        refused += 1
                except (OSError, asyncio.IncompleteReadError):
                    refused += 1

            tasks = [asyncio.create_task(one(n)) for n in range(count)]
            return tasks, connections, lambda: refused

        async def settle(loop, count, refused, parked):
            """Waits until every poll is either refused or parked; returns the parked counts."""
            counts = []

            def settled():
                counts[:] = parked()
                return sum(counts) + refused() == count

            await loop.run_in_executor(None, lambda: wait_until("every poll is refused or parked", settled))
            return counts

        def release(tasks, connections):
            for writer in connections:
                writer.close()
            for task in tasks:
                task.cancel()

        async def scenario():
            loop = asyncio.get_running_loop()
            # One gateway alone: 500 more polls than it may hold.
            tasks, connections, refused = await hold(self.cluster.ports[0], limit + 500)
            single = (await settle(loop, limit + 500, refused, lambda: self.parked()[:1]))[0]
            release(tasks, connections)
            await loop.run_in_executor(None, lambda: wait_until("the gateway is empty again", lambda: sum(self.parked()) == 0))
            # Three behind nginx: 1,500 more than three times that. Full gateways still answer on their
            # status ports, which the proxy serves at /gateways/N/metrics.
            count = 3 * limit + 1500
            tasks, connections, refused = await hold(self.cluster.proxy_port, count)
            parked = await settle(loop, count, refused, lambda: [self.proxied_metric(n, "plexor_polls_parked") for n in (1, 2, 3)])
            release(tasks, connections)
            return single, parked

        single, parked = asyncio.run(scenario())
        print(f"\n  one gateway held {single:,} polls; three behind nginx held {sum(parked):,} ({parked})")
        self.assertGreaterEqual(single, limit - 5)
        self.assertGreaterEqual(sum(parked), 2.9 * single, "three gateways hold about three times what one holds")

    def test_behind_nginx_the_chats_address_limits_apply_to_each_client_not_to_the_proxy(self):
        subprocess.run(["psql", self.cluster.database, "-qc", "SELECT plexor.chat_site_add('proxied', '{}')"],
                       check=True, stdout=subprocess.DEVNULL)

        def guest_session(source, name, claimed=None):
            """POST /chat/session through nginx from the loopback address `source`; returns the status."""
            with socket.create_connection(("127.0.0.1", self.cluster.proxy_port), timeout=WAIT, source_address=(source, 0)) as connection:
                body = json.dumps({"site": "proxied", "guest": name}).encode()
                forwarded = f"X-Forwarded-For: {claimed}\r\n" if claimed else ""
                connection.sendall(f"POST /chat/session HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                                   f"{forwarded}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
                return int(connection.makefile("rb").readline().split()[1])

        # Guest sessions per address: a burst of 10 (a third of 30 a minute). A client's own
        # X-Forwarded-For, different every time, does not make it someone else.
        first = [guest_session("127.0.0.9", f"Nine{n}", claimed=f"198.51.100.{n}") for n in range(11)]
        self.assertEqual(first, [201] * 10 + [429])
        self.assertEqual(guest_session("127.0.0.10", "Ten"), 201, "another client behind the same proxy has a limit of its own")

    def proxied_metric(self, n, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.cluster.proxy_port}/gateways/{n}/metrics", timeout=10) as response:
            text = response.read().decode()
        return next(int(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))

    def test_a_gateway_drained_under_parked_polls_costs_clients_no_error_and_no_message(self):
        tags = [f"drain-{n}" for n in range(300)]
        clients = [Client(self.cluster.proxy_port, [tags[n % 300]]) for n in range(3600)]

        async def scenario():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            tasks = [asyncio.create_task(client.run(stop)) for client in clients]
            await loop.run_in_executor(None, lambda: wait_until("every poll is parked", lambda: sum(self.parked()) == len(clients)))
            parked = self.parked()
            victim = parked.index(max(parked))
            # Messages before, during and after the drain.
            for round_ in range(3):
                await loop.run_in_executor(None, self.cluster.publish, [(tag, {"round": round_}) for tag in tags])
                if round_ == 0:
                    self.cluster.processes[victim].send_signal(signal.SIGTERM)
                    await loop.run_in_executor(None, self.cluster.processes[victim].wait, WAIT)
            await loop.run_in_executor(None, lambda: wait_until(
                "every client has all three rounds", lambda: all(len(client.received[client.tags[0]]) >= 3 for client in clients)))
            stop.set()
            await asyncio.gather(*tasks)
            return parked, victim

        parked, victim = asyncio.run(scenario())
        print(f"\n  polls parked per gateway before the drain: {parked}; gateway {victim + 1} drained")
        self.assertGreaterEqual(parked[victim], 1000)
        for client in clients:
            self.assertEqual(client.errors, [], "a client saw an error")
            self.assertEqual(client.received[client.tags[0]], [1, 2, 3], "lost, repeated or out of order")
        self.cluster.processes[victim] = None

    def test_chaos_gateways_killed_and_drained_and_postgresql_restarted_lose_nothing(self):
        """8 publishers over 100 tags (single rows, multi-row, transactions, some rolled back), 300 looping
        clients through nginx; meanwhile gateways are killed (-9) and drained (SIGTERM) and restarted, and
        PostgreSQL is restarted once. At the end every client holds every committed message of its tags
        exactly once, in order, and no rolled-back one."""
        tags = [f"chaos-{n}" for n in range(100)]
        clients = [Client(self.cluster.proxy_port, [tags[n % 100], tags[(n * 7 + 3) % 100]] if n % 3 == 0 else [tags[n % 100]])
                   for n in range(300)]
        for client in clients:
            client.cursors = {tag: 0 for tag in client.tags}  # from the beginning: everything committed is theirs
        stop_publishing = threading.Event()
        published = {"committed": 0, "rolled back": 0, "failed": 0}
        counting = threading.Lock()
        acknowledged = {}  # (tag, data) → when its commit returned
        faults = []  # (start, end) of each fault, until the restarted part is ready

        def publisher(number):
            generator = random.Random(number)
            n = 0
            while not stop_publishing.is_set():
                n += 1
                kind = ("row", "rows", "transaction", "rollback")[n % 4]
                chosen = generator.sample(tags, 3)
                data = lambda tag: json.dumps({"p": number, "n": n, "tag": tag, "kind": kind})
                if kind == "row":
                    sql = f"INSERT INTO plexor.messages (tags, data) VALUES ('{{{chosen[0]}}}', '{data(chosen[0])}')"
                elif kind == "rows":
                    sql = "INSERT INTO plexor.messages (tags, data) VALUES " + ",".join(f"('{{{tag}}}', '{data(tag)}')" for tag in chosen)
                else:
                    end = "ROLLBACK" if kind == "rollback" else "COMMIT"
                    sql = "BEGIN; " + "; ".join(f"INSERT INTO plexor.messages (tags, data) VALUES ('{{{tag}}}', '{data(tag)}')"
                                                for tag in chosen) + f"; {end}"
                result = subprocess.run(["psql", self.cluster.database, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                done = time.monotonic()
                with counting:  # a failed one (PostgreSQL restarting) may or may not have committed: the database says
                    published["failed" if result.returncode else "rolled back" if kind == "rollback" else "committed"] += 1
                    if not result.returncode and kind != "rollback":
                        for tag in (chosen[:1] if kind == "row" else chosen):
                            acknowledged[(tag, json.dumps(json.loads(data(tag)), sort_keys=True))] = done
                stop_publishing.wait(0.05)

        def chaos():
            # Every few seconds a gateway: killed and restarted, or drained and restarted; PostgreSQL once.
            started = time.monotonic()
            step = 0
            while time.monotonic() - started < CHAOS_SECONDS - 10:
                stop_publishing.wait(4)
                index = step % 3
                began = time.monotonic()
                if step == 2:
                    self.cluster.restart_postgres()
                elif step % 2 == 0:
                    self.cluster.processes[index].kill()
                    self.cluster.processes[index].wait(timeout=WAIT)
                    self.cluster.start_gateway(index)
                else:
                    self.cluster.processes[index].terminate()
                    self.cluster.processes[index].wait(timeout=WAIT)
                    self.cluster.start_gateway(index)
                faults.append((began, time.monotonic()))
                step += 1
            return step

        async def scenario():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            tasks = [asyncio.create_task(client.run(stop)) for client in clients]
            publishers = [threading.Thread(target=publisher, args=(number,)) for number in range(8)]
            for thread in publishers:
                thread.start()
            steps = await loop.run_in_executor(None, chaos)
            stop_publishing.set()
            for thread in publishers:
                thread.join(timeout=WAIT)
            held = await loop.run_in_executor(None, self.cluster.committed, tags)
            last = {tag: len(entries) for tag, entries in held.items()}
            await loop.run_in_executor(None, lambda: wait_until("every client has caught up", lambda: all(
                len(client.received[tag]) >= last[tag] for client in clients for tag in client.tags), timeout=WAIT))
            stop.set()
            await asyncio.gather(*tasks)
            return held, steps

        held, steps = asyncio.run(scenario())
        report = chaos_report(clients, held, acknowledged, faults)
        print(f"\n  {steps} faults; transactions {published}; {report['messages']} messages committed; {report['deliveries']} deliveries; "
              f"lost {report['lost']}, duplicates {report['duplicates']}, out of order {report['out_of_order']}; "
              f"commit → client median/p99 {report['median_ms']:.1f}/{report['p99_ms']:.1f} ms outside faults, "
              f"{report['fault_median_ms']:.1f}/{report['fault_p99_ms']:.1f} ms during them (and 5 s after); "
              f"errors seen by clients: {sum(len(client.errors) for client in clients)}")
        if os.environ.get("PLEXOR_CHAOS_REPORT"):
            with open(os.environ["PLEXOR_CHAOS_REPORT"], "a") as file:
                file.write(json.dumps({"scenario": "chaos", "server": "plexor", "seconds": CHAOS_SECONDS, "faults": steps,
                                       **published, **report}) + "\n")
        self.assertGreater(published["committed"], 100)
        self.assertGreater(published["rolled back"], 10)
        for client in clients:
            for tag in client.tags:
                expected = [seq for seq, _ in held[tag]]
                self.assertEqual(expected, list(range(1, len(expected) + 1)), f"{tag}: the database's seqs have a hole")
                self.assertEqual(client.received[tag], expected, f"{tag}: lost, repeated or out of order")
                self.assertEqual(client.data[tag], [data for _, data in held[tag]], f"{tag}: not what was committed")
                self.assertFalse(any(data.get("kind") == "rollback" for data in client.data[tag]), "a rolled-back message arrived")


def chaos_report(clients, held, acknowledged, faults):
    """What every client got against what the database committed; latency from the commit's acknowledgement to the client."""
    lost = duplicates = out_of_order = deliveries = 0
    for client in clients:
        for tag in client.tags:
            got = client.received[tag]
            deliveries += len(got)
            expected = [seq for seq, _ in held[tag]]
            lost += len(set(expected) - set(got))
            duplicates += len(got) - len(set(got))
            out_of_order += sum(1 for a, b in zip(got, got[1:]) if b < a)
    calm, faulty = [], []
    for client in clients:
        for tag, data, arrived in client.arrivals:
            committed = acknowledged.get((tag, data))
            if committed is None:
                continue  # its commit's outcome was never acknowledged (PostgreSQL restarting)
            during = any(start <= committed <= end + 5 for start, end in faults)
            (faulty if during else calm).append(max(0.0, arrived - committed) * 1000)
    percentile = lambda values, q: sorted(values)[min(len(values) - 1, int(len(values) * q))] if values else float("nan")
    return {"messages": sum(len(entries) for entries in held.values()), "deliveries": deliveries, "lost": lost,
            "duplicates": duplicates, "out_of_order": out_of_order,
            "median_ms": percentile(calm, 0.5), "p99_ms": percentile(calm, 0.99),
            "fault_median_ms": percentile(faulty, 0.5), "fault_p99_ms": percentile(faulty, 0.99)}


if __name__ == "__main__":
    unittest.main(verbosity=2)
