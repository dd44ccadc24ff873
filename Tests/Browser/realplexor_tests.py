"""Realplexor's JavaScript API, served by Plexor's WAIT port
(?identifier=SCRIPT), in a real headless Chromium on another origin: a page
written for Realplexor receives what is sent through the IN port (as a
site's PHP does) and what is INSERTed with SQL.

Run by scripts/browser-test.sh (PLEXOR_BIN names the plexor executable)."""

import os
import socket
import tempfile
import unittest

from browser_tests import WAIT, Gateway, ReceivingPage, free_port, new_driver, serve_pages, shut_down

# A page as sites wrote them for Realplexor: only the script's host changed.
PAGE = """<!doctype html>
<script src="http://localhost:{wait}/?identifier=SCRIPT"></script>
<script>
  window.received = [];
  const realplexor = new Dklab_Realplexor("http://localhost:{wait}/", "demo_");
  realplexor.subscribe("room", (data, id, cursor) => window.received.push([id, cursor, data]));
  realplexor.subscribe("alerts", (data, id, cursor) => window.received.push([id, cursor, data]));
  // From the start: without a cursor an id is followed "from now", fixed only once the
  // gateway has read where each id stands, which a message sent meanwhile may precede.
  realplexor.setCursor("room", "0");
  realplexor.setCursor("alerts", "0");
  realplexor.execute();
  window.later = () => {{
    realplexor.unsubscribe("alerts", null);
    realplexor.execute();
  }};
</script>
"""


def send(port, identifier, body):
    """One IN request as the PHP API makes it: the request, a half-close, the reply read to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as connection:
        connection.sendall(f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
                           f"X-Realplexor: identifier={identifier}\r\n\r\n{body}".encode())
        connection.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := connection.recv(4096):
            reply += chunk
    return reply.decode()


class RealplexorBrowserTests(ReceivingPage, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="plexor-realplexor-")
        os.chmod(cls.work, 0o755)
        cls.wait_port, cls.in_port = free_port(), free_port()
        cls.gateway = Gateway(os.path.join(cls.work, "db"), free_port(),
                              ["--realplexor-wait-port", str(cls.wait_port), "--realplexor-in-port", str(cls.in_port)])
        cls.gateway.start()
        cls.pages = serve_pages(cls.work, {"realplexor.html": PAGE.format(wait=cls.wait_port)})
        cls.driver = new_driver(f"{cls.work}/profile")

    @classmethod
    def tearDownClass(cls):
        shut_down(cls.driver, cls.pages, cls.gateway, cls.work)

    def test_a_realplexor_page_on_another_origin_receives_what_in_and_sql_send(self):
        self.driver.get(f"http://127.0.0.1:{self.pages.server_address[1]}/realplexor.html")
        self.wait_for("the page's poll is parked", lambda: self.gateway.metric("plexor_polls_parked") == 1)
        reply = send(self.in_port, "demo_room,demo_alerts", '{"text": "through IN"}')
        self.assertEqual(reply, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n")
        self.gateway.publish(["demo_alerts"], {"text": "through SQL"})
        expected = [("room", "1", {"text": "through IN"}), ("alerts", "1", {"text": "through IN"}),
                    ("alerts", "2", {"text": "through SQL"})]
        self.wait_for("the page received all three", lambda: sorted(self.received()) == sorted(expected))
        # Unsubscribing (then execute(), as Realplexor's API wants) stops delivery of that id only.
        self.driver.execute_script("window.later()")
        send(self.in_port, "demo_alerts", '"not wanted"')
        send(self.in_port, "demo_room", '"wanted"')
        self.wait_for("the page received the room's message", lambda: ("room", "2", "wanted") in self.received())
        self.assertNotIn(("alerts", "3", "not wanted"), self.received())


if __name__ == "__main__":
    unittest.main(verbosity=2)
