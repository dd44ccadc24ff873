"""The chat widget in a real headless Chromium, as webmasters embed it: host
pages on http://127.0.0.1:PORT (other sites), the widget from the gateway at
http://localhost:PORT, two independent browser profiles (two people), third-
party cookies blocked as in a fresh profile. Against a real `plexor serve`
with its own PostgreSQL.

Run by scripts/browser-test.sh (PLEXOR_BIN names the plexor executable)."""

import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from browser_tests import ARTIFACTS, PLEXOR, WAIT, Gateway, free_port, new_driver
from oidc_provider import Provider

HOST_PAGE = """<!doctype html>
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<h1>{title}</h1>
<p>Unread: <span id="unread">0</span></p>
<iframe id="chat" src="{gateway}/embed?room={room}{options}" title="Live chat" width="360" height="520"
        style="border:1px solid #ccc" sandbox="allow-scripts allow-same-origin allow-popups allow-forms"></iframe>
<script src="{gateway}/embed.js" async {token}></script>
<script>
  document.getElementById("chat").addEventListener("plexor:unread", (event) => {{
    document.getElementById("unread").textContent = String(event.detail.count);
  }});
</script>
"""


# The contrast ratio of each kind of text in the widget against its background (WCAG 2 relative luminance).
CONTRASTS = """
const luminance = (color) => {
  const [r, g, b] = color.match(/[0-9.]+/g).slice(0, 3).map((v) => {
    const c = Number(v) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const background = (element) => {
  for (let e = element; e; e = e.parentElement) {
    const color = getComputedStyle(e).backgroundColor;
    if (!color.startsWith("rgba(0, 0, 0, 0)") && color !== "transparent") return color;
  }
  return "rgb(255, 255, 255)";
};
const ratios = {};
for (const selector of [".text", ".name", ".time", ".badge", ".title", "#send", ".people .name", ".account"]) {
  const element = document.querySelector(selector);
  if (!element) continue;
  const [a, b] = [luminance(getComputedStyle(element).color), luminance(background(element))];
  ratios[selector] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}
return ratios;
"""


def site_token(secret, sub, name, mod=False, lifetime=300):
    """What a site's backend signs for its signed-in user (as README's examples do)."""
    b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": sub, "name": name, "mod": mod, "exp": int(time.time()) + lifetime}).encode())
    signature = b64(hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest())
    return f"{header}.{claims}.{signature}"


class HostSite:
    """A website that embeds the chat: its pages, and a token endpoint standing for its backend."""

    def __init__(self, gateway_origin, secret_for):
        self.gateway_origin = gateway_origin
        self.secret_for = secret_for
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/token":
                    body = site_token(site.secret_for(query["site"]), query["sub"], query["name"], query.get("mod") == "1")
                    content_type = "text/plain"
                elif url.path == "/forged-token":
                    body = site_token("not the site's secret", "u-1", "Mallory")
                    content_type = "text/plain"
                elif url.path == "/page":
                    token = ""
                    if "as" in query:
                        mod = "&mod=1" if query.get("mod") == "1" else ""
                        token = f'data-token-url="/token?site={query["room"].split("/")[0]}&sub={query["as"]}&name={query["name"]}{mod}"'
                    elif "forged" in query:
                        token = 'data-token-url="/forged-token"'
                    options = "".join(f"&{key}={urllib.parse.quote(query[key])}" for key in ("theme", "lang", "accent") if key in query)
                    body = HOST_PAGE.format(title=query.get("title", "A site"), gateway=site.gateway_origin,
                                            room=query["room"], options=options, token=token)
                    if "bare" in query:  # the chat alone, filling a phone's screen
                        body = body.replace("<h1>", "<h1 hidden>").replace("<p>", "<p hidden>").replace(
                            'width="360" height="520"\n        style="border:1px solid #ccc"',
                            'data-autoresize="off" style="border:0;position:fixed;inset:0;width:100%;height:100%"')
                    content_type = "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, room, **query):
        return f"{self.origin}/page?" + urllib.parse.urlencode({"room": room, **query})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Person:
    """One browser profile with the widget open in a host page."""

    def __init__(self, driver):
        self.driver = driver

    def open(self, url):
        self.driver.switch_to.default_content()
        self.driver.get(url)
        self.enter()

    def enter(self):
        self.driver.switch_to.default_content()
        frame = WebDriverWait(self.driver, WAIT).until(lambda d: d.find_element(By.ID, "chat"))
        self.driver.switch_to.frame(frame)
        self.wait("the widget has loaded its history", lambda: self.driver.execute_script(
            "return document.getElementById('join') && (!document.getElementById('join').hidden"
            " || !document.getElementById('composer').hidden)"))

    def wait(self, what, condition, timeout=WAIT):
        try:
            WebDriverWait(self.driver, timeout, poll_frequency=0.02).until(lambda d: condition())
        except Exception as error:
            raise AssertionError(f"timed out waiting until {what}; log: {self.texts()}") from error

    def join(self, name):
        self.driver.find_element(By.ID, "nickname").send_keys(name)
        self.driver.find_element(By.ID, "join-button").click()
        self.wait(f"{name} has joined", lambda: self.driver.find_element(By.ID, "composer").is_displayed())

    def post(self, text):
        """Types `text` (a newline as Shift+Enter, as a person would) and sends it with Enter."""
        box = self.driver.find_element(By.ID, "text")
        box.send_keys((Keys.SHIFT + Keys.ENTER + Keys.NULL).join(text.split("\n")))
        box.send_keys(Keys.ENTER)

    def texts(self):
        try:
            return self.driver.execute_script(
                "return [...document.querySelectorAll('#log .msg:not(.pending) .text')].map((p) => p.textContent)")
        except Exception:
            return None

    def people(self):
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#people-list .name')].map((n) => n.textContent)")

    def status(self):
        return self.driver.find_element(By.ID, "status").text


class WidgetTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="plexor-widget-")
        os.chmod(cls.work, 0o755)
        port = free_port()
        cls.gateway_origin = f"http://localhost:{port}"
        cls.provider = Provider("plexor-test", "provider-secret", cls.gateway_origin + "/signin/oidc/callback")
        cls.gateway = Gateway(os.path.join(cls.work, "db"), port, extra=[
            "--presence-grace", "2", "--guest-sessions-per-minute", "600", "--public-url", cls.gateway_origin,
            "--oidc-issuer", cls.provider.issuer, "--oidc-client-id", "plexor-test", "--oidc-name", "Test ID"])
        os.environ["PLEXOR_OIDC_CLIENT_SECRET"] = "provider-secret"  # a secret goes in the environment
        cls.gateway.start()
        cls.secrets = {}
        cls.site1 = HostSite(cls.gateway_origin, cls.secrets.__getitem__)
        cls.site2 = HostSite(cls.gateway_origin, cls.secrets.__getitem__)
        cls.stranger = HostSite(cls.gateway_origin, cls.secrets.__getitem__)
        cls.add_site("site1", cls.site1.origin)
        cls.add_site("site2", cls.site2.origin)
        # The tests post faster than people do: the rate limits are tested in the Swift suite.
        subprocess.run([PLEXOR, "site", "set", "site1", "--guest-rate", "6000", "--ip-rate", "60000",
                        "--data-dir", cls.gateway.directory], check=True, capture_output=True)
        cls.a = Person(new_driver(os.path.join(cls.work, "profile-a")))
        cls.b = Person(new_driver(os.path.join(cls.work, "profile-b")))
        os.makedirs(ARTIFACTS, exist_ok=True)

    @classmethod
    def add_site(cls, name, origin):
        output = subprocess.run([PLEXOR, "site", "add", name, "--origin", origin, "--url", cls.gateway_origin,
                                 "--data-dir", cls.gateway.directory], check=True, capture_output=True, text=True).stdout
        cls.secrets[name] = next(line.strip() for line in output.splitlines() if len(line.strip()) == 64)

    @classmethod
    def tearDownClass(cls):
        for person in (cls.a, cls.b):
            person.driver.quit()
        for site in (cls.site1, cls.site2, cls.stranger, cls.provider):
            site.close()
        cls.gateway.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def tearDown(self):
        # Each test starts signed out: the widget's storage (in its frame, or at the top) is cleared.
        for person in (self.a, self.b):
            driver = person.driver
            driver.switch_to.default_content()
            for frame in driver.find_elements(By.CSS_SELECTOR, "iframe#chat"):
                driver.switch_to.frame(frame)
                driver.execute_script("try { localStorage.clear() } catch {}")
                driver.switch_to.default_content()
            driver.execute_script("try { localStorage.clear() } catch {}")
            driver.get("about:blank")

    def backend(self, room, body):
        """The site's backend moderating with its secret."""
        site = room.split("/")[0]
        request = urllib.request.Request(f"http://127.0.0.1:{self.gateway.port}/chat/{room}/moderation",
                                         data=json.dumps(body).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {self.secrets[site]}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            self.assertEqual(response.status, 200)

    def test_guests_talk_and_see_each_other_present_until_one_leaves(self):
        room = "site1/lobby"
        self.a.open(self.site1.url(room))
        self.b.open(self.site1.url(room))
        self.a.join("Ann")
        self.b.join("Bob")
        self.a.post("hello from Ann")
        started = time.monotonic()
        self.b.wait("Bob sees Ann's message", lambda: "hello from Ann" in (self.b.texts() or []))
        self.assertLess(time.monotonic() - started, 1.0, "a message takes longer than a second to arrive")
        self.a.wait("Ann's own message is confirmed", lambda: "hello from Ann" in (self.a.texts() or []))
        # Green dots: each sees the other.
        self.a.wait("Ann sees Bob here", lambda: sorted(self.a.people()) == ["Ann", "Bob"])
        self.b.wait("Bob sees Ann here", lambda: sorted(self.b.people()) == ["Ann", "Bob"])
        # Bob closes the page: after the grace period (2 s here), Ann no longer sees him.
        self.b.driver.switch_to.default_content()
        self.b.driver.get("about:blank")
        self.a.wait("Bob's dot is gone", lambda: self.a.people() == ["Ann"])

    def test_history_load_older_deletion_and_a_ban(self):
        room = "site1/history"
        self.a.open(self.site1.url(room))
        self.a.join("Carol")
        for n in range(1, 56):
            self.a.post(f"m{n}")
            if n % 5 == 0:
                self.a.wait(f"m{n} is confirmed", lambda n=n: f"m{n}" in (self.a.texts() or []))
        self.a.wait("all 55 are confirmed", lambda: len(self.a.texts() or []) == 55)
        # Reload: the newest 50 from history, then "load older" brings the rest.
        self.a.open(self.site1.url(room))
        self.assertEqual(self.a.texts(), [f"m{n}" for n in range(6, 56)])
        self.a.driver.find_element(By.ID, "older").click()
        self.a.wait("the older page is shown", lambda: self.a.texts() == [f"m{n}" for n in range(1, 56)])
        self.assertFalse(self.a.driver.find_element(By.ID, "older").is_displayed())
        # The host page sized the frame to the chat's content, within its limit (640 px).
        self.a.driver.switch_to.default_content()
        self.a.wait("the frame has grown to its limit", lambda: self.a.driver.execute_script(
            "return document.getElementById('chat').style.height") == "640px")
        self.a.enter()
        # A reader scrolled up: the host page counts what it has not seen, and a button jumps to it.
        self.b.open(self.site1.url(room))
        self.b.driver.execute_script("document.getElementById('log-wrap').scrollTop = 0")
        self.a.post("while you were reading")
        self.b.wait("the new-messages button shows", lambda: self.b.driver.find_element(By.ID, "new-marker").is_displayed())
        self.b.driver.switch_to.default_content()
        self.b.wait("the host page counts one unread", lambda: self.b.driver.find_element(By.ID, "unread").text == "1")
        self.b.enter()
        self.b.driver.find_element(By.ID, "new-marker").click()
        self.b.driver.switch_to.default_content()
        self.b.wait("the count is back to 0", lambda: self.b.driver.find_element(By.ID, "unread").text == "0")
        self.b.enter()
        # A deletion by the site vanishes in both widgets at once.
        message = self.a.driver.execute_script(
            "return [...document.querySelectorAll('#log .msg')].find((m) => m.querySelector('.text').textContent === 'm55').dataset.id")
        self.backend(room, {"action": "delete", "id": int(message)})
        self.b.wait("m55 vanishes for a reader", lambda: "m55" not in (self.b.texts() or []))
        self.a.wait("m55 is shown deleted to its author", lambda: "m55" not in (self.a.texts() or []))
        # A banned guest cannot post.
        key = self.a.driver.execute_script("return JSON.parse(localStorage.getItem('plexor-chat:site1')).user.key")
        self.backend(room, {"action": "ban", "user": key, "seconds": 600})
        self.a.post("am I still here?")
        self.a.wait("the post is refused as banned", lambda: self.a.driver.execute_script(
            "return document.querySelector('#log .msg.failed .note')?.textContent ?? ''").find("banned") >= 0)
        self.backend(room, {"action": "unban", "user": key})

    def test_russian_strings_from_the_embed_url(self):
        self.a.open(self.site1.url("site1/ru", lang="ru"))
        self.assertEqual(self.a.driver.find_element(By.ID, "join-button").text, "Войти")
        self.assertEqual(self.a.driver.execute_script("return document.documentElement.lang"), "ru")
        # A room with one message: the frame is no taller than its content needs.
        self.a.join("Борис")
        self.a.post("Привет!")
        self.a.wait("the message is confirmed", lambda: self.a.texts() == ["Привет!"])
        self.a.driver.switch_to.default_content()
        self.a.wait("the frame fits its content", lambda: int(self.a.driver.execute_script(
            "return parseInt(document.getElementById('chat').style.height) || 0")) in range(240, 400))

    def test_markup_is_shown_as_text_and_runs_nothing(self):
        room = "site1/xss"
        self.a.open(self.site1.url(room))
        self.a.driver.execute_script("window.ran = false; window.alert = () => { window.ran = true; }")
        self.b.open(self.site1.url(room))
        self.b.driver.execute_script("window.ran = false; window.alert = () => { window.ran = true; }")
        self.a.join("<b>Eve</b>")
        attack = '<img src=x onerror=alert(1)><script>alert(2)</script>'
        self.a.post(attack)
        self.b.wait("the text arrives", lambda: attack in (self.b.texts() or []))
        for person in (self.a, self.b):
            self.assertEqual(person.driver.execute_script("return document.querySelectorAll('#log img:not(.avatar), #log script').length"), 0)
            self.assertFalse(person.driver.execute_script("return window.ran"))
            names = person.driver.execute_script("return [...document.querySelectorAll('#log .name')].map((n) => n.textContent)")
            self.assertIn("<b>Eve</b>", names)

    def test_a_site_verified_user_signs_in_by_the_host_pages_token_and_a_forged_one_is_refused(self):
        room = "site1/members"
        self.a.open(self.site1.url(room, **{"as": "u-42", "name": "Dana Member"}))
        self.a.wait("Dana is signed in by her site", lambda: self.a.driver.find_element(By.ID, "composer").is_displayed())
        self.a.post("signed in by my site")
        self.a.wait("the post shows the verified mark", lambda: self.a.driver.execute_script(
            "return [...document.querySelectorAll('#log .msg:not(.pending)')].some((m) =>"
            " m.querySelector('.text').textContent === 'signed in by my site' && m.querySelector('.badge.verified'))"))
        # A moderator (mod: true in the site's token) sees delete and ban on others' messages, and deletes for everyone.
        self.b.open(self.site1.url(room, **{"as": "u-7", "name": "Mia Moderator", "mod": "1"}))
        self.b.wait("Mia is signed in", lambda: self.b.driver.find_element(By.ID, "composer").is_displayed())
        controls = self.b.driver.execute_script(
            "return [...document.querySelectorAll('#log .msg')].find((m) => m.querySelector('.text').textContent === 'signed in by my site')"
            ".querySelectorAll('.controls button').length")
        self.assertEqual(controls, 2)
        self.b.driver.execute_script(
            "[...document.querySelectorAll('#log .msg')].find((m) => m.querySelector('.text').textContent === 'signed in by my site')"
            ".querySelector('.controls button').click()")
        self.a.wait("the moderator's deletion reaches Dana", lambda: "signed in by my site" not in (self.a.texts() or []))
        # Signing out forgets the session.
        self.b.driver.find_element(By.ID, "account").click()
        self.b.wait("Mia is signed out", lambda: self.b.driver.find_element(By.ID, "join").is_displayed())
        self.b.open(self.site1.url(room, forged="1"))
        self.b.wait("the forged token is refused", lambda: "signature" in self.b.status())
        self.assertTrue(self.b.driver.find_element(By.ID, "join").is_displayed())

    def test_signing_in_once_is_one_click_on_another_site_with_third_party_cookies_blocked(self):
        driver = self.a.driver
        self.a.open(self.site1.url("site1/signin"))
        page = driver.current_window_handle
        driver.find_element(By.ID, "signin").click()
        WebDriverWait(driver, WAIT).until(lambda d: len(d.window_handles) == 2)
        popup = next(handle for handle in driver.window_handles if handle != page)
        driver.switch_to.window(popup)
        WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "name").is_displayed())
        driver.find_element(By.ID, "name").send_keys("Frank")
        driver.find_element(By.ID, "guest-button").click()
        WebDriverWait(driver, WAIT).until(lambda d: len(d.window_handles) == 1)
        driver.switch_to.window(page)
        self.a.enter()
        self.a.wait("Frank is signed in on site 1", lambda: driver.find_element(By.ID, "composer").is_displayed())
        self.assertIn("Frank", driver.find_element(By.ID, "account").get_attribute("aria-label"))
        # Another site: one click in the popup, no name typed, no password.
        self.a.open(self.site2.url("site2"))
        self.assertTrue(driver.find_element(By.ID, "join").is_displayed())
        driver.find_element(By.ID, "signin").click()
        WebDriverWait(driver, WAIT).until(lambda d: len(d.window_handles) == 2)
        driver.switch_to.window(next(handle for handle in driver.window_handles if handle != page))
        WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "continue").is_displayed())
        self.assertIn("Frank", driver.find_element(By.ID, "continue").text)
        driver.find_element(By.ID, "continue").click()
        WebDriverWait(driver, WAIT).until(lambda d: len(d.window_handles) == 1)
        driver.switch_to.window(page)
        self.a.enter()
        self.a.wait("Frank is signed in on site 2", lambda: driver.find_element(By.ID, "composer").is_displayed())
        self.assertIn("Frank", driver.find_element(By.ID, "account").get_attribute("aria-label"))
        # This worked with third-party cookies blocked: the widget's frame cannot keep one.
        driver.execute_script("document.cookie = 'probe=1; SameSite=None; Secure; Path=/'")
        self.assertNotIn("probe", driver.execute_script("return document.cookie"))

    def test_signing_in_with_an_openid_connect_provider(self):
        driver = self.b.driver
        self.b.open(self.site2.url("site2/oidc"))
        page = driver.current_window_handle
        driver.find_element(By.ID, "signin").click()
        WebDriverWait(driver, WAIT).until(lambda d: len(d.window_handles) == 2)
        driver.switch_to.window(next(handle for handle in driver.window_handles if handle != page))
        provider_button = WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "provider"))
        self.assertEqual(provider_button.text, "Sign in with Test ID")
        provider_button.click()
        # At the provider (it refuses a request without PKCE, state and nonce): approve.
        WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "approve")).click()
        # Back at the gateway, the window signs the widget in by itself and closes.
        WebDriverWait(driver, WAIT).until(lambda d: len(d.window_handles) == 1)
        driver.switch_to.window(page)
        self.b.enter()
        self.b.wait("Olga is signed in", lambda: driver.find_element(By.ID, "composer").is_displayed())
        self.assertEqual(self.provider.tokens_issued, 1)
        self.b.post("signed in with a provider")
        self.b.wait("the post says how she signed in", lambda: driver.execute_script(
            "return [...document.querySelectorAll('#log .msg:not(.pending)')].some((m) =>"
            " m.querySelector('.name').textContent === 'Olga Provider' && m.querySelector('.badge.via'))"))

    def test_an_origin_the_site_does_not_allow_cannot_embed_its_room(self):
        driver = self.a.driver
        driver.get(self.stranger.url("site1"))
        frame = WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "chat"))
        WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return document.readyState") == "complete")
        driver.switch_to.frame(frame)
        self.assertEqual(driver.find_elements(By.ID, "chat"), [], "the refused frame shows no widget")
        driver.switch_to.default_content()
        self.assertTrue(any("frame-ancestors" in entry["message"] for entry in driver.get_log("browser")))

    def test_a_gateway_restart_mid_conversation_loses_nothing(self):
        room = "site1/restart"
        self.a.open(self.site1.url(room))
        self.b.open(self.site1.url(room))
        self.a.join("Gail")
        self.b.join("Hank")
        self.a.post("before")
        self.b.wait("before arrives", lambda: "before" in (self.b.texts() or []))
        self.gateway.kill()
        self.gateway.publish([f"chat:{room}"], {"type": "system", "text": "while the gateway was down"})
        self.gateway.start()
        self.a.post("after")
        for person in (self.a, self.b):
            person.wait("everything arrives once, in order", lambda person=person:
                        person.texts() == ["before", "while the gateway was down", "after"])

    def test_screenshots_at_phone_and_desktop_widths_light_and_dark(self):
        room = "site1/screens"
        self.b.open(self.site1.url(room))
        self.b.join("Jon")
        self.b.post("Hi! Is the new release out?")
        self.a.open(self.site1.url(room))
        self.a.join("Ivy")
        self.a.post("Yes, since this morning.")
        self.b.post("Great, thanks!\nTrying it now.")
        self.a.wait("the posts have arrived", lambda: (self.a.texts() or [])[-1:] == ["Great, thanks!\nTrying it now."])
        driver = self.a.driver
        for theme in ("light", "dark"):
            for width, height in ((1280, 900), (360, 740)):
                driver.set_window_size(width, height)
                # On a phone the site gives the chat the whole screen.
                self.a.open(self.site1.url(room, theme=theme, **({"bare": "1"} if width == 360 else {})))
                self.a.wait("the history is shown", lambda: len(self.a.texts() or []) == 3)
                driver.find_element(By.ID, "people-toggle").send_keys(Keys.ENTER)  # from the keyboard
                self.a.wait("both are shown present", lambda: sorted(self.a.people()) == ["Ivy", "Jon"])
                # WCAG AA: text at least 4.5 times the luminance of what is behind it.
                for selector, ratio in driver.execute_script(CONTRASTS).items():
                    self.assertGreaterEqual(ratio, 4.5, f"{theme}: {selector}")
                driver.switch_to.default_content()
                path = os.path.join(ARTIFACTS, f"widget-{theme}-{width}.png")
                driver.find_element(By.ID, "chat").screenshot(path)
                self.assertGreater(os.path.getsize(path), 1000)
        driver.set_window_size(1280, 800)


if __name__ == "__main__":
    unittest.main(verbosity=2)
