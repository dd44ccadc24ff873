"""The browser client and the front page in a real headless Chromium, against
a real `plexor serve` with its own PostgreSQL. The page under test is served
from another origin (http://127.0.0.1:PORT) than the gateway
(http://localhost:PORT), as a site embedding Plexor would be.

Run by scripts/browser-test.sh (PLEXOR_BIN names the plexor executable)."""

import glob
import http.server
import json
import os
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

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

PLEXOR = os.environ.get("PLEXOR_BIN", ".build/debug/plexor")
ARTIFACTS = os.environ.get("PLEXOR_BROWSER_ARTIFACTS", ".build/browser-artifacts")
WAIT = 30  # seconds any one awaited event may take

PAGE = """<!doctype html>
<script type="module">
  const gateway = new URLSearchParams(location.search).get("gateway");
  const tags = new URLSearchParams(location.search).get("tags").split(",");
  const { Plexor } = await import(gateway + "/plexor.js");
  window.received = [];
  window.visibility = [];  // the tab's state at each delivery
  window.statuses = [];
  window.plexor = new Plexor(gateway, { storageKey: "plexor-test" });
  window.plexor.on("status", (status) => window.statuses.push(status));
  window.subscriptions = tags.map((tag) =>
    window.plexor.subscribe(tag, (m) => {
      window.received.push([m.tag, m.seq, m.data]);
      window.visibility.push(document.visibilityState);
    }));
  window.ready = true;
</script>
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """`plexor serve` with its embedded PostgreSQL in a directory of its own."""

    def __init__(self, directory, port, extra=()):
        self.directory = directory
        self.port = port
        self.extra = list(extra)
        self.process = None
        self.publish_url = None

    def start(self):
        self.process = subprocess.Popen(
            [PLEXOR, "serve", "--data-dir", self.directory, "--port", str(self.port), "--log-level", "warning",
             "--api-token", "browser-test"] + self.extra,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        welcome = ""
        while "publish one:" not in welcome:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("plexor serve exited: " + welcome)
            welcome += line
        self.publish_url = re.search(r"psql '([^']+)'", welcome).group(1)
        deadline = time.time() + WAIT
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz") as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the gateway did not become ready")

    def kill(self):
        """kill -9: no drain, no goodbye (its PostgreSQL keeps running)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=WAIT)
        self.process.stdout.close()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=WAIT)
            self.process.stdout.close()

    def restart_postgres(self):
        """An immediate stop (a crash, as far as PostgreSQL is concerned), then a start."""
        pg_ctl = max(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        command = [pg_ctl, "-D", self.directory, "-m", "immediate", "-w", "restart"]
        if os.geteuid() == 0:
            command = ["/usr/sbin/runuser", "-u", "postgres", "--"] + command
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    def publish(self, tags, data):
        literal = "{" + ",".join(tags) + "}"
        subprocess.run(["psql", self.publish_url, "-qc",
                        f"INSERT INTO plexor.messages (tags, data) VALUES ('{literal}', '{json.dumps(data)}')"],
                       check=True, stdout=subprocess.DEVNULL)

    def metric(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics") as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return int(line.split()[1])
        raise KeyError(name)


def serve_pages(work, files):
    """Serves `files` (name → text) from http://127.0.0.1:PORT, another origin than the gateway's."""
    pages = os.path.join(work, "pages")
    os.mkdir(pages)
    for name, text in files.items():
        with open(os.path.join(pages, name), "w") as f:
            f.write(text)
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=pages)
    http.server.SimpleHTTPRequestHandler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def shut_down(driver, pages, gateway, work):
    """What a test class set up, in reverse."""
    driver.quit()
    pages.shutdown()
    pages.server_close()
    gateway.stop()
    shutil.rmtree(work, ignore_errors=True)


def new_driver(profile):
    """Debian's headless Chromium with a fresh profile (third-party cookies blocked, as in one), its console kept."""
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", f"--user-data-dir={profile}"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


class ReceivingPage:
    """For test classes whose page pushes what it receives to `window.received`."""

    def received(self):
        return [tuple(entry) for entry in self.driver.execute_script("return window.received")]

    def wait_for(self, what, condition):
        try:
            WebDriverWait(self.driver, WAIT, poll_frequency=0.05).until(lambda d: condition())
        except Exception as error:
            logs = [entry["message"] for entry in self.driver.get_log("browser")]
            raise AssertionError(f"timed out waiting until {what}; received {self.received()}; console {logs}") from error


class BrowserTests(ReceivingPage, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="plexor-browser-")
        os.chmod(cls.work, 0o755)
        cls.gateway = Gateway(os.path.join(cls.work, "db"), free_port())
        cls.gateway.start()
        cls.pages = serve_pages(cls.work, {"page.html": PAGE})
        cls.driver = new_driver(f"{cls.work}/profile")
        os.makedirs(ARTIFACTS, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        shut_down(cls.driver, cls.pages, cls.gateway, cls.work)

    def open_page(self, tags):
        url = (f"http://127.0.0.1:{self.pages.server_address[1]}/page.html"
               f"?gateway=http://localhost:{self.gateway.port}&tags={','.join(tags)}")
        self.driver.get(url)
        WebDriverWait(self.driver, WAIT).until(lambda d: d.execute_script("return window.ready === true"))

    def wait_parked(self, count):
        self.wait_for(f"{count} poll(s) are parked", lambda: self.gateway.metric("plexor_polls_parked") == count)

    def tearDown(self):
        self.driver.execute_script("window.plexor?.close(); sessionStorage.clear()")
        self.driver.get("about:blank")
        self.wait_parked(0)

    def test_a_page_on_another_origin_receives_three_tags_published_by_sql(self):
        self.open_page(["x-a", "x-b", "x-c"])
        self.wait_parked(1)
        self.gateway.publish(["x-a"], 1)
        self.gateway.publish(["x-b", "x-c"], 2)
        self.gateway.publish(["x-c"], 3)
        expected = [("x-a", 1, 1), ("x-b", 1, 2), ("x-c", 1, 2), ("x-c", 2, 3)]
        self.wait_for("all four deliveries arrive", lambda: len(self.received()) >= 4)
        self.assertEqual(sorted(self.received()), sorted(expected))

    def test_a_page_in_a_background_tab_keeps_receiving(self):
        self.open_page(["bg-news"])
        self.wait_parked(1)
        page = self.driver.current_window_handle
        delivered = self.gateway.metric("plexor_messages_delivered_total")
        self.driver.switch_to.new_window("tab")  # the page's tab is now in the background
        try:
            for n in range(1, 4):
                self.gateway.publish(["bg-news"], n)
            # Seen from the gateway: the page keeps polling while hidden.
            self.wait_for("the hidden page is sent all three", lambda:
                          self.gateway.metric("plexor_messages_delivered_total") >= delivered + 3
                          and self.gateway.metric("plexor_polls_parked") == 1)
        finally:
            self.driver.close()
            self.driver.switch_to.window(page)
        self.assertEqual(self.received(), [("bg-news", n, n) for n in range(1, 4)])
        self.assertEqual(self.driver.execute_script("return window.visibility"), ["hidden"] * 3)

    def test_a_hundred_subscriptions_ride_one_poll(self):
        tags = [f"h-{i}" for i in range(100)]
        self.open_page(tags)
        self.wait_parked(1)
        self.gateway.publish(["h-57"], "one")
        self.wait_for("h-57's message arrives", lambda: self.received() == [("h-57", 1, "one")])
        self.wait_parked(1)

    def test_unsubscribing_stops_delivery(self):
        self.open_page(["u-gone", "u-kept"])
        self.wait_parked(1)
        self.driver.execute_script("window.subscriptions[0].unsubscribe()")
        self.gateway.publish(["u-gone"], "not for the page")
        self.gateway.publish(["u-kept"], "for the page")
        self.wait_for("u-kept's message arrives", lambda: ("u-kept", 1, "for the page") in self.received())
        self.assertEqual(self.received(), [("u-kept", 1, "for the page")])

    def test_every_message_once_and_in_order_across_a_gateway_killed_and_restarted(self):
        self.open_page(["r-stream"])
        self.wait_parked(1)
        for n in range(1, 11):
            self.gateway.publish(["r-stream"], n)
        self.wait_for("the first ten arrive", lambda: len(self.received()) == 10)
        self.gateway.kill()
        for n in range(11, 21):
            self.gateway.publish(["r-stream"], n)  # PostgreSQL is up; the gateway is not
        self.gateway.start()
        self.wait_for("all twenty arrive", lambda: len(self.received()) >= 20)
        self.assertEqual(self.received(), [("r-stream", n, n) for n in range(1, 21)])

    def test_every_message_once_and_in_order_across_a_postgresql_restart(self):
        self.open_page(["p-stream"])
        self.wait_parked(1)
        for n in range(1, 11):
            self.gateway.publish(["p-stream"], n)
        self.wait_for("the first ten arrive", lambda: len(self.received()) == 10)
        self.gateway.restart_postgres()
        for n in range(11, 21):
            self.gateway.publish(["p-stream"], n)
        self.wait_for("all twenty arrive", lambda: len(self.received()) >= 20)
        self.assertEqual(self.received(), [("p-stream", n, n) for n in range(1, 21)])

    def test_the_readme_example_works_as_it_is(self):
        with open("README.md") as f:
            example = re.search(r"```html\n(.*?)```", f.read(), re.S).group(1)
        page = os.path.join(self.work, "readme-example.html")
        with open(page, "w") as f:
            f.write(example.replace("http://127.0.0.1:8080", f"http://127.0.0.1:{self.gateway.port}"))
        self.driver.get("file://" + page)
        self.wait_parked(1)
        self.gateway.publish(["chat"], {"text": "from the README"})
        self.wait_for("the message is listed", lambda: self.driver.execute_script(
            "return document.querySelectorAll('#log li').length") == 1)
        text = self.driver.execute_script("return document.querySelector('#log li').textContent")
        self.assertRegex(text, r'^chat #\d+: \{"text":"from the README"\}$')

    def test_a_reload_resumes_from_the_stored_cursors_without_loss_or_repeat(self):
        self.open_page(["s-log"])
        self.wait_parked(1)
        for n in range(1, 4):
            self.gateway.publish(["s-log"], n)
        self.wait_for("the first three arrive", lambda: len(self.received()) == 3)
        self.driver.execute_script("window.plexor.close()")
        self.wait_parked(0)
        self.gateway.publish(["s-log"], 4)  # while the page is away
        self.driver.refresh()
        WebDriverWait(self.driver, WAIT).until(lambda d: d.execute_script("return window.ready === true"))
        self.gateway.publish(["s-log"], 5)
        self.wait_for("4 and 5 arrive", lambda: len(self.received()) >= 2)
        self.assertEqual(self.received(), [("s-log", 4, 4), ("s-log", 5, 5)])

    def test_the_front_page_shows_live_figures_and_receives_in_its_try_it_panel(self):
        self.driver.set_window_size(1200, 900)
        self.driver.get(f"http://localhost:{self.gateway.port}/")
        self.wait_for("the figures are shown", lambda: self.driver.execute_script(
            "return /^[0-9]+$/.test(document.getElementById('parked').textContent)"))
        self.wait_parked(1)
        self.gateway.publish(["chat"], {"text": "<b>hi</b>"})
        self.wait_for("the message is listed", lambda: self.driver.execute_script(
            "return document.querySelectorAll('#messages li').length") == 1)
        item = self.driver.execute_script("return document.querySelector('#messages li').innerHTML")
        self.assertIn("&lt;b&gt;hi&lt;/b&gt;", item)  # shown as text, never as HTML
        self.driver.save_screenshot(os.path.join(ARTIFACTS, "front-page.png"))
        # On a phone: one column, nothing wider than the screen.
        self.driver.set_window_size(390, 844)
        self.assertLessEqual(self.driver.execute_script("return document.documentElement.scrollWidth"),
                             self.driver.execute_script("return window.innerWidth"))
        self.driver.save_screenshot(os.path.join(ARTIFACTS, "front-page-phone.png"))
        self.driver.set_window_size(1200, 900)


if __name__ == "__main__":
    unittest.main(verbosity=2)
