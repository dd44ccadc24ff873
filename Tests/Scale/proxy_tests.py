"""Three `plexor serve` processes on one PostgreSQL behind a real nginx with
the repository's docker/nginx.conf: tag affinity, and a gateway drained
(SIGTERM) under parked polls without an error or a lost message reaching
any client. Everything on loopback, every wait bounded.

Run by scripts/scale-test.sh (PLEXOR_BIN names the plexor executable)."""

import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

PLEXOR = os.environ.get("PLEXOR_BIN", ".build/debug/plexor")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WAIT = 60  # seconds any one awaited event may take


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    def __init__(self, work):
        self.work = work
        self.ports = [free_port() for _ in range(3)]
        self.proxy_port = free_port()
        self.processes = [None, None, None]
        self.keeper = None
        self.database = f"host={work}/pg port=5432 user=plexor dbname=postgres"

    def spawn(self, port, arguments, log):
        with open(f"{self.work}/{log}.log", "a") as errors:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen([PLEXOR, "serve", "--port", str(port), "--log-level", "warning", "--max-connections", "20000"]
                                       + arguments, stdout=subprocess.DEVNULL, stderr=errors)
        wait_until(f"{log} is ready", lambda: self.ready(port))
        return process

    def start_gateway(self, index):
        self.processes[index] = self.spawn(self.ports[index], ["--database-url", self.database], f"gateway-{index + 1}")

    @staticmethod
    def ready(port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def start(self):
        self.keeper = self.spawn(free_port(), ["--data-dir", f"{self.work}/pg", "--presence", "off"], "keeper")
        for index in range(3):
            self.start_gateway(index)
        with open(os.path.join(ROOT, "docker", "nginx.conf")) as template:
            config = template.read()
        values = {"PLEXOR_PROXY_PORT": str(self.proxy_port), "PLEXOR_RUN_DIR": f"{self.work}/nginx"}
        values.update({f"PLEXOR_GATEWAY_{n + 1}": f"127.0.0.1:{port}" for n, port in enumerate(self.ports)})
        config = re.sub(r"\$\{(PLEXOR_[A-Z0-9_]+)\}", lambda match: values[match.group(1)], config)
        os.makedirs(f"{self.work}/nginx", exist_ok=True)
        with open(f"{self.work}/nginx/nginx.conf", "w") as file:
            file.write(config)
        subprocess.run(["nginx", "-c", f"{self.work}/nginx/nginx.conf", "-p", f"{self.work}/nginx", "-e", f"{self.work}/nginx/nginx-error.log"],
                       check=True)

    def stop(self):
        pid_file = f"{self.work}/nginx/nginx.pid"
        if os.path.exists(pid_file):
            with open(pid_file) as file:
                os.kill(int(file.read()), signal.SIGQUIT)
        # The keeper stops the PostgreSQL: it goes last.
        for process in self.processes + [self.keeper]:
            if process and process.poll() is None:
                process.terminate()
                process.wait(timeout=WAIT)

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
                for message in answer["messages"]:
                    for tag, seq in message["tags"].items():
                        self.received[tag].append(seq)
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
        return [metric(port, "plexor_polls_parked") for port in self.cluster.ports]

    def test_tag_affinity_gives_each_gateway_a_share_of_the_tags(self):
        tags = [f"aff-{n}" for n in range(3000)]
        clients = [Client(self.cluster.proxy_port, tags[n * 3:(n + 1) * 3]) for n in range(1000)]

        async def scenario():
            stop = asyncio.Event()
            tasks = [asyncio.create_task(client.run(stop)) for client in clients]
            await asyncio.get_running_loop().run_in_executor(None, lambda: wait_until(
                "every client's poll is parked", lambda: sum(self.parked()) == 1000))
            listened = [metric(port, "plexor_listener_tags") for port in self.cluster.ports]
            stop.set()
            await asyncio.gather(*tasks)
            return listened

        listened = asyncio.run(scenario())
        print(f"\n  tags LISTENed per gateway, of 3,000: {listened}")
        self.assertEqual(sum(listened), 3000, "each tag is listened by exactly one gateway")
        for count in listened:
            self.assertLessEqual(count, 1200, f"a gateway listens on {count} of 3,000 tags (over 40 %)")
        self.assertTrue(all(not client.errors for client in clients))

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
